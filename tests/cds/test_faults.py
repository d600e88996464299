"""The whole service while the EHR's FHIR server misbehaves: every CDS call answers within its deadline,
with 200 (cards; a check whose data could not be had says "Unable to check") or 412 (no patient data at
all), never a 500 and never a hang.

Two fake servers on loopback: ``FakeEhr`` (tests/cds/fake_ehr.py) for HTTP-level faults per resource
type (slow beyond the timeouts, 500, 401, garbage body, redirect, a ``next`` link to itself), and
``SocketEhr`` below for faults under HTTP (stalling after the headers, trickling bytes, a truncated body,
a closed connection, silence). A third base URL has nothing listening: connection refused.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from fhirsvc import create_app
from tests.cds.card_schema import assert_valid_outcome, assert_valid_response
from tests.cds.conftest import SERVICE, empty_prefetch, order_request
from tests.conftest import error_message

pytestmark = pytest.mark.slow  # chaos: a misbehaving FHIR server, each call waiting out its fetch deadline

CONNECT_TIMEOUT, READ_TIMEOUT, DEADLINE = 0.5, 0.8, 1.0
# What the call may take: the fetch deadline, at most one read timeout for a read already under way, and
# some room for a busy machine. The faults below would otherwise take 3 s (slow) to 30 s (trickle).
ANSWER_WITHIN = DEADLINE + READ_TIMEOUT + 0.7
EHR_TYPES = ("Patient", "Condition", "AllergyIntolerance", "MedicationRequest", "Observation", "MedicationStatement")
HTTP_FAULTS = ("slow", "500", "401", "garbage", "redirect", "loop")
SOCKET_FAULTS = ("stall", "trickle", "truncated", "close", "silent")


class SocketEhr:
    """A TCP server on 127.0.0.1 that misbehaves below HTTP for every request, per ``mode``."""

    def __init__(self):
        self.mode = "close"
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}/fhir"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn, self.mode), daemon=True).start()

    def _answer(self, conn: socket.socket, mode: str) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
        try:
            conn.settimeout(5)
            conn.recv(65536)
            if mode == "stall":  # headers, then nothing
                conn.sendall(head + b"Content-Length: 100\r\n\r\n")
                self.stop.wait(30)
            elif mode == "trickle":  # a byte every 0.1 s: never a read timeout, yet never done
                conn.sendall(head + b"Content-Length: 100000\r\n\r\n{")
                while not self.stop.wait(0.1):
                    conn.sendall(b" ")
            elif mode == "truncated":  # fewer bytes than announced, then the connection closes
                conn.sendall(head + b'Content-Length: 1000\r\n\r\n{"resourceType": "Bun')
            elif mode == "silent":  # the request is read, no answer comes
                self.stop.wait(30)
            # "close": the connection closes without an answer
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=5)


def _refused_base() -> str:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir"  # closed again: connecting is refused


@pytest.fixture(scope="module")
def http_ehr(ehr):
    return ehr


@pytest.fixture(scope="module")
def socket_ehr():
    server = SocketEhr()
    yield server
    server.close()


@pytest.fixture(scope="module")
def refused_base():
    return _refused_base()


@pytest.fixture(scope="module")
def service(http_ehr, socket_ehr, refused_base, tmp_path_factory):
    app = create_app({
        "TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "PUBLIC_BASE_URL": "https://cds.example.org",
        "FEEDBACK_DB": str(tmp_path_factory.mktemp("faults") / "feedback.sqlite3"),
        "FHIR_SERVER_ALLOWLIST": ",".join((http_ehr.base, socket_ehr.base, refused_base)),
        "FETCH_CONNECT_TIMEOUT": CONNECT_TIMEOUT, "FETCH_READ_TIMEOUT": READ_TIMEOUT, "FETCH_DEADLINE": DEADLINE})
    return app.test_client()


@pytest.fixture(autouse=True)
def _reset(http_ehr):
    http_ehr.modes.clear()
    http_ehr.requests.clear()


def call(service, fhir_server: str, prefetched: tuple[str, ...] = (), orders: list | None = None):
    """A call with ``fhirServer`` set and only the ``prefetched`` keys in prefetch (the rest is fetched);
    checks the time and the shape of the answer and returns (status, body)."""
    body = order_request(orders=orders, fhirServer=fhir_server,
                         fhirAuthorization={"access_token": "secret-token", "token_type": "Bearer",
                                            "expires_in": 300, "scope": "patient/*.read", "subject": "cds-service"})
    body["prefetch"] = {key: value for key, value in empty_prefetch().items() if key in prefetched}
    started = time.monotonic()
    response = service.post(SERVICE, json=body)
    elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN, f"answered after {elapsed:.1f} s (deadline {DEADLINE} s)"
    assert response.status_code in (200, 412), response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    payload = json.loads(response.get_data())
    if response.status_code == 200:
        assert_valid_response(payload)
    else:
        assert_valid_outcome(payload)
        assert len(payload["issue"]) == 1 and "no patient data" in error_message(payload)
    return response.status_code, payload


def unable_to_check(payload: dict) -> list[str]:
    return [card["summary"] for card in payload.get("cards", []) if card["summary"].startswith("Unable to check")]


def test_a_well_behaved_server_gives_cards_from_its_data(service, http_ehr):
    status, payload = call(service, http_ehr.base)
    assert status == 200
    assert {path.split("?")[0].split("/")[2] for path, _ in http_ehr.requests} == set(EHR_TYPES)
    assert not [s for s in unable_to_check(payload) if "unavailable" in s]


@pytest.mark.parametrize("mode", HTTP_FAULTS)
def test_one_failing_search_gives_cards_that_say_unable_to_check(service, http_ehr, mode):
    http_ehr.modes["Condition"] = mode
    status, payload = call(service, http_ehr.base)
    assert status == 200
    assert [s for s in unable_to_check(payload) if "condition list unavailable" in s], payload
    assert not any("169.254" in path for path, _ in http_ehr.requests), "a redirect was followed"


@pytest.mark.parametrize("mode", HTTP_FAULTS)
def test_a_server_failing_every_search_gives_412(service, http_ehr, mode):
    http_ehr.modes.update(dict.fromkeys(EHR_TYPES, mode))
    status, _ = call(service, http_ehr.base)
    assert status == 412


@pytest.mark.parametrize("mode", SOCKET_FAULTS)
def test_a_broken_connection_for_one_key_gives_unable_to_check(service, socket_ehr, mode):
    socket_ehr.mode = mode
    status, payload = call(service, socket_ehr.base, prefetched=("patient", "allergies", "medications", "observations"))
    assert status == 200
    assert [s for s in unable_to_check(payload) if "condition list unavailable" in s], payload


@pytest.mark.parametrize("mode", SOCKET_FAULTS)
def test_broken_connections_for_every_key_give_412(service, socket_ehr, mode):
    socket_ehr.mode = mode
    status, _ = call(service, socket_ehr.base)
    assert status == 412


def test_connection_refused_gives_412_or_unable_to_check(service, refused_base):
    assert call(service, refused_base)[0] == 412
    status, payload = call(service, refused_base, prefetched=("patient", "allergies", "medications", "observations"))
    assert status == 200 and unable_to_check(payload)


def test_a_medication_reference_on_a_slow_server_does_not_hold_the_call(service, http_ehr):
    http_ehr.modes["Medication"] = "slow"
    orders = [{"resourceType": "MedicationRequest", "id": "mr-ref", "status": "draft", "intent": "order",
               "medicationReference": {"reference": "Medication/kineret"}, "subject": {"reference": "Patient/p1"}}]
    status, _ = call(service, http_ehr.base, prefetched=tuple(empty_prefetch()), orders=orders)
    assert status == 200
    assert any(path.startswith("/fhir/Medication/kineret") for path, _ in http_ehr.requests)


def test_concurrent_calls_against_a_slow_server_all_answer_in_time(service, http_ehr):
    """Several calls at once (as several clinicians would): the deadline holds for each of them."""
    http_ehr.modes.update({"Condition": "slow", "Observation": "slow"})
    outcomes: list[int | str] = []

    def one() -> None:
        try:
            outcomes.append(call(service.application.test_client(), http_ehr.base)[0])
        except AssertionError as exc:  # recorded, since an assertion in a thread would be lost
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == [200] * 6
