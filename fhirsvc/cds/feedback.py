"""CDS Hooks 2.0.1 feedback: validation of posted outcomes and a durable SQLite store counting them per card topic."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from fhirsvc.errors import FhirsvcError

log = logging.getLogger(__name__)

OUTCOMES = ("accepted", "overridden")

# RFC 3339 date-time; the offset group is optional here only so that a naive time gets its own message.
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


class FeedbackInvalid(FhirsvcError):
    """The posted feedback does not conform; ``errors`` maps each bad field (with its index) to messages."""

    status = HTTPStatus.BAD_REQUEST

    @property
    def public_message(self) -> str:
        return "the feedback is not valid"

    @property
    def fields(self) -> dict:  # type: ignore[override]
        return self.errors

    def __init__(self, errors: dict):
        super().__init__("invalid feedback")
        self.errors = errors


@dataclass(frozen=True)
class FeedbackItem:
    """One validated outcome of one card, with its timestamp normalised to UTC so equal instants compare equal."""

    card: str
    outcome: str
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...] = ()
    override_code: str | None = None
    override_system: str | None = None
    override_display: str | None = None
    user_comment: str | None = None


class Instant(fields.Field):
    """An RFC 3339 date-time with a time zone, as an aware UTC datetime; stricter than ISO 8601 on purpose."""

    default_error_messages = {  # noqa: RUF012 - marshmallow merges this class attribute
        "invalid": "Not a valid RFC 3339 date-time (expected e.g. 2021-12-11T10:05:31Z).",
        "naive": "Timestamp has no time zone; use Z or an offset such as +01:00.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not (match := _DATE_TIME.fullmatch(value)):
            raise self.make_error("invalid")
        base, fraction, offset = match.groups()
        if offset is None:
            raise self.make_error("naive")
        text = base.upper() + (fraction or "")[:7] + ("+00:00" if offset in "Zz" else offset)
        try:
            return datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, OverflowError) as exc:  # OverflowError: 0001-01-01T00:00:01+00:01 is before year 1 in UTC
            raise self.make_error("invalid") from exc


def _text(**kwargs: Any) -> fields.String:
    """A non-empty string field."""
    return fields.String(validate=validate.Length(min=1), **kwargs)


class _Strict(Schema):
    """Unknown fields are dropped so newer clients keep working; known fields are type-checked."""

    class Meta:
        unknown = EXCLUDE


class _SuggestionRef(_Strict):
    id = _text(required=True)


class _Coding(_Strict):
    code = _text(required=True)
    system = _text(required=True)
    display = fields.String()


class _OverrideReason(_Strict):
    reason = fields.Nested(_Coding)
    userComment = fields.String()


class _Item(_Strict):
    card = _text(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    outcomeTimestamp = Instant(required=True)
    acceptedSuggestions = fields.List(fields.Nested(_SuggestionRef), validate=validate.Length(min=1))
    overrideReason = fields.Nested(_OverrideReason)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _invariants(self, data: dict, original: dict, **kwargs: Any) -> None:
        """The 3.0 invariants (accepted needs suggestions; a reason or a comment), beside field errors to list all."""
        # ``data`` holds only the fields that passed, so presence is judged on the original item.
        errors: dict[str, list[str]] = {}
        if data.get("outcome") == "accepted" and "acceptedSuggestions" not in original:
            errors["acceptedSuggestions"] = ["Required when outcome is accepted."]
        reason = data.get("overrideReason")
        if reason is not None and "reason" not in reason and "userComment" not in reason:
            errors["overrideReason"] = ["Needs a reason or a userComment."]
        if errors:
            raise ValidationError(errors)


class _Body(_Strict):
    feedback = fields.List(fields.Nested(_Item), required=True, validate=validate.Length(min=1))


def _string_keys(errors: Any) -> Any:
    """Marshmallow indexes list errors by int; the 400 body is JSON, so use the same string keys here."""
    if isinstance(errors, dict):
        return {str(key): _string_keys(value) for key, value in errors.items()}
    return errors


def parse_feedback(body: object) -> list[FeedbackItem]:
    """Validate a ``{"feedback": [...]}`` body into items; raise FeedbackInvalid naming every bad field."""
    try:
        data = _Body().load(body)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise FeedbackInvalid(_string_keys(errors)) from None
    items = []
    for raw in data["feedback"]:
        override = raw.get("overrideReason", {})
        reason = override.get("reason", {})
        items.append(
            FeedbackItem(
                card=raw["card"],
                outcome=raw["outcome"],
                outcome_timestamp=raw["outcomeTimestamp"],
                accepted_suggestions=tuple(ref["id"] for ref in raw.get("acceptedSuggestions", ())),
                override_code=reason.get("code"),
                override_system=reason.get("system"),
                override_display=reason.get("display"),
                user_comment=override.get("userComment"),
            )
        )
    return items


SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    outcome_timestamp TEXT NOT NULL,      -- UTC, fixed width: 2021-12-11T10:05:31.000000Z
    accepted_suggestions TEXT NOT NULL,   -- JSON array of suggestion uuids
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    user_comment TEXT,
    topic TEXT,                           -- card topic code, when known at recording time
    indicator TEXT,
    received_at TEXT NOT NULL,
    UNIQUE (service, card, outcome, outcome_timestamp)
);
CREATE TABLE IF NOT EXISTS issued_cards (
    service TEXT NOT NULL,
    card TEXT NOT NULL,
    topic TEXT,
    indicator TEXT,
    suggestions TEXT NOT NULL,            -- JSON array of suggestion uuids
    issued_at TEXT NOT NULL,
    PRIMARY KEY (service, card)
);
CREATE INDEX IF NOT EXISTS issued_cards_issued_at ON issued_cards (issued_at);
"""


def _utc_text(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so text order is time order and equal instants are equal strings."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _card_facts(card: Mapping[str, Any]) -> tuple[str | None, str | None, list[str]]:
    """The topic code, indicator and suggestion uuids of one of our cards."""
    source = card.get("source")
    topic = source.get("topic") if isinstance(source, Mapping) else None
    code = topic.get("code") if isinstance(topic, Mapping) else None
    suggestions = card.get("suggestions")
    uuids = [s["uuid"] for s in suggestions or () if isinstance(s, Mapping) and isinstance(s.get("uuid"), str)]
    indicator = card.get("indicator")
    return code, indicator if isinstance(indicator, str) else None, uuids


class FeedbackStore:
    """Feedback and the cards it refers to in one SQLite file, safe for several processes and threads at once."""

    def __init__(self, path: str | Path, card_max_age: timedelta = timedelta(days=30), busy_timeout: float = 10.0,
                 prune_every: timedelta = timedelta(minutes=1)):
        self.path = str(path)
        self.card_max_age = card_max_age
        self.busy_timeout = busy_timeout
        self.prune_every = prune_every  # cards older than card_max_age are deleted at most this often (per process)
        self._pruned_at: float | None = None
        self._local = threading.local()
        conn = self._connect()
        try:
            conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        finally:
            conn.close()

    def _connect(self, synchronous: str = "FULL") -> sqlite3.Connection:
        """A new connection in autocommit mode, WAL, fully synced commits (unless told otherwise), and waiting on
        locks rather than failing."""
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        mode = self._enable_wal(conn)
        if mode != "wal":
            log.warning("feedback store %s is in %s mode, not WAL; writers will block readers", self.path, mode)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch to WAL, retrying: on a new file the switch fails at once when another process does it too."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _conn(self, synchronous: str = "FULL") -> sqlite3.Connection:
        """This thread's connection (one per ``synchronous`` setting); a forked worker opens its own, since SQLite
        connections must not cross fork."""
        conns = getattr(self._local, "conns", None)
        if conns is None or self._local.pid != os.getpid():
            conns = self._local.conns = {}
            self._local.pid = os.getpid()
        if synchronous not in conns:
            conns[synchronous] = self._connect(synchronous)
        return conns[synchronous]

    def _transaction(self, mode: str = "IMMEDIATE") -> _Transaction:
        """A transaction on this thread's connection; IMMEDIATE for writes."""
        return _Transaction(self._conn(), mode)

    def close(self) -> None:
        """Close this thread's connections (others are opened on next use)."""
        conns = getattr(self._local, "conns", None)
        if conns is not None and self._local.pid == os.getpid():
            for conn in conns.values():
                conn.close()
        self._local.conns = None

    def record(
        self, service_id: str, items: list[FeedbackItem], topics: Mapping[str, tuple[str, str]] | None = None
    ) -> int:
        """Store items durably, ignoring ones already stored; return how many were new."""
        topics = dict(topics or {})
        now = _utc_text(datetime.now(UTC))
        with self._transaction() as conn:
            unknown = {item.card for item in items} - topics.keys()
            for card in unknown:
                row = conn.execute(
                    "SELECT topic, indicator FROM issued_cards WHERE service = ? AND card = ?", (service_id, card)
                ).fetchone()
                if row is not None:
                    topics[card] = row
            rows = [
                (
                    service_id,
                    item.card,
                    item.outcome,
                    _utc_text(item.outcome_timestamp),
                    json.dumps(list(item.accepted_suggestions)),
                    item.override_system,
                    item.override_code,
                    item.override_display,
                    item.user_comment,
                    *topics.get(item.card, (None, None)),
                    now,
                )
                for item in items
            ]
            cursor = conn.executemany(
                "INSERT OR IGNORE INTO feedback (service, card, outcome, outcome_timestamp, accepted_suggestions,"
                " override_system, override_code, override_display, user_comment, topic, indicator, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            new = cursor.rowcount
        log.info("feedback for %s: %d item(s), %d new", service_id, len(items), new)
        return new

    def remember_cards(self, service_id: str, cards: list[dict]) -> None:
        """Note the topic of each card with a uuid so later feedback can be counted per topic; prune old cards."""
        now = datetime.now(UTC)
        issued_at = _utc_text(now)
        rows = []
        for card in cards:
            uuid = card.get("uuid")
            if isinstance(uuid, str) and uuid:
                topic, indicator, suggestions = _card_facts(card)
                rows.append((service_id, uuid, topic, indicator, json.dumps(suggestions), issued_at))
        if not rows:
            return  # clients send no feedback on cards without a uuid, so there is nothing to remember
        # This runs on every CDS call with cards, so it does not wait for the disk: its own connection with
        # synchronous NORMAL (WAL) keeps the rows through a crash of the process and loses only the last few on a
        # power loss (feedback to those cards then counts under no topic). Feedback itself (record) stays FULL:
        # on disk before the 200.
        conn = self._conn("NORMAL")
        if self._pruned_at is None or time.monotonic() - self._pruned_at >= self.prune_every.total_seconds():
            conn.execute("DELETE FROM issued_cards WHERE issued_at < ?", (_utc_text(now - self.card_max_age),))
            self._pruned_at = time.monotonic()
        # One statement for all the cards: one transaction of its own (the connection is in autocommit mode).
        conn.execute(
            "INSERT INTO issued_cards (service, card, topic, indicator, suggestions, issued_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows))
            + " ON CONFLICT (service, card) DO UPDATE SET topic = excluded.topic, indicator = excluded.indicator,"
            " suggestions = excluded.suggestions, issued_at = excluded.issued_at",
            [value for row in rows for value in row],
        )

    def stats(self, service_id: str) -> dict:
        """Outcome counts per card topic and indicator, plus how many distinct cards had no known topic."""
        joined = (
            "SELECT COALESCE(f.topic, c.topic) AS topic, COALESCE(f.indicator, c.indicator) AS indicator,"
            " f.card, f.outcome, f.override_code"
            " FROM feedback f LEFT JOIN issued_cards c ON c.service = f.service AND c.card = f.card"
            " WHERE f.service = ?"
        )
        with self._transaction("DEFERRED") as conn:  # one snapshot for both queries
            total, unknown = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT CASE WHEN topic IS NULL AND indicator IS NULL THEN card END)"
                f" FROM ({joined})",
                (service_id,),
            ).fetchone()
            rows = conn.execute(
                f"SELECT topic, indicator, outcome, override_code, COUNT(*) FROM ({joined})"
                " WHERE topic IS NOT NULL OR indicator IS NOT NULL GROUP BY 1, 2, 3, 4",
                (service_id,),
            ).fetchall()
        groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        for topic, indicator, outcome, code, count in rows:
            group = groups.setdefault(
                (topic, indicator),
                {"topic": topic, "indicator": indicator, "accepted": 0, "overridden": 0, "overrideReasons": {}},
            )
            group[outcome] += count
            if code is not None:
                group["overrideReasons"][code] = group["overrideReasons"].get(code, 0) + count
        by_topic = [groups[key] for key in sorted(groups, key=lambda k: (k[0] is None, k[0] or "", k[1] or ""))]
        return {"service": service_id, "total": total, "byTopic": by_topic, "unknownCards": unknown}


class _Transaction:
    """BEGIN ... COMMIT; writers use IMMEDIATE to take the lock up front, so they queue instead of deadlocking."""

    def __init__(self, conn: sqlite3.Connection, mode: str):
        self.conn = conn
        self.mode = mode

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.conn.in_transaction:
            return
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                self.conn.execute("ROLLBACK")  # leave the connection usable for the next request
                raise
        self.conn.execute("ROLLBACK")
