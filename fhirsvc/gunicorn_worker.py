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

A request body is read as large as it is asked for: gunicorn's body reader asks its length, chunked or
until-close reader for 1 kB at a time, each time copying back what it holds of the next 8 kB (about 100 us of Python
for a 66 kB CDS call, three quarters of reading it).
"""

from __future__ import annotations

import io
import logging

from gunicorn.http.body import Body
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

    def handle_request(self, req, conn):
        req.body = WholeBody(req.body.reader)  # nothing of it read yet: the parser has just made it
        return super().handle_request(req, conn)


class WholeBody(Body):
    """gunicorn's request body, whose ``read(size)`` asks its reader for all it still needs in one call. Each of
    gunicorn's readers answers with what is asked, or all that is left of the body when that is less (so the app
    reads no more than it asks for, and gunicorn drops the rest of an unread body as before)."""

    def read(self, size: int | None = None) -> bytes:
        size = self.getsize(size)
        if size == 0:
            return b""
        data = self.buf.getvalue()  # what readline() read past a line, usually nothing
        if len(data) < size:
            data += self.reader.read(size - len(data))
        self.buf = io.BytesIO()
        self.buf.write(data[size:])
        return data[:size]


def _timeout_in_one_line(record: logging.LogRecord) -> bool:
    """gunicorn logs a read that timed out as any socket error, with its traceback: one line says it (a client
    could otherwise fill the log)."""
    if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
        record.msg, record.args, record.exc_info = "client silent for %g s: connection closed", (READ_TIMEOUT,), None
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True
