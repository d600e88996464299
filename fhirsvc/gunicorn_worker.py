"""gunicorn's threaded worker (``gthread``), whose threads give up on a client that goes silent.

A gthread worker hands a connection to a thread once its first bytes have arrived; the thread then reads the
request with blocking reads that never time out. A client that stops sending in the middle of a request (it
crashed, its network went away without a FIN, or it stalls on purpose) held that thread for as long as the
process lived: ``threads`` of them and the worker served nothing more, for good (gunicorn's ``timeout`` does not
see it: the worker's main loop still reports the worker alive). Here each read and write of a request waits at
most READ_TIMEOUT seconds; then the connection is closed, with one line in the log, and the thread is free
again.

It does not bound a client that keeps sending a byte now and then (slowloris): that takes a deadline for the
whole request, which a buffering reverse proxy in front gives (docs/deployment.md, "Serving").
"""

from __future__ import annotations

import logging

from gunicorn.workers import gthread

READ_TIMEOUT = 10.0  # seconds a thread waits for the next bytes of a request (or to send its answer)


class ThreadWorker(gthread.ThreadWorker):
    """``worker_class = "fhirsvc.gunicorn_worker.ThreadWorker"`` (the shipped gunicorn configuration's)."""

    def init_process(self) -> None:
        self.log.error_log.addFilter(_timeout_in_one_line)
        super().init_process()

    def handle(self, conn):
        conn.sock.settimeout(READ_TIMEOUT)  # the connection is blocking while a thread has it; bounded here
        return super().handle(conn)


def _timeout_in_one_line(record: logging.LogRecord) -> bool:
    """gunicorn logs a read that timed out as any socket error, with its traceback: one line says it (a client
    could otherwise fill the log)."""
    if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
        record.msg, record.args, record.exc_info = "client silent for %g s: connection closed", (READ_TIMEOUT,), None
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True
