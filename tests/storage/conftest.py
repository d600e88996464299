"""Storage fixtures: a store on each backend, plain SQL on its database (not through the store), and an outage of
that database (a SQLite file locked by another writer; the PostgreSQL server stopped as by a crash)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

import pytest

from fhirsvc.storage import open_store, sqlite_path
from fhirsvc.storage.base import utc_text


def run_sql(url: str, query: str, *params) -> list[tuple]:
    """Run one statement on the database of ``url`` on a connection of its own (``?`` placeholders); its rows."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def issue_cards(url: str, service: str, cards: Iterable[str], topic: str = "LOAD") -> None:
    """Note ``cards`` as issued now, straight in the database of ``url`` (as the service's note writer would), in
    one statement: feedback is stored only on cards the service issued."""
    cards = list(cards)
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN")  # one transaction: with a commit per card, 48,000 cards took 30 to 80 s
            conn.executemany("INSERT INTO issued_cards (service, card, topic, indicator, suggestions, issued_at)"
                             " VALUES (?, ?, ?, 'warning', '[]', ?)",
                             [(service, card, topic, utc_text(datetime.now(UTC))) for card in cards])
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO issued_cards (service, card, topic, indicator, suggestions, issued_at)"
                     " SELECT %s, card, %s, 'warning', '[]', now() FROM unnest(%s::text[]) AS card",
                     (service, topic, cards))


def assert_acknowledged_stored(url: str, service: str, acknowledged: list, unacknowledged: list) -> tuple[set, set]:
    """Every feedback item of an acknowledged request (a list of (card, timestamp) keys per request) is stored,
    once; an unacknowledged request is stored whole or not at all; nothing else is. The keys stored and the keys
    acknowledged."""
    rows = [(card, stamp if isinstance(stamp, str) else utc_text(stamp))
            for card, stamp in run_sql(url, "SELECT card, outcome_timestamp FROM feedback WHERE service = ?", service)]
    stored = set(rows)
    assert len(rows) == len(stored), "an item was stored twice"
    missing = [key for keys in acknowledged for key in keys if key not in stored]
    assert not missing, f"{len(missing)} acknowledged items are not in the store, e.g. {missing[:3]}"
    partial = [keys for keys in unacknowledged if 0 < sum(key in stored for key in keys) < len(keys)]
    assert not partial, f"requests stored in part: {partial[:3]}"
    expected = {key for keys in acknowledged for key in keys}
    assert stored - expected <= {key for keys in unacknowledged for key in keys}, "items nobody sent"
    return stored, expected


@pytest.fixture
def sql(database_url) -> Callable[..., list[tuple]]:
    return lambda query, *params: run_sql(database_url, query, *params)


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


@pytest.fixture
def outage(database_url, request) -> Callable[[], contextlib.AbstractContextManager]:
    """``with outage():`` the database cannot be written: SQLite, another connection holds the write lock;
    PostgreSQL, the server is stopped (immediate mode: as a crash) and started again at the end."""

    @contextlib.contextmanager
    def sqlite_locked() -> Iterator[None]:
        conn = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()

    @contextlib.contextmanager
    def postgres_stopped() -> Iterator[None]:
        cluster = request.getfixturevalue("postgres_cluster")
        cluster.stop("immediate")
        try:
            yield
        finally:
            cluster.start()

    return sqlite_locked if database_url.startswith("sqlite:") else postgres_stopped


def wait_until_healthy(store, timeout: float = 30.0) -> dict:
    """Ask the store's health until the database answers (bounded); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        health = store.health()
        if health["status"] == "ok" or time.monotonic() > deadline:
            return health
        time.sleep(0.1)
