"""Feedback is on disk before the 200, on both backends: the real service under gunicorn (2 workers, loopback,
its state in a SQLite file in a temporary directory or in a database of the tests' PostgreSQL) takes feedback
POSTs from several threads at once; one worker is killed with SIGKILL once WARM_UP requests were acknowledged,
and the posting goes on until every thread has had AFTER_KILL more acknowledged and gunicorn has replaced the
worker; then the whole server is killed with SIGKILL (no graceful shutdown, no checkpoint). Read straight from the
database afterwards: every item of every 200 is there, a request that got no 200 was stored whole or not at
all, nothing is stored twice, and SQLite's ``PRAGMA integrity_check`` says ok.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bench.workload import children, free_port, kill_all, served, wait_for_workers
from tests.conftest import ROOT, wait_until
from tests.storage.conftest import assert_acknowledged_stored, issue_cards, run_sql

pytestmark = pytest.mark.slow  # chaos under load: gunicorn, killed workers

THREADS = 8
WARM_UP = 20  # requests acknowledged before the kill, so that it falls under load
AFTER_KILL = 5  # requests each thread has acknowledged after the kill (the connection it lost given up)
SERVICE = "medication-safety-order-sign"
REQUESTS = 2000  # requests of one thread at most: their cards are issued beforehand (feedback is kept on those)


@pytest.fixture
def server(tmp_path, database_url):
    """``fhirsvc serve`` with 2 workers on a free loopback port; killed (SIGKILL) at the end if still up."""
    port = free_port()
    db = database_url
    env = {**os.environ, "FHIRSVC_AUTH": "off", "FHIRSVC_DATABASE_URL": database_url, "FHIRSVC_KNOWLEDGE_PATH": "",
           "FHIRSVC_LOG_LEVEL": "WARNING"}
    base = f"http://127.0.0.1:{port}"
    with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "2"], f"{base}/healthz", tmp_path / "server.log", env, cwd=ROOT, timeout=30) as process:
        try:
            wait_for_workers(process.pid, 2)
            yield base, process, db
        finally:
            kill_all(process)


def _item(card: str, when: datetime) -> dict:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": when.isoformat().replace("+00:00", "Z"),
            "overrideReason": {"reason": {"system": "https://fhirsvc.org/fhir/CodeSystem/cds-override-reasons",
                                          "code": "will-monitor"}, "userComment": f"comment on {card}"}}


def test_every_acknowledged_feedback_item_survives_killed_workers(server):
    base, master, db = server
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    acknowledged: list[list[tuple[str, str]]] = []  # the items of each 200
    unacknowledged: list[list[tuple[str, str]]] = []  # the items of each request that got no 200
    after_kill = dict.fromkeys(range(THREADS), 0)  # requests acknowledged after the kill, per thread
    killed = threading.Event()
    stop = threading.Event()
    lock = threading.Lock()
    issue_cards(db, SERVICE, (f"card-{t}-{n}-{i}" for t in range(THREADS) for n in range(1, REQUESTS + 1)
                              for i in range(3)))

    def post(thread: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set() and n < REQUESTS:
            n += 1
            size = 1 + n % 3  # one to three items per request, stored in one transaction
            items = [_item(f"card-{thread}-{n}-{i}", start + timedelta(microseconds=n)) for i in range(size)]
            keys = [(item["card"], f"2026-11-24T12:00:00.{n:06d}Z") for item in items]
            try:
                response = session.post(f"{base}/cds-services/{SERVICE}/feedback", json={"feedback": items},
                                        timeout=10)
                ok = response.status_code == 200 and response.json() == {"received": size, "stored": size}
            except requests.RequestException:
                ok = False
                session = requests.Session()
            with lock:
                (acknowledged if ok else unacknowledged).append(keys)
                if killed.is_set() and ok:
                    after_kill[thread] += 1

    threads = [threading.Thread(target=post, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(acknowledged) >= WARM_UP), f"only {len(acknowledged)} acknowledged requests"
        victim = wait_for_workers(master.pid, 2)[0]
        os.kill(victim, signal.SIGKILL)
        killed.set()
        assert wait_until(lambda: min(after_kill.values()) >= AFTER_KILL), \
            f"the service did not keep answering every client after a worker was killed: {after_kill}"
        assert wait_until(lambda: len([pid for pid in children(master.pid) if pid != victim]) == 2), \
            "gunicorn did not replace the killed worker"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert master.poll() is None, "the gunicorn master died with its worker"
    kill_all(master)  # a crash of everything: no graceful close, no WAL checkpoint

    if db.startswith("sqlite:"):
        assert run_sql(db, "PRAGMA integrity_check") == [("ok",)]
    stored, expected = assert_acknowledged_stored(db, SERVICE, acknowledged, unacknowledged)
    print(f"{len(acknowledged)} requests acknowledged ({len(expected)} items, all stored), "
          f"{len(unacknowledged)} not ({sum(all(k in stored for k in keys) for keys in unacknowledged)} stored whole)")
