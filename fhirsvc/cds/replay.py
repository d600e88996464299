"""The ``jti`` values of accepted JWTs, until their tokens expire: a replayed token is refused.

``MemoryReplayCache`` remembers them in one process. ``SqliteReplayCache`` keeps them in a SQLite file that
every worker process of a deployment opens, so a token replayed to another worker is refused as well;
the service uses it, in its state file (``FHIRSVC_FEEDBACK_DB``).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

PURGE_EVERY = 60.0  # seconds between deletions of expired entries


class ReplayCache(Protocol):
    def first_use(self, iss: str, jti: str, until: float, now: float) -> bool:
        """Record (iss, jti) as used until ``until``; False if it was already used and has not expired at ``now``."""


class MemoryReplayCache:
    """Used (iss, jti) pairs of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], float] = {}
        self._next_purge = -math.inf

    def first_use(self, iss: str, jti: str, until: float, now: float) -> bool:
        with self._lock:
            if now >= self._next_purge:
                self._seen = {k: expires for k, expires in self._seen.items() if expires > now}
                self._next_purge = now + PURGE_EVERY
            expires = self._seen.get((iss, jti))
            if expires is not None and expires > now:
                return False
            self._seen[(iss, jti)] = until
            return True


class SqliteReplayCache:
    """Used (iss, jti) pairs in a SQLite file shared by processes: one atomic statement records a pair unless an
    unexpired record of it exists (WAL; synchronous NORMAL, as a lost record can only let a token that is still
    within its short lifetime through once more after a power loss)."""

    SCHEMA = ("CREATE TABLE IF NOT EXISTS used_jti (iss TEXT NOT NULL, jti TEXT NOT NULL, until REAL NOT NULL,"
              " PRIMARY KEY (iss, jti)) WITHOUT ROWID")

    def __init__(self, path: str | Path, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._next_purge = -math.inf
        self._conn().execute(self.SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection; a forked worker opens its own."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def first_use(self, iss: str, jti: str, until: float, now: float) -> bool:
        conn = self._conn()
        if now >= self._next_purge:
            conn.execute("DELETE FROM used_jti WHERE until <= ?", (now,))
            self._next_purge = now + PURGE_EVERY
        cursor = conn.execute(
            "INSERT INTO used_jti (iss, jti, until) VALUES (?, ?, ?)"
            " ON CONFLICT (iss, jti) DO UPDATE SET until = excluded.until WHERE used_jti.until <= ?",
            (iss, jti, until, now))
        return cursor.rowcount == 1

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
