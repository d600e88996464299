"""The worker's request body (``WholeBody``) against gunicorn's own ``Body``: both read requests that gunicorn's
parser has read from a real socket, with Content-Length or chunked; and a real gunicorn serving with the worker."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http.body import Body
from gunicorn.http.parser import RequestParser
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.workload import free_port, served
from fhirsvc.gunicorn_worker import WholeBody
from tests.conftest import ROOT

HOST = "127.0.0.1"


def request_bytes(data: bytes, chunk: int | None) -> bytes:
    """A POST of ``data`` with Content-Length, or chunked in pieces of ``chunk`` bytes."""
    if chunk is None:
        return b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    return (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n")


@contextlib.contextmanager
def parsed(raw: bytes) -> Iterator[Any]:
    """gunicorn's parse of ``raw`` sent over a socket pair (from a thread, as a client sends it): its request."""
    ours, theirs = socket.socketpair()
    sender = threading.Thread(target=theirs.sendall, args=(raw,))
    sender.start()
    try:
        yield next(RequestParser(Config(), ours, (HOST, 1)))
    finally:
        sender.join()
        ours.close()
        theirs.close()


def read_all(body: Any, steps: list[int | str | None]) -> list[bytes]:
    """What ``body`` gives for each step (a read of that size, None for all, "line" for readline), then the rest."""
    return [body.readline() if step == "line" else body.read(step) for step in steps] + [body.read()]


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300).map(lambda piece: piece * 60),
       chunk=st.none() | st.integers(min_value=1, max_value=9000),
       steps=st.lists(st.none() | st.integers(min_value=0, max_value=20_000) | st.just("line"), max_size=6))
def test_the_whole_body_reads_as_gunicorns(data, chunk, steps):
    """Any sequence of read(size), read() and readline() gives the same bytes from WholeBody as from gunicorn's
    Body, over the same request (the worker swaps one for the other)."""
    raw = request_bytes(data, chunk)
    with parsed(raw) as request:
        theirs = read_all(Body(request.body.reader), steps)
    with parsed(raw) as request:
        ours = read_all(WholeBody(request.body.reader), steps)
    assert ours == theirs
    assert b"".join(ours) == data


def test_a_cds_body_is_one_read_of_its_reader():
    """A 66 kB body asked for whole is one call of its reader (gunicorn's Body makes one per kB: 65)."""
    data = b"x" * 66_000
    calls: list[int] = []
    with parsed(request_bytes(data, None)) as request:
        reader = request.body.reader
        read = reader.read
        reader.read = lambda size: calls.append(size) or read(size)
        assert WholeBody(reader).read(5 * 1024 * 1024 + 1) == data
    assert len(calls) == 1


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app: the class of the body stream, and the sha256 of the body read whole."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha256(stream.read()).hexdigest()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{type(stream).__name__} {digest}".encode()]


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory) -> Iterator[int]:
    """gunicorn serving ``echo`` with the worker; yields its port."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--worker-class", "fhirsvc.gunicorn_worker.ThreadWorker",
               "--threads", "2", "--bind", f"{HOST}:{port}", "tests.test_gunicorn_worker:echo"]
    log = tmp_path_factory.mktemp("worker") / "gunicorn.log"
    with served(command, f"http://{HOST}:{port}/", log, cwd=ROOT, timeout=60):
        yield port


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_the_worker_serves_with_the_whole_body(echo_server, chunked):
    """gunicorn with the worker gives the app a WholeBody, and the app reads the whole body from it."""
    data = bytes(range(256)) * 400
    connection = http.client.HTTPConnection(HOST, echo_server, timeout=15)
    body = (data[i:i + 10_000] for i in range(0, len(data), 10_000)) if chunked else data
    connection.request("POST", "/echo", body=body, encode_chunked=chunked)
    answer = connection.getresponse().read().decode()
    connection.close()
    assert answer == f"WholeBody {hashlib.sha256(data).hexdigest()}"
