"""The ``jti`` values of accepted JWTs, until their tokens expire: a replayed token is refused.

``MemoryReplayCache`` remembers them in one process. The service keeps them in its database
(``fhirsvc.storage``: SQLite for the worker processes of one instance, PostgreSQL for several instances), so a
token replayed to another worker or instance is refused as well.
"""

from __future__ import annotations

import math
import threading
from typing import Protocol

PURGE_EVERY = 60.0  # seconds between deletions of expired entries


class ReplayUnrecordable(Exception):
    """The (iss, jti) pair cannot be recorded (its database refuses the value): the token is refused."""


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
