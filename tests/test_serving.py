"""Serving under hostile clients, against a real ``fhirsvc serve`` (gunicorn) started by each test module:

- idle kept-alive connections, connections that never send a byte and clients that send a header line a second
  do not stop /healthz and order-sign from answering (gthread workers); with sync workers, the counter-example,
  they do;
- a chunked body over FHIRSVC_MAX_CONTENT_LENGTH gets 413 naming the limit on a FHIR route, a CDS route and
  feedback; a chunked body under it is served;
- the shipped gunicorn configuration file is used, and a file of one's own (``--config`` or
  FHIRSVC_GUNICORN_CONFIG) replaces the settings it names.

Nothing here times the service: a call "answers" when it answers within a generous timeout (a hang is what is
looked for; ``make bench`` measures latency under the same attack).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import workload
from bench.workload import free_port, hostile_connections, served
from fhirsvc.cli import GUNICORN_CONFIG, gunicorn_settings
from fhirsvc.errors import ConfigError
from fhirsvc.gunicorn_worker import READ_TIMEOUT
from tests.conftest import ROOT, error_message

pytestmark = pytest.mark.slow  # serving: real gunicorn masters under hostile clients, read timeouts waited out

HOST = "127.0.0.1"
ORDER_SIGN = "/cds-services/medication-safety-order-sign"
LIMIT = 200_000  # FHIRSVC_MAX_CONTENT_LENGTH of the servers here: small, so over-limit bodies are quick to send
THREADS = 4
ANSWERED = 15  # seconds: a call that has not answered by then is held (the service answers these in milliseconds)


@contextlib.contextmanager
def serve(directory: Path, *args: str, **env: str) -> Iterator[tuple[str, Path]]:
    """``fhirsvc serve`` with 2 workers on a free port (CDS authentication off, its own database); yields its base
    URL and its log."""
    port = free_port()
    log = directory / f"serve-{port}.log"
    environment = {"FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": f"sqlite:///{directory / f'{port}.sqlite3'}",
                   "FHIRSVC_MAX_CONTENT_LENGTH": str(LIMIT), "FHIRSVC_KNOWLEDGE_PATH": "", "FHIRSVC_LOG_LEVEL": "INFO",
                   "FHIRSVC_GUNICORN_CONFIG": "", **env}
    with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", HOST, "--port", str(port), "--workers", "2",
                 *args], f"http://{HOST}:{port}/healthz", log, environment, cwd=ROOT, timeout=60):
        yield f"http://{HOST}:{port}", log


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The shipped configuration (gthread), with THREADS threads per worker."""
    with serve(tmp_path_factory.mktemp("serving"), "--threads", str(THREADS)) as served_at:
        yield served_at


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def call(base: str, method: str, path: str, body: bytes | None = None, chunked: bool = False,
         content_type: str = "application/json", timeout: float = ANSWERED) -> tuple[int, bytes]:
    """One request on a new connection (the body sent in 16 kB chunks when ``chunked``): status and body.
    TimeoutError if it has not answered within ``timeout`` seconds."""
    connection = http.client.HTTPConnection(HOST, port_of(base), timeout=timeout)
    try:
        if chunked and body is not None:
            chunks = (body[i:i + 16384] for i in range(0, len(body), 16384))
            connection.request(method, path, body=chunks, headers={"Content-Type": content_type},
                               encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers={"Content-Type": content_type} if body else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


ORDER_SIGN_BODY = json.dumps(workload.order_sign()).encode()  # one anakinra order, ~100 prefetched, one card
CHECK_ORDERS_BODY = json.dumps(workload.check_orders_bundle()).encode()


def test_idle_and_slow_clients_do_not_hold_the_service(server):
    """One fewer slow client than a worker has threads: they cannot hold a worker, even if every one lands on the
    same worker. /healthz and order-sign answer, whichever worker takes them (several calls of each)."""
    base, _ = server
    with hostile_connections(HOST, port_of(base), slow=THREADS - 1, path=ORDER_SIGN):
        for _ in range(4):
            assert call(base, "GET", "/healthz")[0] == 200
            status, answer = call(base, "POST", ORDER_SIGN, ORDER_SIGN_BODY)
            assert status == 200 and json.loads(answer)["cards"]


def test_a_client_silent_in_the_middle_of_a_request_is_let_go(server):
    """Twice as many clients as the service has threads send the start of a request and then nothing (as a client
    that crashed, or lost its network): each thread gives up after READ_TIMEOUT and closes the connection, so the
    threads are free again (with gunicorn's own gthread worker they waited for ever). One line in the log each."""
    base, log = server
    with contextlib.ExitStack() as stack:
        stalled = [stack.enter_context(socket.create_connection((HOST, port_of(base)), timeout=3 * READ_TIMEOUT))
                   for _ in range(2 * 2 * THREADS)]
        for sock in stalled:
            sock.sendall(f"POST {ORDER_SIGN} HTTP/1.1\r\nHost: fhirsvc\r\n".encode())  # and no more headers
        for sock in stalled:
            assert sock.recv(65536) == b""  # closed by the service (TimeoutError if it still waits)
    assert call(base, "GET", "/healthz")[0] == 200
    text = log.read_text()
    assert text.count("client silent for 10 s: connection closed") >= 2 * 2 * THREADS
    assert "Traceback" not in text


def test_with_sync_workers_the_same_clients_hold_the_service(tmp_path):
    """The counter-example, and a configuration file of one's own in use: sync workers from
    FHIRSVC_GUNICORN_CONFIG (gunicorn takes "sync" with more than one thread for gthread). The two connections
    that never send a byte take both sync workers (each serves one connection from its first byte to its last),
    so /healthz does not answer while they are held."""
    config = tmp_path / "sync.py"
    config.write_text('worker_class = "sync"\nthreads = 1\n')
    with serve(tmp_path, FHIRSVC_GUNICORN_CONFIG=str(config)) as (base, log), \
            hostile_connections(HOST, port_of(base), slow=2, path=ORDER_SIGN), pytest.raises(TimeoutError):
        call(base, "GET", "/healthz", timeout=5)  # held until gunicorn's 30 s worker timeout
    text = log.read_text()
    assert "Using worker: sync" in text
    assert "2 sync worker(s) x 1 thread(s)" in text
    assert f"(gunicorn settings: {GUNICORN_CONFIG}, {config})" in text


@pytest.mark.parametrize(("path", "says"), [
    ("/fhir/R4/$check-orders", error_message),
    (ORDER_SIGN, error_message),
    (ORDER_SIGN + "/feedback", error_message),
])
def test_a_chunked_body_over_the_limit_is_413(server, path, says):
    """Without Content-Length, the body still counts against FHIRSVC_MAX_CONTENT_LENGTH: 413 in the route's own
    error format, naming the limit (it was a 400, or a 200 for the part under the limit)."""
    base, _ = server
    body = ORDER_SIGN_BODY + b" " * (LIMIT - len(ORDER_SIGN_BODY) + 1)  # valid JSON, one byte over the limit
    status, answer = call(base, "POST", path, body, chunked=True)
    assert status == 413, answer
    assert f"larger than the limit of {LIMIT} bytes (FHIRSVC_MAX_CONTENT_LENGTH)" in says(json.loads(answer))
    status, answer = call(base, "POST", path, ORDER_SIGN_BODY * 8, chunked=True)  # far over, not JSON either
    assert status == 413, answer


def test_a_chunked_body_under_the_limit_is_served(server):
    base, _ = server
    padded = ORDER_SIGN_BODY + b" " * (LIMIT - len(ORDER_SIGN_BODY))  # exactly the limit
    status, answer = call(base, "POST", ORDER_SIGN, padded, chunked=True)
    assert status == 200 and json.loads(answer)["cards"]
    card = json.loads(answer)["cards"][0]["uuid"]
    status, answer = call(base, "POST", "/fhir/R4/$check-orders", CHECK_ORDERS_BODY, chunked=True)
    assert status == 200 and json.loads(answer)["resourceType"] == "Bundle"
    feedback = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-24T12:00:00Z"}]}
    status, answer = call(base, "POST", ORDER_SIGN + "/feedback", json.dumps(feedback).encode(), chunked=True)
    assert status == 200, answer
    status, answer = call(base, "POST", "/fhir/R4/MedicationKnowledge/_search", b"code=L04AC03", chunked=True,
                          content_type="application/x-www-form-urlencoded")
    assert status == 200 and json.loads(answer)["total"] == 1


def test_a_chunked_form_over_the_limit_is_413(server):
    base, _ = server
    status, answer = call(base, "POST", "/fhir/R4/MedicationKnowledge/_search", b"code=" + b"x" * LIMIT,
                          chunked=True, content_type="application/x-www-form-urlencoded")
    assert status == 413, answer


def test_the_shipped_configuration_is_used(server):
    _, log = server
    text = log.read_text()
    assert "Using worker: fhirsvc.gunicorn_worker.ThreadWorker" in text
    assert (f"2 fhirsvc.gunicorn_worker.ThreadWorker worker(s) x {THREADS} thread(s), keepalive 5 s, timeout 30 s, "
            "graceful_timeout 15 s "
            f"(gunicorn settings: {GUNICORN_CONFIG})") in text


def test_settings_layer_the_shipped_file_a_file_of_ones_own_and_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FHIRSVC_WORKERS", "3")
    monkeypatch.setenv("FHIRSVC_THREADS", "5")
    monkeypatch.setenv("PORT", "9123")
    shipped = gunicorn_settings()
    assert shipped | {"worker_class": "fhirsvc.gunicorn_worker.ThreadWorker", "workers": 3, "threads": 5,
                      "bind": "127.0.0.1:9123", "keepalive": 5} == shipped
    own = tmp_path / "own.py"
    own.write_text("import os\nthreads = 12\nkeepalive = 2\nWORKERS = 'not a setting: ignored'\n")
    settings = gunicorn_settings(own, workers=4, threads=None, bind=None)
    assert settings == shipped | {"threads": 12, "keepalive": 2, "workers": 4}
    with pytest.raises(ConfigError, match=r"missing\.py"):
        gunicorn_settings(tmp_path / "missing.py")
    own.write_text("threads = 'many'\n")
    with pytest.raises(ConfigError, match="gunicorn setting threads = 'many'"):
        gunicorn_settings(own)
