"""Feedback cannot starve order-sign of its bookkeeping, on both backends: the real service (``fhirsvc serve``, 3
workers, CDS authentication required) takes feedback requests of the largest allowed size (MAX_FEEDBACK_ITEMS
items, each stored) in a loop from two threads, while order-sign is called with new orders. Every order-sign call
answers its cards, every card it issued is noted in the database, no note is lost (``cardNotesFailed``), and the
``jti`` check never falls back to a worker's memory (the log says when it does).

A feedback request is one short transaction (a lookup of its cards, one batched insert), and the notes and the
``jti`` values are written on connections of their own that wait at most HOT_TIMEOUT: before the item limit, one
request of 38,000 items held SQLite's write lock for seconds and most concurrent calls lost their notes.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from bench.workload import free_port, kill_all, served, wait_for_workers
from fhirsvc.cds.feedback import MAX_FEEDBACK_ITEMS
from tests.cds.conftest import SERVICE, order_request
from tests.cds.test_app_auth import BASE, token, trust_file
from tests.conftest import ROOT, wait_until
from tests.storage.conftest import issue_cards, run_sql

pytestmark = pytest.mark.slow  # load: gunicorn under the largest feedback requests

FEEDBACK = SERVICE + "/feedback"
SERVICE_ID = SERVICE.rsplit("/", 1)[1]
CALLS = 40  # order-sign calls made while the feedback is written


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


def test_order_sign_keeps_its_notes_while_the_largest_feedback_is_written(database_url, key, tmp_path):
    # the cards the feedback is about, issued beforehand (as the note writer would have noted them)
    loaded = [f"loaded-{n}" for n in range(MAX_FEEDBACK_ITEMS)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"FHIRSVC_AUTH": "required", "FHIRSVC_JWT_ISSUERS": str(trust_file(tmp_path, key)),
           "FHIRSVC_PUBLIC_BASE_URL": BASE, "FHIRSVC_DATABASE_URL": database_url, "FHIRSVC_KNOWLEDGE_PATH": "",
           "FHIRSVC_LOG_LEVEL": "WARNING"}
    log = tmp_path / "server.log"
    stop = threading.Event()
    written: list[int] = []  # items stored per feedback request
    feedback_status: dict[int, int] = {}
    calls: list[tuple[int, list[str]]] = []  # order-sign: status, card uuids
    lock = threading.Lock()
    with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "3"], f"{base}/healthz", log, env, cwd=ROOT, timeout=60) as master:
        try:
            wait_for_workers(master.pid, 3)
            issue_cards(database_url, SERVICE_ID, loaded)

            def post_feedback(thread: int) -> None:
                session = requests.Session()
                n = 0
                while not stop.is_set():
                    n += 1
                    when = datetime.now(UTC) - timedelta(hours=1, microseconds=thread * 1_000_000 + n)
                    body = {"feedback": [{"card": card, "outcome": "overridden",
                                          "outcomeTimestamp": when.isoformat().replace("+00:00", "Z"),
                                          "overrideReason": {"userComment": "c" * 1000}} for card in loaded]}
                    response = session.post(base + FEEDBACK, json=body, timeout=30, headers={
                        "Authorization": f"Bearer {token(key, BASE + FEEDBACK)}"})
                    with lock:
                        feedback_status[response.status_code] = feedback_status.get(response.status_code, 0) + 1
                        if response.status_code == 200:
                            written.append(response.json()["stored"])

            def call_order_sign() -> None:
                session = requests.Session()
                for n in range(CALLS):
                    body = order_request()
                    body["context"]["draftOrders"]["entry"][0]["resource"]["id"] = f"mr-contended-{n}"  # new cards
                    response = session.post(base + SERVICE, json=body, timeout=30, headers={
                        "Authorization": f"Bearer {token(key, BASE + SERVICE)}"})
                    cards = [card["uuid"] for card in response.json().get("cards", [])]
                    with lock:
                        calls.append((response.status_code, cards))
                    time.sleep(0.02)

            posters = [threading.Thread(target=post_feedback, args=(t,)) for t in range(2)]
            for thread in posters:
                thread.start()
            # the feedback load is on before order-sign starts
            assert wait_until(lambda: feedback_status), "no feedback request was answered"
            caller = threading.Thread(target=call_order_sign)
            caller.start()
            caller.join(timeout=300)
            wait_until(lambda: len(written) >= 2)  # the posting goes on until two of the largest requests are written
            stop.set()
            for thread in posters:
                thread.join(timeout=60)
            issued = {card for _, cards in calls for card in cards}

            def noted_cards() -> set[str]:
                return {row[0] for row in run_sql(database_url, "SELECT card FROM issued_cards WHERE service = ?",
                                                  SERVICE_ID)}

            wait_until(lambda: issued <= noted_cards())  # each worker's note writer writes them a moment later
            noted = noted_cards()
            healths = [requests.get(base + "/healthz", timeout=15).json()["database"] for _ in range(6)]
        finally:
            kill_all(master)

    assert feedback_status == {200: len(written)} and len(written) >= 2, feedback_status
    assert all(stored == MAX_FEEDBACK_ITEMS for stored in written), "a feedback request was not stored whole"
    assert len(calls) == CALLS and all(status == 200 and cards for status, cards in calls), calls
    assert len(issued) >= CALLS, "the calls did not issue new cards"
    missing = issued - noted
    assert not missing, f"{len(missing)} of {len(issued)} issued cards were not noted"
    assert all(h["status"] == "ok" and h["cardNotesFailed"] == 0 for h in healths), healths
    text = log.read_text()
    assert "unavailable for the" not in text, text[-2000:]  # no note lost, no jti check sent to memory
    print(f"{len(written)} feedback requests of {MAX_FEEDBACK_ITEMS} items written during {CALLS} order-sign calls;"
          f" {len(issued)} cards issued, all noted")
