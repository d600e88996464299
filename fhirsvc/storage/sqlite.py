"""The embedded backend: one SQLite file (WAL) shared by the worker processes of one instance.

Feedback is written on a connection with ``synchronous=FULL``: on disk before its 200. The issued-cards notes (by
the note writer thread) and the ``jti`` values are written on connections with ``synchronous=NORMAL`` and a short
busy timeout: they survive a crash of the process, lose at most the last few on a power loss, and never make a
CDS call wait for the disk, nor long for a lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fhirsvc.storage.base import (
    CARD_MAX_AGE,
    HOT_TIMEOUT,
    PRUNE_EVERY,
    ConfigVersion,
    FeedbackCount,
    FeedbackCounts,
    FeedbackRow,
    Governance,
    IssuedCard,
    JudgedOrder,
    OrderCount,
    RuleCount,
    StorageError,
    Store,
    as_day,
    day_bounds,
    merge_issued,
    migrate,
    utc_text,
)

# Each version's statements, applied in order to a database at a lower version (IF NOT EXISTS: the files written
# before the schema had a version hold exactly version 1).
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS feedback (
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
            UNIQUE (service, card, outcome, outcome_timestamp))""",
        """CREATE TABLE IF NOT EXISTS issued_cards (
            service TEXT NOT NULL,
            card TEXT NOT NULL,
            topic TEXT,
            indicator TEXT,
            suggestions TEXT NOT NULL,            -- JSON array of suggestion uuids
            issued_at TEXT NOT NULL,
            PRIMARY KEY (service, card))""",
        "CREATE INDEX IF NOT EXISTS issued_cards_issued_at ON issued_cards (issued_at)",
        """CREATE TABLE IF NOT EXISTS used_jti (
            iss TEXT NOT NULL, jti TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (iss, jti)) WITHOUT ROWID""",
    ],
    # The drug of each card (rules are told apart by topic + indicator + drug), and the indexes of the
    # governance view's period queries.
    2: [
        "ALTER TABLE issued_cards ADD COLUMN drug TEXT",
        "ALTER TABLE feedback ADD COLUMN drug TEXT",
        # the cards of a period by UTC day and rule, read from the index alone, in the order they are grouped
        "CREATE INDEX IF NOT EXISTS issued_cards_day ON issued_cards (substr(issued_at, 1, 10), topic, indicator,"
        " drug, service)",
        "CREATE INDEX IF NOT EXISTS feedback_outcome_timestamp ON feedback (outcome_timestamp)",
    ],
    # Who sent each item (one counted outcome per card and reporter): the table rebuilt with the reporter in its
    # key, its rows copied (reporter '' for every earlier item); the items on cards not issued, counted per day.
    3: [
        """CREATE TABLE feedback_v3 (
            id INTEGER PRIMARY KEY,
            service TEXT NOT NULL,
            card TEXT NOT NULL,
            reporter TEXT NOT NULL DEFAULT '',    -- who sent it (fhirsvc.cds.feedback.reporter); '' unknown
            outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
            outcome_timestamp TEXT NOT NULL,      -- UTC, fixed width: 2021-12-11T10:05:31.000000Z
            accepted_suggestions TEXT NOT NULL,   -- JSON array of suggestion uuids
            override_system TEXT,
            override_code TEXT,
            override_display TEXT,
            user_comment TEXT,
            topic TEXT,                           -- the card's rule, when recorded
            indicator TEXT,
            drug TEXT,
            received_at TEXT NOT NULL,
            UNIQUE (service, card, reporter, outcome, outcome_timestamp))""",
        "INSERT INTO feedback_v3 (id, service, card, outcome, outcome_timestamp, accepted_suggestions,"
        " override_system, override_code, override_display, user_comment, topic, indicator, drug, received_at)"
        " SELECT id, service, card, outcome, outcome_timestamp, accepted_suggestions, override_system,"
        " override_code, override_display, user_comment, topic, indicator, drug, received_at FROM feedback",
        "DROP TABLE feedback",
        "ALTER TABLE feedback_v3 RENAME TO feedback",
        "CREATE INDEX IF NOT EXISTS feedback_outcome_timestamp ON feedback (outcome_timestamp)",
        """CREATE TABLE IF NOT EXISTS feedback_not_issued (
            service TEXT NOT NULL,
            day TEXT NOT NULL,                    -- UTC day the items were received: YYYY-MM-DD
            items INTEGER NOT NULL,
            PRIMARY KEY (service, day)) WITHOUT ROWID""",
    ],
    # The rule id of each card and feedback item (docs/cds-checks.md, "Rules and their identity"); rows stored
    # before keep their topic, indicator and drug, with no rule id.
    4: [
        "ALTER TABLE issued_cards ADD COLUMN rule TEXT",
        "ALTER TABLE feedback ADD COLUMN rule TEXT",
    ],
    # Schema version 5: the site configuration version of each card and feedback item; the judged orders (cards per
    # order); the site configuration versions the service ran with.
    5: [
        "ALTER TABLE issued_cards ADD COLUMN site_config TEXT",
        "ALTER TABLE feedback ADD COLUMN site_config TEXT",
        """CREATE TABLE IF NOT EXISTS judged_orders (
            service TEXT NOT NULL,
            order_key TEXT NOT NULL,              -- uuid5 of patient, order and drug (no patient data)
            drug TEXT NOT NULL,
            cards INTEGER NOT NULL,
            site_config TEXT,
            judged_at TEXT NOT NULL,
            PRIMARY KEY (service, order_key)) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS judged_orders_day ON judged_orders (substr(judged_at, 1, 10), drug)",
        """CREATE TABLE IF NOT EXISTS site_config_versions (
            version TEXT NOT NULL,
            digest TEXT NOT NULL,                 -- SHA-256 of the canonical JSON
            first_seen TEXT NOT NULL,
            settings TEXT NOT NULL,
            PRIMARY KEY (version, digest))""",
    ],
}

log = logging.getLogger("fhirsvc.storage")

DURABLE, HOT = "durable", "hot"
NOTES_PER_STATEMENT = 500  # issued cards in one INSERT (8 values each, within SQLite's limit of bound values)
CARDS_PER_LOOKUP = 500  # card ids in one IN (...) of the feedback's lookup of issued cards


class SqliteStore(Store):
    """Feedback, issued cards and used ``jti`` values in one SQLite file, safe for several processes and threads."""

    backend = "sqlite"
    database_errors = (sqlite3.Error,)

    def __init__(self, path: str | Path, timeout: float = 5.0, card_max_age: timedelta = CARD_MAX_AGE,
                 prune_every: timedelta = PRUNE_EVERY, hot_timeout: float = HOT_TIMEOUT):
        self.path = str(path)
        super().__init__(f"sqlite:///{self.path}", timeout, card_max_age, prune_every)
        self.hot_timeout = hot_timeout
        self._local = threading.local()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect(DURABLE)
            try:
                self._migrate(conn)
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot use the database {self.where}: {exc}") from exc

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with _Transaction(conn, "IMMEDIATE"):
            migrate(conn.execute, MIGRATIONS, self.where, "?")

    # --- connections -------------------------------------------------------------------------------------------

    def _connect(self, kind: str) -> sqlite3.Connection:
        """A new connection in autocommit mode, WAL; ``durable``: fully synced commits, waiting ``timeout`` on
        locks; ``hot``: synchronous NORMAL, waiting ``hot_timeout``."""
        timeout = self.timeout if kind == DURABLE else self.hot_timeout
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._enable_wal(conn, timeout)
            conn.execute(f"PRAGMA synchronous = {'FULL' if kind == DURABLE else 'NORMAL'}")
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
        """Switch to WAL, retrying: on a new file the switch fails at once when another process does it too."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    log.warning("database file %s is in %s mode, not WAL; writers will block readers",
                                conn.execute("PRAGMA database_list").fetchone()[2], mode)
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _conn(self, kind: str = DURABLE) -> sqlite3.Connection:
        """This thread's connection of that kind; a forked worker opens its own (SQLite connections must not
        cross fork)."""
        conns = getattr(self._local, "conns", None)
        if conns is None or self._local.pid != os.getpid():
            conns = self._local.conns = {}
            self._local.pid = os.getpid()
        if kind not in conns:
            conns[kind] = self._connect(kind)
        return conns[kind]

    def _close(self) -> None:
        conns = getattr(self._local, "conns", None)
        if conns is not None and self._local.pid == os.getpid():
            for conn in conns.values():
                conn.close()
        self._local.conns = None

    # --- the backend's operations ------------------------------------------------------------------------------

    def is_unavailable(self, exc: BaseException) -> bool:
        """Locked, busy, read-only, out of space, an I/O error, a damaged file: OperationalError or a plain
        DatabaseError. A constraint, a value too big or a bad parameter (IntegrityError, DataError,
        ProgrammingError, InterfaceError) is the statement's."""
        return isinstance(exc, sqlite3.OperationalError) or type(exc) in (sqlite3.DatabaseError, sqlite3.InternalError)

    def _db_record(self, service_id: str, rows: list[FeedbackRow], topics: dict[str, tuple[str | None, ...]],
                   received_at: datetime, reporter: str) -> int:
        conn = self._conn()
        unknown = sorted({row.card for row in rows} - topics.keys())
        with _Transaction(conn, "IMMEDIATE"):  # one short transaction: a lookup, one executemany, one upsert
            for chunk in range(0, len(unknown), CARDS_PER_LOOKUP):
                part = unknown[chunk:chunk + CARDS_PER_LOOKUP]
                topics.update((card, tuple(rule)) for card, *rule in conn.execute(
                    "SELECT card, topic, indicator, drug, rule, site_config FROM issued_cards WHERE service = ? AND"
                    " card IN ("
                    + ", ".join(["?"] * len(part)) + ")", (service_id, *part)))
            issued = [row for row in rows if row.card in topics]
            stored = conn.executemany(
                "INSERT OR IGNORE INTO feedback (service, card, reporter, outcome, outcome_timestamp,"
                " accepted_suggestions, override_system, override_code, override_display, user_comment, topic,"
                " indicator, drug, rule, site_config, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?)",
                [(service_id, row.card, reporter, row.outcome, utc_text(row.outcome_timestamp),
                  row.accepted_suggestions, row.override_system, row.override_code, row.override_display,
                  row.user_comment, *topics[row.card], utc_text(received_at)) for row in issued]).rowcount
            if len(issued) < len(rows):
                conn.execute("INSERT INTO feedback_not_issued (service, day, items) VALUES (?, ?, ?)"
                             " ON CONFLICT (service, day) DO UPDATE SET items = items + excluded.items",
                             (service_id, received_at.astimezone(UTC).date().isoformat(), len(rows) - len(issued)))
            return max(stored, 0)

    def count_queries(self, service_id: str | None, first: date | None, last: date | None,
                      issued: bool) -> dict[str, tuple[str, list]]:
        """The statements of ``_db_counts`` with their parameters (also for EXPLAIN in ``make bench``). The rule of
        a feedback item is the one recorded with it, else (recorded before its card was noted) its card's. Of the
        items of one card and reporter, only the latest counts (the same instant: the later received)."""
        # Timestamps are fixed-width UTC text: the first 10 characters are the UTC day, and text order is time order.
        start, end = day_bounds(first, last)
        where, params = _period("f.service", "f.outcome_timestamp", service_id, start, end)
        joined = (
            "SELECT COALESCE(f.topic, c.topic) AS topic, COALESCE(f.indicator, c.indicator) AS indicator,"
            " COALESCE(f.drug, c.drug) AS drug, substr(f.outcome_timestamp, 1, 10) AS day, f.card, f.outcome,"
            " f.override_system, f.override_code, f.override_display, COALESCE(f.rule, c.rule) AS rule"
            " FROM feedback f LEFT JOIN issued_cards c ON c.service = f.service AND c.card = f.card"
            f" WHERE {where} AND {LATEST}"
        )
        queries = {
            "feedback": ("SELECT topic, indicator, drug, day, outcome, override_system, override_code,"
                         f" MAX(override_display), COUNT(*), rule FROM ({joined}) GROUP BY 1, 2, 3, 4, 5, 6, 7, 10",
                         params),
            "unknown": ("SELECT COUNT(DISTINCT f.card) FROM feedback f LEFT JOIN issued_cards c ON c.service ="
                        f" f.service AND c.card = f.card WHERE {where} AND f.topic IS NULL AND f.indicator IS NULL"
                        " AND c.topic IS NULL AND c.indicator IS NULL", params),
            "not_issued": _not_issued(service_id, first, last),
        }
        if issued:
            days, day_params = _days("", service_id, first, last)
            queries["issued"] = (
                "SELECT topic, indicator, drug, substr(issued_at, 1, 10) AS day, COUNT(*), rule FROM issued_cards"
                f" WHERE {days} GROUP BY day, topic, indicator, drug, rule", day_params)
            # the cards of the period with feedback: from the (fewer) cards that have feedback, each once
            days, day_params = _days("c.", service_id, first, last)
            queries["answered"] = (
                "SELECT c.topic, c.indicator, c.drug, substr(c.issued_at, 1, 10), COUNT(*), c.rule"
                " FROM (SELECT DISTINCT service, card FROM feedback) f CROSS JOIN issued_cards c"
                f" ON c.service = f.service AND c.card = f.card WHERE {days} GROUP BY 1, 2, 3, 4, 6", day_params)
            queries.update(self.rule_queries(service_id, first, last, where, params))
        return queries

    def rule_queries(self, service_id: str | None, first: date | None, last: date | None, where: str,
                     params: list) -> dict[str, tuple[str, list]]:
        """The per-rule-id counts (cards issued, latest feedback per outcome, by site configuration version and UTC
        day), the judged orders' card counts, and the site configuration versions: aggregated in SQL."""
        days, day_params = _days("", service_id, first, last)
        judged, judged_params = _days("", service_id, first, last, "judged_at")
        return {
            "rule_issued": ("SELECT rule, drug, site_config, substr(issued_at, 1, 10) AS day, 'issued', COUNT(*)"
                            f" FROM issued_cards WHERE {days} AND rule IS NOT NULL GROUP BY 1, 2, 3, 4", day_params),
            "rule_feedback": (
                "SELECT rule, drug, site_config, day, outcome, COUNT(*) FROM (SELECT COALESCE(f.rule, c.rule) AS rule,"
                " COALESCE(f.drug, c.drug) AS drug,"
                " COALESCE(f.site_config, c.site_config) AS site_config, substr(f.outcome_timestamp, 1, 10) AS day,"
                " f.outcome FROM feedback f LEFT JOIN issued_cards c ON c.service = f.service AND c.card = f.card"
                f" WHERE {where} AND {LATEST}) WHERE rule IS NOT NULL GROUP BY 1, 2, 3, 4, 5", params),
            "orders": ("SELECT drug, site_config, substr(judged_at, 1, 10) AS day, cards, COUNT(*) FROM judged_orders"
                       f" WHERE {judged} GROUP BY 1, 2, 3, 4", judged_params),
            "versions": ("SELECT version, digest, first_seen, settings FROM site_config_versions"
                         " ORDER BY first_seen, version", []),
        }

    def _db_counts(self, service_id: str | None, first: date | None, last: date | None,
                   issued: bool) -> Governance:
        queries = self.count_queries(service_id, first, last, issued)
        conn = self._conn()
        with _Transaction(conn, "DEFERRED"):  # one snapshot for every query
            rows = conn.execute(*queries["feedback"]).fetchall()
            unknown = conn.execute(*queries["unknown"]).fetchone()[0]
            not_issued = conn.execute(*queries["not_issued"]).fetchone()[0]
            cards = conn.execute(*queries["issued"]).fetchall() if issued else []
            answered = conn.execute(*queries["answered"]).fetchall() if issued else []
            by_rule = [*conn.execute(*queries["rule_issued"]), *conn.execute(*queries["rule_feedback"])] if issued \
                else []
            orders = conn.execute(*queries["orders"]).fetchall() if issued else []
            versions = conn.execute(*queries["versions"]).fetchall() if issued else []
        return Governance(
            merge_issued(cards, answered),
            FeedbackCounts([FeedbackCount(topic, indicator, drug, as_day(day), *rest)
                            for topic, indicator, drug, day, *rest in rows], unknown, not_issued),
            [RuleCount(rule, drug, version, as_day(day), kind, count) for rule, drug, version, day, kind, count
             in by_rule],
            [OrderCount(drug, version, as_day(day), cards, count) for drug, version, day, cards, count in orders],
            [ConfigVersion(version, digest, from_utc_text(seen), settings) for version, digest, seen, settings
             in versions])

    def _db_remember_cards(self, rows: list[tuple[str, IssuedCard, datetime]], prune_before: datetime | None,
                           orders: list[tuple[str, JudgedOrder, str | None, datetime]] | None = None) -> None:
        conn = self._conn(HOT)
        with _Transaction(conn, "IMMEDIATE"):
            if prune_before is not None:
                conn.execute("DELETE FROM issued_cards WHERE issued_at < ?", (utc_text(prune_before),))
                conn.execute("DELETE FROM judged_orders WHERE judged_at < ?", (utc_text(prune_before),))
            for chunk in range(0, len(rows), NOTES_PER_STATEMENT):
                part = rows[chunk:chunk + NOTES_PER_STATEMENT]
                conn.execute(
                    "INSERT INTO issued_cards (service, card, topic, indicator, drug, rule, site_config, suggestions,"
                    " issued_at) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
                    + " ON CONFLICT (service, card) DO UPDATE SET topic = excluded.topic,"
                    " indicator = excluded.indicator, drug = excluded.drug, rule = excluded.rule,"
                    " site_config = excluded.site_config, suggestions = excluded.suggestions,"
                    " issued_at = excluded.issued_at",
                    [value for service_id, card, issued_at in part
                     for value in (service_id, card.card, card.topic, card.indicator, card.drug, card.rule,
                                   card.site_config, card.suggestions, utc_text(issued_at))])
            conn.executemany(
                "INSERT INTO judged_orders (service, order_key, drug, cards, site_config, judged_at) VALUES"
                " (?, ?, ?, ?, ?, ?) ON CONFLICT (service, order_key) DO UPDATE SET drug = excluded.drug,"
                " cards = excluded.cards, site_config = excluded.site_config, judged_at = excluded.judged_at",
                [(service_id, order.order, order.drug, order.cards, version, utc_text(judged_at))
                 for service_id, order, version, judged_at in orders or ()])

    def _db_config_seen(self, version: ConfigVersion) -> ConfigVersion:
        conn = self._conn()
        with _Transaction(conn, "IMMEDIATE"):
            conn.execute("INSERT INTO site_config_versions (version, digest, first_seen, settings) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (version, digest) DO NOTHING",
                         (version.version, version.digest, utc_text(version.first_seen), version.settings))
            seen = conn.execute("SELECT first_seen FROM site_config_versions WHERE version = ? AND digest = ?",
                                (version.version, version.digest)).fetchone()[0]
        return ConfigVersion(version.version, version.digest, from_utc_text(seen), version.settings)

    def _db_first_use(self, pairs: list[tuple[str, str, float]], now: float, purge: bool) -> list[bool]:
        conn = self._conn(HOT)
        if purge:
            conn.execute("DELETE FROM used_jti WHERE until <= ?", (now,))
        return [conn.execute(
            "INSERT INTO used_jti (iss, jti, until) VALUES (?, ?, ?)"
            " ON CONFLICT (iss, jti) DO UPDATE SET until = excluded.until WHERE used_jti.until <= ?",
            (iss, jti, until, now)).rowcount == 1 for iss, jti, until in pairs]

    def _db_ping(self) -> None:
        """Read the schema version holding the write lock: a file locked by another writer is unavailable too."""
        with _Transaction(self._conn(HOT), "IMMEDIATE") as conn:
            conn.execute("SELECT version FROM fhirsvc_schema").fetchall()
            conn.execute("ROLLBACK")


def _period(service_column: str, time_column: str, service_id: str | None, start: datetime | None,
            end: datetime | None) -> tuple[str, list[str]]:
    """The WHERE clause (and its parameters) of one service, or all, in [start, end)."""
    clauses, params = ["1 = 1"], []
    if service_id is not None:
        clauses.append(f"{service_column} = ?")
        params.append(service_id)
    if start is not None:
        clauses.append(f"{time_column} >= ?")
        params.append(utc_text(start))
    if end is not None:
        clauses.append(f"{time_column} < ?")
        params.append(utc_text(end))
    return " AND ".join(clauses), params


# The item is its card and reporter's latest: no later one (by outcomeTimestamp; the same instant: by id).
LATEST = ("NOT EXISTS (SELECT 1 FROM feedback n WHERE n.service = f.service AND n.card = f.card"
          " AND n.reporter = f.reporter AND (n.outcome_timestamp > f.outcome_timestamp"
          " OR (n.outcome_timestamp = f.outcome_timestamp AND n.id > f.id)))")


def _not_issued(service_id: str | None, first: date | None, last: date | None) -> tuple[str, list[str]]:
    """The statement summing the not-issued items of one service, or all, received on the UTC days first to last."""
    clauses, params = ["1 = 1"], []
    if service_id is not None:
        clauses.append("service = ?")
        params.append(service_id)
    for bound, op in ((first, ">="), (last, "<=")):
        if bound is not None:
            clauses.append(f"day {op} ?")
            params.append(bound.isoformat())
    return f"SELECT COALESCE(SUM(items), 0) FROM feedback_not_issued WHERE {' AND '.join(clauses)}", params


def from_utc_text(text: str) -> datetime:
    """The instant of a ``utc_text`` value."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def _days(alias: str, service_id: str | None, first: date | None, last: date | None,
          column: str = "issued_at") -> tuple[str, list[str]]:
    """The WHERE clause of issued cards of one service, or all, on the UTC days first to last: on the day
    expression, so that the issued_cards_day index serves it."""
    clauses, params = ["1 = 1"], []
    if service_id is not None:
        clauses.append(f"{alias}service = ?")
        params.append(service_id)
    for bound, op in ((first, ">="), (last, "<=")):
        if bound is not None:
            clauses.append(f"substr({alias}{column}, 1, 10) {op} ?")
            params.append(bound.isoformat())
    return " AND ".join(clauses), params


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
