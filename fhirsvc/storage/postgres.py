"""The shared backend: PostgreSQL, through psycopg 3 and its connection pool.

Every instance of the service (and every gunicorn worker of each) writes to the same database, so a ``jti`` used on
one instance is refused on all, and feedback posted to one is counted by all.

- Start-up (``__init__``, in the gunicorn master before the workers fork) opens one plain connection, creates or
  migrates the schema under an advisory lock (several instances may start at once), and closes it. A database
  that cannot be reached stops the service there, with its URL (without password) and the reason.
- Each worker process opens its own pools on first use (a pool's sockets and threads must not cross fork):
  feedback, statistics and health on one bounded by ``pool_size``, waiting at most ``timeout`` for a connection;
  the ``jti`` check and the issued-cards notes on one of their own (HOT_POOL_SIZE), waiting at most
  ``HOT_TIMEOUT``, so that feedback requests holding every connection of the first never hold them up;
  with a server-side ``statement_timeout`` and a TCP user timeout, so a lost database answers with an error
  rather than a hang. A connection broken by a restart of the server is discarded and the operation is tried
  again on another; the pool reconnects by itself when the server is back.
- Connections default to ``synchronous_commit = off``: the issued-cards note and the ``jti`` values do not wait
  for the server's disk (other sessions see them as soon as they are committed; a crash of the server may lose
  the last few, as SQLite's NORMAL mode on a power loss). Feedback is committed in a transaction with
  ``synchronous_commit = on``: on the server's disk before its 200.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from fhirsvc.storage.base import (
    CARD_MAX_AGE,
    HEALTH_TIMEOUT,
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
    day_bounds,
    merge_issued,
    migrate,
    reason,
)

log = logging.getLogger("fhirsvc.storage")
T = TypeVar("T")

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS feedback (
            id bigserial PRIMARY KEY,
            service text NOT NULL,
            card text NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
            outcome_timestamp timestamptz NOT NULL,
            accepted_suggestions jsonb NOT NULL,       -- array of suggestion uuids
            override_system text,
            override_code text,
            override_display text,
            user_comment text,
            topic text,                                -- card topic code, when known at recording time
            indicator text,
            received_at timestamptz NOT NULL,
            UNIQUE (service, card, outcome, outcome_timestamp))""",
        """CREATE TABLE IF NOT EXISTS issued_cards (
            service text NOT NULL,
            card text NOT NULL,
            topic text,
            indicator text,
            suggestions jsonb NOT NULL,                -- array of suggestion uuids
            issued_at timestamptz NOT NULL,
            PRIMARY KEY (service, card))""",
        "CREATE INDEX IF NOT EXISTS issued_cards_issued_at ON issued_cards (issued_at)",
        """CREATE TABLE IF NOT EXISTS used_jti (
            iss text NOT NULL, jti text NOT NULL, until double precision NOT NULL, PRIMARY KEY (iss, jti))""",
        "CREATE INDEX IF NOT EXISTS used_jti_until ON used_jti (until)",
    ],
    # The drug of each card (rules are told apart by topic + indicator + drug), and the indexes of the
    # governance view's period queries.
    2: [
        "ALTER TABLE issued_cards ADD COLUMN IF NOT EXISTS drug text",
        "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS drug text",
        "CREATE INDEX IF NOT EXISTS feedback_outcome_timestamp ON feedback (outcome_timestamp)",
    ],
    # Who sent each item (one counted outcome per card and reporter), in the key that makes an item new
    # (reporter '' for every earlier item); the items on cards not issued, counted per day.
    3: [
        "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS reporter text NOT NULL DEFAULT ''",
        "ALTER TABLE feedback DROP CONSTRAINT IF EXISTS feedback_service_card_outcome_outcome_timestamp_key",
        "ALTER TABLE feedback ADD CONSTRAINT feedback_once UNIQUE (service, card, reporter, outcome,"
        " outcome_timestamp)",
        """CREATE TABLE IF NOT EXISTS feedback_not_issued (
            service text NOT NULL,
            day date NOT NULL,                         -- UTC day the items were received
            items bigint NOT NULL,
            PRIMARY KEY (service, day))""",
    ],
    # The rule id of each card and feedback item (docs/cds-checks.md, "Rules and their identity"); rows stored
    # before keep their topic, indicator and drug, with no rule id.
    4: [
        "ALTER TABLE issued_cards ADD COLUMN IF NOT EXISTS rule text",
        "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS rule text",
    ],
    # Schema version 5: the site configuration version of each card and feedback item; the judged orders (cards per
    # order); the site configuration versions the service ran with.
    5: [
        "ALTER TABLE issued_cards ADD COLUMN IF NOT EXISTS site_config text",
        "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS site_config text",
        """CREATE TABLE IF NOT EXISTS judged_orders (
            service text NOT NULL,
            order_key text NOT NULL,                   -- uuid5 of patient, order and drug (no patient data)
            drug text NOT NULL,
            cards integer NOT NULL,
            site_config text,
            judged_at timestamptz NOT NULL,
            PRIMARY KEY (service, order_key))""",
        "CREATE INDEX IF NOT EXISTS judged_orders_judged_at ON judged_orders (judged_at)",
        """CREATE TABLE IF NOT EXISTS site_config_versions (
            version text NOT NULL,
            digest text NOT NULL,                      -- SHA-256 of the canonical JSON
            first_seen timestamptz NOT NULL,
            settings jsonb NOT NULL,
            PRIMARY KEY (version, digest))""",
    ],
}

SCHEMA_LOCK = 0x66686972  # pg_advisory_xact_lock key held while the schema is created or migrated ("fhir")
NOTES_PER_STATEMENT = 1000  # issued cards in one INSERT (8 parameters each, within the protocol's 65,535)
FEEDBACK_PER_STATEMENT = 1000  # feedback items in one INSERT (15 parameters each)
# SQLSTATE classes of a database that cannot be used now: connection exception, insufficient resources (disk full,
# too many connections), operator intervention (shutdown, statement timeout), system error (I/O), transaction
# rollback (serialization, deadlock), object not in prerequisite state (lock not available), internal error; and
# a read-only transaction (a standby). Every other class (data exception, program limit exceeded such as an index
# row too large, integrity, syntax) is the statement's.
UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58", "40", "55", "XX"})
READ_ONLY = "25006"
DURABLE, HOT = "durable", "hot"  # the kinds of pool
HOT_POOL_SIZE = 2  # connections of the hot path per process: the note writer thread and one jti check at a time
RECONNECT_TIMEOUT = 5.0  # seconds one reconnection attempt of the pool goes on before a new one may start


def redacted(url: str) -> str:
    """The URL without its password (and without query parameters, which may carry one)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


class PostgresStore(Store):
    """Feedback, issued cards and used ``jti`` values in a PostgreSQL database shared by every instance."""

    backend = "postgresql"
    database_errors = (psycopg.Error,)

    def __init__(self, url: str, timeout: float = 5.0, pool_size: int = 4, card_max_age: timedelta = CARD_MAX_AGE,
                 prune_every: timedelta = PRUNE_EVERY):
        super().__init__(redacted(url), timeout, card_max_age, prune_every)
        self.pool_size = pool_size
        try:
            given = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StorageError(f"FHIRSVC_DATABASE_URL is not a PostgreSQL URL: {exc}") from None
        # Defaults that the URL's own parameters override.
        self.conninfo = make_conninfo("", **{"connect_timeout": max(2, math.ceil(timeout)),
                                             "application_name": "fhirsvc", "tcp_user_timeout": int(timeout * 1000),
                                             **given})
        self._pools: dict[str, ConnectionPool] = {}  # this process's pools, by kind
        self._pool_pid: int | None = None
        self._pool_lock = threading.Lock()
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise StorageError(f"cannot use the database {self.where}: {reason(exc)}") from None

    def _migrate(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            migrate(conn.execute, MIGRATIONS, self.where, "%s")

    # --- connections -------------------------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection) -> None:
        """Each new pooled connection: asynchronous commit by default (feedback turns it on), statement timeout."""
        conn.execute("SET synchronous_commit = off")
        conn.execute(f"SET statement_timeout = {int(self.timeout * 1000)}")

    def pool(self, kind: str = DURABLE) -> ConnectionPool:
        """This process's pool of that kind, opened on first use (so each gunicorn worker opens its own, after
        fork): ``durable`` (feedback, statistics, health; ``pool_size`` connections) or ``hot`` (the issued-cards
        notes and the ``jti`` check; HOT_POOL_SIZE connections of their own, so that feedback holding every
        durable connection never makes them wait)."""
        pid = os.getpid()
        pool = self._pools.get(kind) if self._pool_pid == pid else None
        if pool is None:
            with self._pool_lock:
                if self._pool_pid != pid:
                    self._pools, self._pool_pid = {}, pid
                pool = self._pools.get(kind)
                if pool is None:
                    pool = self._pools[kind] = ConnectionPool(
                        self.conninfo, min_size=1, max_size=self.pool_size if kind == DURABLE else HOT_POOL_SIZE,
                        timeout=self.timeout, open=True, kwargs={"autocommit": True}, configure=self._configure,
                        name=f"fhirsvc-{kind}-{pid}", reconnect_timeout=RECONNECT_TIMEOUT,
                        reconnect_failed=self._reconnect_failed)
        return pool

    def _reconnect_failed(self, pool: ConnectionPool) -> None:
        log.warning("database %s: no connection for %g s; trying again on the next request", self.where,
                    RECONNECT_TIMEOUT)

    def _run(self, operation: Callable[[psycopg.Connection], T], timeout: float, kind: str = DURABLE) -> T:
        """Run ``operation`` on a connection of the ``kind`` pool, waiting at most ``timeout`` for one; on a
        connection broken under it (the server restarted since it was opened) try again on another, within the
        same time."""
        deadline = time.monotonic() + timeout
        while True:
            conn = None
            try:
                with self.pool(kind).connection(timeout=max(0.001, deadline - time.monotonic())) as conn:
                    return operation(conn)
            except psycopg.OperationalError:
                if conn is None or not conn.broken or time.monotonic() >= deadline:
                    raise

    @staticmethod
    @contextmanager
    def durable_transaction(conn: psycopg.Connection) -> Iterator[None]:
        """A transaction whose commit waits for the server's disk (and its synchronous standbys, if any)."""
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = on")
            yield

    def _close(self) -> None:
        with self._pool_lock:
            if self._pool_pid == os.getpid():
                for pool in self._pools.values():
                    pool.close()
            self._pools = {}

    # --- the backend's operations ------------------------------------------------------------------------------

    def is_unavailable(self, exc: BaseException) -> bool:
        """By SQLSTATE class (UNAVAILABLE_CLASSES); an error without one is the client's: a connection that
        failed or broke (OperationalError, the pool's timeout), the connection's state (InterfaceError), else a
        value refused before it was sent (a NUL in a text: DataError)."""
        state = getattr(exc, "sqlstate", None)
        if state is None:
            return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
        return state[:2] in UNAVAILABLE_CLASSES or state == READ_ONLY

    def _db_record(self, service_id: str, rows: list[FeedbackRow], topics: dict[str, tuple[str | None, ...]],
                   received_at: datetime, reporter: str) -> int:
        def record(conn: psycopg.Connection) -> int:
            known = dict(topics)
            stored = 0
            with self.durable_transaction(conn):  # one short transaction: a lookup, the inserts, one upsert
                unknown = sorted({row.card for row in rows} - known.keys())
                if unknown:
                    for card, *rule in conn.execute(
                            "SELECT card, topic, indicator, drug, rule, site_config FROM issued_cards"
                            " WHERE service = %s AND card = ANY(%s)", (service_id, unknown)):
                        known[card] = tuple(rule)
                issued = [row for row in rows if row.card in known]
                for chunk in range(0, len(issued), FEEDBACK_PER_STATEMENT):
                    part = issued[chunk:chunk + FEEDBACK_PER_STATEMENT]
                    stored += len(conn.execute(
                        "INSERT INTO feedback (service, card, reporter, outcome, outcome_timestamp,"
                        " accepted_suggestions, override_system, override_code, override_display, user_comment,"
                        " topic, indicator, drug, rule, site_config, received_at) VALUES "
                        + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
                        + " ON CONFLICT (service, card, reporter, outcome, outcome_timestamp) DO NOTHING RETURNING 1",
                        [value for row in part for value in (
                            service_id, row.card, reporter, row.outcome, row.outcome_timestamp,
                            row.accepted_suggestions, row.override_system, row.override_code, row.override_display,
                            row.user_comment, *known[row.card], received_at)]).fetchall())
                if len(issued) < len(rows):
                    conn.execute("INSERT INTO feedback_not_issued (service, day, items) VALUES (%s, %s, %s)"
                                 " ON CONFLICT (service, day) DO UPDATE"
                                 " SET items = feedback_not_issued.items + excluded.items",
                                 (service_id, received_at.astimezone(UTC).date(), len(rows) - len(issued)))
            return stored

        return self._run(record, self.timeout)

    def count_queries(self, service_id: str | None, first: date | None, last: date | None,
                      issued: bool) -> dict[str, tuple[str, list]]:
        """The statements of ``_db_counts`` with their parameters (also for EXPLAIN in ``make bench``). The rule of
        a feedback item is the one recorded with it, else (recorded before its card was noted) its card's. Of the
        items of one card and reporter, only the latest counts (the same instant: the later received)."""
        start, end = day_bounds(first, last)
        where, params = _period("f.service", "f.outcome_timestamp", service_id, start, end)
        joined = (
            "SELECT COALESCE(f.topic, c.topic) AS topic, COALESCE(f.indicator, c.indicator) AS indicator,"
            " COALESCE(f.drug, c.drug) AS drug, (f.outcome_timestamp AT TIME ZONE 'UTC')::date AS day, f.card,"
            " f.outcome, f.override_system, f.override_code, f.override_display, COALESCE(f.rule, c.rule) AS rule"
            " FROM feedback f LEFT JOIN issued_cards c ON c.service = f.service AND c.card = f.card"
            f" WHERE {where} AND {LATEST}"
        )
        queries = {
            "feedback": ("SELECT topic, indicator, drug, day, outcome, override_system, override_code,"
                         f" MAX(override_display), COUNT(*), rule FROM ({joined}) j GROUP BY 1, 2, 3, 4, 5, 6, 7, 10",
                         params),
            "unknown": ("SELECT COUNT(DISTINCT f.card) FROM feedback f LEFT JOIN issued_cards c ON c.service ="
                        f" f.service AND c.card = f.card WHERE {where} AND f.topic IS NULL AND f.indicator IS NULL"
                        " AND c.topic IS NULL AND c.indicator IS NULL", params),
            "not_issued": _not_issued(service_id, first, last),
        }
        if issued:
            where, params = _period("c.service", "c.issued_at", service_id, start, end)
            queries["issued"] = (
                "SELECT c.topic, c.indicator, c.drug, (c.issued_at AT TIME ZONE 'UTC')::date, COUNT(*), c.rule"
                f" FROM issued_cards c WHERE {where} GROUP BY 1, 2, 3, 4, 6", params)
            queries["answered"] = (
                "SELECT c.topic, c.indicator, c.drug, (c.issued_at AT TIME ZONE 'UTC')::date, COUNT(*), c.rule"
                f" FROM issued_cards c WHERE {where} AND EXISTS (SELECT 1 FROM feedback f WHERE f.service = c.service"
                " AND f.card = c.card) GROUP BY 1, 2, 3, 4, 6", params)
            queries.update(self.rule_queries(service_id, start, end))
        return queries

    def rule_queries(self, service_id: str | None, start: datetime | None,
                     end: datetime | None) -> dict[str, tuple[str, list]]:
        """The per-rule-id counts (cards issued, latest feedback per outcome, by site configuration version and UTC
        day), the judged orders' card counts, and the site configuration versions: aggregated in SQL."""
        issued, issued_params = _period("c.service", "c.issued_at", service_id, start, end)
        fed, fed_params = _period("f.service", "f.outcome_timestamp", service_id, start, end)
        judged, judged_params = _period("o.service", "o.judged_at", service_id, start, end)
        return {
            "rule_issued": ("SELECT c.rule, c.drug, c.site_config, (c.issued_at AT TIME ZONE 'UTC')::date, 'issued',"
                            f" COUNT(*) FROM issued_cards c WHERE {issued} AND c.rule IS NOT NULL GROUP BY 1, 2, 3, 4",
                            issued_params),
            "rule_feedback": (
                "SELECT rule, drug, site_config, day, outcome, COUNT(*) FROM (SELECT COALESCE(f.rule, c.rule) AS rule,"
                " COALESCE(f.drug, c.drug) AS drug,"
                " COALESCE(f.site_config, c.site_config) AS site_config,"
                " (f.outcome_timestamp AT TIME ZONE 'UTC')::date AS day, f.outcome FROM feedback f"
                f" LEFT JOIN issued_cards c ON c.service = f.service AND c.card = f.card WHERE {fed} AND {LATEST}) j"
                " WHERE rule IS NOT NULL GROUP BY 1, 2, 3, 4, 5", fed_params),
            "orders": ("SELECT o.drug, o.site_config, (o.judged_at AT TIME ZONE 'UTC')::date, o.cards, COUNT(*)"
                       f" FROM judged_orders o WHERE {judged} GROUP BY 1, 2, 3, 4", judged_params),
            "versions": ("SELECT version, digest, first_seen, settings::text FROM site_config_versions"
                         " ORDER BY first_seen, version", []),
        }

    def _db_counts(self, service_id: str | None, first: date | None, last: date | None,
                   issued: bool) -> Governance:
        queries = self.count_queries(service_id, first, last, issued)

        def counts(conn: psycopg.Connection) -> Governance:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot for all
                rows = conn.execute(*queries["feedback"]).fetchall()
                unknown = _count(conn, queries["unknown"])
                not_issued = _count(conn, queries["not_issued"])
                cards = conn.execute(*queries["issued"]).fetchall() if issued else []
                answered = conn.execute(*queries["answered"]).fetchall() if issued else []
                by_rule = [*conn.execute(*queries["rule_issued"]), *conn.execute(*queries["rule_feedback"])] \
                    if issued else []
                orders = conn.execute(*queries["orders"]).fetchall() if issued else []
                versions = conn.execute(*queries["versions"]).fetchall() if issued else []
            return Governance(merge_issued(cards, answered),
                              FeedbackCounts([FeedbackCount(*row) for row in rows], unknown, not_issued),
                              [RuleCount(*row) for row in by_rule], [OrderCount(*row) for row in orders],
                              [ConfigVersion(version, digest, seen, settings) for version, digest, seen, settings
                               in versions])

        return self._run(counts, self.timeout)

    def _db_remember_cards(self, rows: list[tuple[str, IssuedCard, datetime]], prune_before: datetime | None,
                           orders: list[tuple[str, JudgedOrder, str | None, datetime]] | None = None) -> None:
        def remember(conn: psycopg.Connection) -> None:
            with conn.transaction():
                if prune_before is not None:
                    conn.execute("DELETE FROM issued_cards WHERE issued_at < %s", (prune_before,))
                    conn.execute("DELETE FROM judged_orders WHERE judged_at < %s", (prune_before,))
                for chunk in range(0, len(rows), NOTES_PER_STATEMENT):
                    part = rows[chunk:chunk + NOTES_PER_STATEMENT]
                    conn.execute(
                        "INSERT INTO issued_cards (service, card, topic, indicator, drug, rule, site_config,"
                        " suggestions, issued_at) VALUES "
                        + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
                        + " ON CONFLICT (service, card) DO UPDATE SET topic = excluded.topic,"
                        " indicator = excluded.indicator, drug = excluded.drug, rule = excluded.rule,"
                        " site_config = excluded.site_config, suggestions = excluded.suggestions,"
                        " issued_at = excluded.issued_at",
                        [value for service_id, card, issued_at in part
                         for value in (service_id, card.card, card.topic, card.indicator, card.drug, card.rule,
                                       card.site_config, card.suggestions, issued_at)])
                judged = list(orders or ())
                for chunk in range(0, len(judged), NOTES_PER_STATEMENT):
                    orders_part = judged[chunk:chunk + NOTES_PER_STATEMENT]
                    conn.execute(
                        "INSERT INTO judged_orders (service, order_key, drug, cards, site_config, judged_at) VALUES "
                        + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(orders_part))
                        + " ON CONFLICT (service, order_key) DO UPDATE SET drug = excluded.drug,"
                        " cards = excluded.cards, site_config = excluded.site_config, judged_at = excluded.judged_at",
                        [value for service_id, order, version, judged_at in orders_part
                         for value in (service_id, order.order, order.drug, order.cards, version, judged_at)])

        self._run(remember, HOT_TIMEOUT, HOT)

    def _db_config_seen(self, version: ConfigVersion) -> ConfigVersion:
        def seen(conn: psycopg.Connection) -> ConfigVersion:
            with self.durable_transaction(conn):
                conn.execute("INSERT INTO site_config_versions (version, digest, first_seen, settings)"
                             " VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (version, digest) DO NOTHING",
                             (version.version, version.digest, version.first_seen, version.settings))
                row = conn.execute("SELECT first_seen FROM site_config_versions WHERE version = %s AND digest = %s",
                                   (version.version, version.digest)).fetchone()
            assert row is not None
            return ConfigVersion(version.version, version.digest, row[0], version.settings)

        return self._run(seen, self.timeout)

    def _db_first_use(self, pairs: list[tuple[str, str, float]], now: float, purge: bool) -> list[bool]:
        def first_use(conn: psycopg.Connection) -> list[bool]:
            if purge:
                conn.execute("DELETE FROM used_jti WHERE until <= %s", (now,))
            return [conn.execute(
                "INSERT INTO used_jti (iss, jti, until) VALUES (%s, %s, %s)"
                " ON CONFLICT (iss, jti) DO UPDATE SET until = excluded.until WHERE used_jti.until <= %s",
                (iss, jti, until, now)).rowcount == 1 for iss, jti, until in pairs]

        return self._run(first_use, HOT_TIMEOUT, HOT)

    def _db_ping(self) -> None:
        """Read the schema version with a row lock that does not block anyone: a read-only database (or a standby)
        refuses it, as it would refuse the service's writes."""
        def ping(conn: psycopg.Connection) -> None:
            with conn.transaction():
                conn.execute("SELECT version FROM fhirsvc_schema FOR KEY SHARE").fetchall()

        self._run(ping, HEALTH_TIMEOUT)


def _count(conn: psycopg.Connection, query: tuple[str, list]) -> int:
    """The value of a COUNT query: an aggregate without GROUP BY, so always one row."""
    row = conn.execute(*query).fetchone()
    assert row is not None
    return row[0]


def _period(service_column: str, time_column: str, service_id: str | None, start: datetime | None,
            end: datetime | None) -> tuple[str, list[object]]:
    """The WHERE clause (and its parameters) of one service, or all, in [start, end)."""
    clauses = ["TRUE"]
    params: list[object] = []
    if service_id is not None:
        clauses.append(f"{service_column} = %s")
        params.append(service_id)
    if start is not None:
        clauses.append(f"{time_column} >= %s")
        params.append(start)
    if end is not None:
        clauses.append(f"{time_column} < %s")
        params.append(end)
    return " AND ".join(clauses), params


# The item is its card and reporter's latest: no later one (by outcomeTimestamp; the same instant: by id).
LATEST = ("NOT EXISTS (SELECT 1 FROM feedback n WHERE n.service = f.service AND n.card = f.card"
          " AND n.reporter = f.reporter AND (n.outcome_timestamp, n.id) > (f.outcome_timestamp, f.id))")


def _not_issued(service_id: str | None, first: date | None, last: date | None) -> tuple[str, list[object]]:
    """The statement summing the not-issued items of one service, or all, received on the UTC days first to last."""
    clauses: list[str] = ["TRUE"]
    params: list[object] = []
    if service_id is not None:
        clauses.append("service = %s")
        params.append(service_id)
    for bound, op in ((first, ">="), (last, "<=")):
        if bound is not None:
            clauses.append(f"day {op} %s")
            params.append(bound)
    return (f"SELECT COALESCE(SUM(items), 0)::bigint FROM feedback_not_issued WHERE {' AND '.join(clauses)}",
            params)
