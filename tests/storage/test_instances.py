"""Several instances, one truth: two gunicorn masters (``fhirsvc serve``, 2 workers each) on two loopback ports, as
behind a load balancer (one FHIRSVC_PUBLIC_BASE_URL, CDS authentication required).

- Sharing one PostgreSQL database, a JWT replayed to the second instance is refused, and feedback posted to one
  is counted in the other's statistics. With two SQLite files, the counter-example, neither holds.
- Under a feedback load sent to both instances, one instance's worker is killed with SIGKILL, then the PostgreSQL
  server is stopped as by a crash and started again: no item that got a 200 is lost, nothing is stored twice or
  in part, no answer is a 500, order-sign answers its cards throughout, both /healthz say the database is
  unavailable during the outage, and both instances take feedback again by themselves afterwards. Each step
  waits until what it needs was seen (answers acknowledged, the worker replaced, a 503, an order-sign call during
  the outage), never for a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from bench.workload import children, free_port, kill_all, served, wait_for_workers
from fhirsvc.storage.base import utc_text
from tests.cds.conftest import SERVICE, order_request
from tests.cds.test_app_auth import BASE, token, trust_file
from tests.conftest import ROOT, wait_until
from tests.storage.conftest import assert_acknowledged_stored, issue_cards, run_sql

pytestmark = pytest.mark.slow  # chaos under load: two gunicorn instances, killed workers, a database restart

FEEDBACK = SERVICE + "/feedback"
SERVICE_ID = SERVICE.rsplit("/", 1)[1]
REQUESTS = 2000  # feedback requests of one thread at most: their cards are issued beforehand
WARM_UP = 20  # feedback requests acknowledged before the kill and again before the outage: both fall under load


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


@contextlib.contextmanager
def instance(name: str, database_url: str, trust: Path, directory: Path) -> Iterator[tuple[str, object]]:
    """One instance: ``fhirsvc serve`` with 2 workers on a free port; SIGKILLed at the end. Yields its base URL
    and its gunicorn master."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"FHIRSVC_AUTH": "required", "FHIRSVC_JWT_ISSUERS": str(trust), "FHIRSVC_PUBLIC_BASE_URL": BASE,
           "FHIRSVC_DATABASE_URL": database_url, "FHIRSVC_DATABASE_TIMEOUT": "1", "FHIRSVC_KNOWLEDGE_PATH": "",
           "FHIRSVC_LOG_LEVEL": "WARNING"}
    with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "2"], f"{base}/healthz", directory / f"{name}.log", env, cwd=ROOT, timeout=60) as master:
        try:
            wait_for_workers(master.pid, 2)
            yield base, master
        finally:
            kill_all(master)


def post(key, base: str, route: str, body: dict, bearer: str | None = None) -> requests.Response:
    """POST with a new token for the route (or the given one), as an EHR behind the load balancer would."""
    bearer = bearer or token(key, BASE + route)
    return requests.post(base + route, json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=15)


def feedback_item(card: str, when: datetime) -> dict:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": when.isoformat().replace("+00:00", "Z")}


@pytest.mark.parametrize("layout", ["one-postgresql-database", "two-sqlite-files"])
def test_replays_and_feedback_across_instances(layout, key, tmp_path, request):
    if layout == "one-postgresql-database":
        urls = [request.getfixturevalue("postgres_url")] * 2
    else:
        urls = [f"sqlite:///{tmp_path / 'a.sqlite3'}", f"sqlite:///{tmp_path / 'b.sqlite3'}"]
    trust = trust_file(tmp_path, key)
    with instance("a", urls[0], trust, tmp_path) as (a, _), instance("b", urls[1], trust, tmp_path) as (b, _):
        bearer = token(key, BASE + SERVICE)
        first = post(key, a, SERVICE, order_request(), bearer)
        replayed = post(key, b, SERVICE, order_request(), bearer)
        card = first.json()["cards"][0]["uuid"]
        # the card's note is written by a's note writer a moment after the call (feedback comes later: a clinician
        # acts on the card; feedback on a card not yet noted would count as on a card not issued)
        wait_until(lambda: run_sql(urls[0], "SELECT 1 FROM issued_cards WHERE card = ?", card))
        posted = post(key, a, FEEDBACK, {"feedback": [feedback_item(card, datetime.now(UTC))]})
        stats = requests.get(b + FEEDBACK + "/stats",
                             headers={"Authorization": f"Bearer {token(key, BASE + FEEDBACK + '/stats')}"},
                             timeout=15)
    assert first.status_code == 200 and posted.status_code == 200 and stats.status_code == 200
    if layout == "one-postgresql-database":
        assert replayed.status_code == 401, "the token replayed to the second instance was accepted"
        assert stats.json()["total"] == 1, "feedback posted to one instance is missing from the other's stats"
        assert stats.json()["byTopic"][0]["overridden"] == 1  # the card noted by a, its topic known to b
    else:  # the counter-example: each instance has its own truth
        assert replayed.status_code == 200
        assert stats.json()["total"] == 0


def test_load_survives_killed_workers_and_a_postgresql_restart(key, tmp_path, postgres_cluster, postgres_url):
    trust = trust_file(tmp_path, key)
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    acknowledged: list[list[tuple[str, str]]] = []  # the items of each 200
    unacknowledged: list[list[tuple[str, str]]] = []  # the items of each request that got no 200
    statuses: dict[int, int] = {}
    bad_bodies: list[str] = []
    calls: list[tuple[bool, bool]] = []  # order-sign: (during the outage, answered 200 with cards)
    cut_calls: list[str] = []  # order-sign calls whose connection the killed worker took with it
    ok_after_restart: dict[str, int] = {}
    outage, restarted, stop = threading.Event(), threading.Event(), threading.Event()
    lock = threading.Lock()

    with instance("a", postgres_url, trust, tmp_path) as (a, master_a), \
            instance("b", postgres_url, trust, tmp_path) as (b, _):
        bases = (a, b)
        issue_cards(postgres_url, SERVICE_ID, (f"card-{t}-{n}-{i}" for t in range(6) for n in range(1, REQUESTS + 1)
                                               for i in range(3)))

        def post_feedback(thread: int) -> None:
            n = 0
            while not stop.is_set() and n < REQUESTS:
                n += 1
                base = bases[n % 2]
                size = 1 + n % 3  # one to three items per request, stored in one transaction
                when = start + timedelta(seconds=thread, microseconds=n)
                items = [feedback_item(f"card-{thread}-{n}-{i}", when) for i in range(size)]
                keys = [(item["card"], utc_text(when)) for item in items]
                try:
                    response = post(key, base, FEEDBACK, {"feedback": items})
                    ok = response.status_code == 200 and response.json() == {"received": size, "stored": size}
                    status = response.status_code
                    if status != 200 and (status != 503 or response.json()["issue"][0]["code"] != "transient"):
                        bad_bodies.append(response.text)
                except requests.RequestException:  # the killed worker's connection
                    ok, status = False, 0
                with lock:
                    (acknowledged if ok else unacknowledged).append(keys)
                    statuses[status] = statuses.get(status, 0) + 1
                    if ok and restarted.is_set():
                        ok_after_restart[base] = ok_after_restart.get(base, 0) + 1

        def call_order_sign() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                during = outage.is_set()
                try:
                    response = post(key, bases[n % 2], SERVICE, order_request())
                except requests.RequestException as exc:  # the killed worker's connection, as for feedback
                    with lock:
                        cut_calls.append(type(exc).__name__)
                    continue
                with lock:
                    calls.append((during, response.status_code == 200 and bool(response.json()["cards"])))
                time.sleep(0.05)

        threads = [threading.Thread(target=post_feedback, args=(t,)) for t in range(6)]
        threads.append(threading.Thread(target=call_order_sign))
        for thread in threads:
            thread.start()
        try:
            assert wait_until(lambda: len(acknowledged) >= WARM_UP), f"only {len(acknowledged)} acknowledged"
            victim = wait_for_workers(master_a.pid, 2)[0]
            os.kill(victim, signal.SIGKILL)
            at_kill = len(acknowledged)
            assert wait_until(lambda: len(acknowledged) >= at_kill + WARM_UP), "no feedback taken after the kill"
            assert wait_until(lambda: len([p for p in children(master_a.pid) if p != victim]) == 2), \
                "gunicorn did not replace the killed worker"
            postgres_cluster.stop("immediate")
            outage.set()
            health = {base: wait_for_database(base, "unavailable") for base in bases}
            assert wait_until(lambda: statuses.get(503, 0) > 0 and any(during for during, _ in calls)), \
                f"the outage was not seen: {statuses}, order-sign calls during it: {[c for c in calls if c[0]]}"
            outage.clear()
            postgres_cluster.start()
            restarted.set()
            wait_until(lambda: len(ok_after_restart) == 2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            if not postgres_cluster.running():
                postgres_cluster.start()
        replacement = [pid for pid in children(master_a.pid) if pid != victim]

    assert len(replacement) == 2, "gunicorn did not replace the killed worker"
    assert all(h["status"] == "degraded" and h["database"]["status"] == "unavailable" for h in health.values()), health
    assert sorted(ok_after_restart) == sorted(bases), "an instance did not take feedback again after the restart"
    assert set(statuses) <= {0, 200, 503}, f"answers other than 200 and 503: {statuses}"
    assert not bad_bodies, bad_bodies[:3]
    assert statuses.get(503, 0) > 0, "the outage was not seen"
    during = [good for in_outage, good in calls if in_outage]
    assert during and all(good for _, good in calls), f"order-sign failed: {calls}"
    assert len(cut_calls) <= 1, f"order-sign connections lost beyond the one killed worker: {cut_calls}"

    _, expected = assert_acknowledged_stored(postgres_url, SERVICE_ID, acknowledged, unacknowledged)
    print(f"{len(acknowledged)} requests acknowledged ({len(expected)} items, all stored), {len(unacknowledged)} not "
          f"({statuses.get(503, 0)} answered 503, {statuses.get(0, 0)} cut by the kill); order-sign: {len(calls)} "
          f"calls, {len(during)} during the outage, all with cards")


def wait_for_database(base: str, status: str, timeout: float = 30) -> dict:
    """GET /healthz until its database status is ``status`` (bounded); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        health = requests.get(base + "/healthz", timeout=15).json()
        if health["database"]["status"] == status or time.monotonic() > deadline:
            return health
        time.sleep(0.1)
