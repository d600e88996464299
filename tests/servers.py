"""Real servers on loopback for the tests: a free port, and a process that is served until the block ends."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(command: Sequence[str], ready_url: str, log: Path | None, env: Mapping[str, str] | None = None,
           cwd: Path | None = None, timeout: float = 60) -> Iterator[subprocess.Popen]:
    """Start ``command`` (its output in ``log``, or discarded), wait until ``ready_url`` answers 200, yield the
    process; terminate it at the end if it still runs. RuntimeError, with the end of the log, if it exits or
    does not answer within ``timeout`` seconds."""
    with (log.open("wb") if log else open("/dev/null", "wb")) as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    try:
        _wait_ready(process, ready_url, timeout, log)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, url: str, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {url} within {timeout:g} s{_tail(log)}")


def _tail(log: Path | None) -> str:
    return f"; its log ends:\n{log.read_text(errors='replace')[-2000:]}" if log and log.exists() else ""
