"""What both backends share: the store's behaviour around the database, and the rows it writes.

A backend (``SqliteStore``, ``PostgresStore``) implements a few ``_db_*`` methods that talk to its database and
raise its own errors (``database_errors``, told apart by ``is_unavailable``). ``Store`` turns those into the
service's behaviour, the same for both:

- ``record`` (feedback) and ``stats`` raise ``StoreUnavailable`` (a 503 with an OperationOutcome) when the database
  cannot be reached or written: nothing is acknowledged that is not committed. An error of the statement itself
  (a value the database refuses: ``is_unavailable`` tells them apart by the driver's error class) is not an
  outage: ``record`` answers it ``StoreRefused`` (400), and the hot path never falls back to memory for it.
- ``record`` counts only feedback on cards this store noted as issued (``issued_cards``); items on other cards
  (never issued here, or issued longer ago than the cards are kept) are not stored, only counted per service and
  UTC day of receipt (``notIssued`` in the statistics and the governance report). Of the items of one card from
  one reporter (the authenticated client: ``reporter``), only the latest (by outcomeTimestamp) is counted; the
  earlier ones stay stored.
- ``remember_cards`` (the issued-cards note, on every CDS call) is best-effort: it queues the note, which a
  thread of each process writes within ``NOTE_BATCH_DELAY`` with the other calls' notes in one statement, waiting
  at most ``HOT_TIMEOUT``; a failure is logged and counted (``card_notes_failed``). It never raises, and a CDS
  call never waits for the database: the cards always go out. Card
  uuids are name-based, so order-select on every keystroke gives the same cards again: a card this process noted
  unchanged within ``NOTE_AGAIN_AFTER`` is not written again (its ``issued_at`` is that much older at most, against
  30 days of keeping).
- ``first_use`` (JWT ``jti`` replay protection, on every authenticated call) falls back to this process's memory
  while the database is unavailable, and writes what it accepted meanwhile to the database when it returns.
- After a failure on the hot path the database is left alone for ``RETRY_AFTER`` seconds, so an outage costs the
  CDS calls no waiting; ``health()`` always asks the database, so ``/healthz`` sees it return at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

from fhirsvc.errors import ApiError, FhirsvcError
from fhirsvc.storage.replay import PURGE_EVERY, MemoryReplayCache, ReplayUnrecordable

log = logging.getLogger("fhirsvc.storage")


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


SCHEMA_VERSION = 5  # the version this code writes; a database at a higher version is refused at start-up
HOT_TIMEOUT = 0.25  # seconds a CDS call's bookkeeping (issued-cards note, jti) may wait for the database
RETRY_AFTER = 1.0  # seconds the hot path leaves the database alone after a failure
HEALTH_TIMEOUT = 1.0  # seconds /healthz waits for the database
CARD_MAX_AGE = timedelta(days=30)
PRUNE_EVERY = timedelta(minutes=1)
NOTE_AGAIN_AFTER = 3600.0  # seconds: an unchanged card noted by this process is not written again before then
NOTED_MAX = 10_000  # cards remembered as noted, per process
NOTE_BATCH_DELAY = 0.05  # seconds the note writer gathers the calls' notes before writing them together
NOTES_QUEUED_MAX = 10_000  # calls' notes waiting to be written, per process; beyond, a note is counted as failed
PENDING_JTI_MAX = 100_000  # jti values accepted during an outage, kept to be written when the database returns

T = TypeVar("T")


class StorageError(FhirsvcError):
    """The configured database cannot be used (bad URL, unreachable at start-up, schema of a newer version): the
    service does not start."""


def migrate(execute: Callable[..., Any], migrations: Mapping[int, Iterable[str]], where: str, param: str) -> None:
    """Bring a database to SCHEMA_VERSION, inside the caller's transaction: the statements of each version above
    the recorded one, in order. A database of a newer version is refused (StorageError). ``execute`` runs one
    statement (a connection's ``execute``); ``param`` is the driver's placeholder (``?`` or ``%s``)."""
    execute("CREATE TABLE IF NOT EXISTS fhirsvc_schema (version integer NOT NULL)")
    version = execute("SELECT MAX(version) FROM fhirsvc_schema").fetchone()[0] or 0
    if version > SCHEMA_VERSION:
        raise StorageError(f"the database {where} has schema version {version}; this fhirsvc knows "
                           f"versions up to {SCHEMA_VERSION}: upgrade fhirsvc")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in migrations[step]:
            execute(statement)
    if version < SCHEMA_VERSION:
        execute("DELETE FROM fhirsvc_schema")
        execute(f"INSERT INTO fhirsvc_schema (version) VALUES ({param})", (SCHEMA_VERSION,))


class StoreUnavailable(ApiError):
    """The database cannot be reached or written right now: answered 503, never a 500."""

    def __init__(self, what: str):
        super().__init__(HTTPStatus.SERVICE_UNAVAILABLE,
                         f"the service's database is unavailable: the {what} could not be completed; try again later")


class StoreRefused(ApiError):
    """The database refused a value of the request (the database itself is fine): answered 400."""

    def __init__(self, what: str):
        super().__init__(HTTPStatus.BAD_REQUEST, f"a value of this request cannot be stored: the {what} was refused")


@dataclass(frozen=True)
class IssuedCard:
    """What the statistics need of one issued card."""

    card: str
    topic: str | None
    indicator: str | None
    suggestions: str  # JSON array of suggestion uuids
    drug: str | None = None  # the MedicationKnowledge id the card is about
    rule: str | None = None  # the card's rule id (its extension["fhirsvc.rule"]); None on cards noted before it
    site_config: str | None = None  # the version of the site configuration in force when it was issued


@dataclass(frozen=True)
class JudgedOrder:
    """One judged order of a drug of the knowledge and how many cards this call gave about it. ``order`` is a
    name-based key (uuid5 of patient, order and drug, as the card uuids), so the same order judged again (order-select
    at every keystroke, then order-sign) is one row: its latest judgement."""

    order: str
    drug: str
    cards: int


@dataclass(frozen=True)
class FeedbackRow:
    """One feedback item as stored."""

    card: str
    outcome: str
    outcome_timestamp: datetime  # aware, UTC
    accepted_suggestions: str  # JSON array of suggestion uuids
    override_system: str | None
    override_code: str | None
    override_display: str | None
    user_comment: str | None


def utc_text(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so text order is time order and equal instants are equal strings (SQLite)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def issued_cards(cards: Iterable[Mapping[str, Any]], drugs: Iterable[str | None] | None = None,
                 site_config: str | None = None) -> list[IssuedCard]:
    """The cards with a uuid (clients send feedback only on those), the last of a uuid winning; ``drugs`` gives
    each card's drug, in the order of the cards (the rule is the card's ``extension["fhirsvc.rule"]``);
    ``site_config`` the site configuration's version."""
    found: dict[str, IssuedCard] = {}
    cards = list(cards)
    drug_of = list(drugs) if drugs is not None else [None] * len(cards)
    for card, drug in zip(cards, drug_of, strict=True):
        uuid = card.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            continue
        source = card.get("source")
        topic = source.get("topic") if isinstance(source, Mapping) else None
        code = topic.get("code") if isinstance(topic, Mapping) else None
        indicator = card.get("indicator")
        extension = card.get("extension")
        rule = extension.get("fhirsvc.rule") if isinstance(extension, Mapping) else None
        suggestions = [s["uuid"] for s in card.get("suggestions") or ()
                       if isinstance(s, Mapping) and isinstance(s.get("uuid"), str)]
        found.pop(uuid, None)
        found[uuid] = IssuedCard(uuid, code if isinstance(code, str) else None,
                                 indicator if isinstance(indicator, str) else None, json.dumps(suggestions),
                                 drug if isinstance(drug, str) and drug else None,
                                 rule if isinstance(rule, str) and rule else None, site_config or None)
    return list(found.values())


def feedback_rows(items: Iterable[FeedbackItem]) -> list[FeedbackRow]:
    return [FeedbackRow(item.card, item.outcome, item.outcome_timestamp.astimezone(UTC),
                        json.dumps(list(item.accepted_suggestions)), item.override_system, item.override_code,
                        item.override_display, item.user_comment) for item in items]


@dataclass(frozen=True)
class IssuedCount:
    """Cards of one rule (topic + indicator + drug) last issued on one UTC day, and how many of them had feedback
    (whenever it came)."""

    topic: str | None
    indicator: str | None
    drug: str | None
    day: date
    cards: int
    with_feedback: int
    rule: str | None = None  # the rule id; None for cards noted before rule ids (schema version 4)


@dataclass(frozen=True)
class FeedbackCount:
    """Feedback items of one rule on one UTC day (by their outcomeTimestamp), of one outcome and override reason.
    The rule is the one noted when the item was recorded, else that of the card as issued; all None: unknown."""

    topic: str | None
    indicator: str | None
    drug: str | None
    day: date
    outcome: str
    override_system: str | None
    override_code: str | None
    override_display: str | None
    items: int
    rule: str | None = None  # the rule id recorded with the item, else its card's; None before rule ids


@dataclass(frozen=True)
class FeedbackCounts:
    rows: list[FeedbackCount]
    unknown_cards: int  # distinct cards with feedback whose topic and indicator are unknown (stored before version 3)
    not_issued: int = 0  # items on cards not issued by this store (or no longer kept): not stored, not in ``rows``


@dataclass(frozen=True)
class RuleCount:
    """Cards of one rule id, issued under one site configuration version, on one UTC day; and of those cards' latest
    feedback items dated that day, how many were accepted and overridden (``kind``: "issued" or the outcome)."""

    rule: str
    drug: str | None
    site_config: str | None
    day: date
    kind: str  # issued | accepted | overridden
    count: int


@dataclass(frozen=True)
class OrderCount:
    """Judged orders of one drug, under one site configuration version, on one UTC day, that got ``cards`` cards."""

    drug: str
    site_config: str | None
    day: date
    cards: int
    orders: int


@dataclass(frozen=True)
class ConfigVersion:
    """A site configuration version the service ran with, and when a process first started with it."""

    version: str
    digest: str  # SHA-256 of its canonical JSON: the same version name with other settings is told apart
    first_seen: datetime
    settings: str  # the configuration as canonical JSON


@dataclass(frozen=True)
class Governance:
    """What the governance view reads for one period, in one snapshot of the database."""

    issued: list[IssuedCount]
    feedback: FeedbackCounts
    rules: list[RuleCount] = field(default_factory=list)
    orders: list[OrderCount] = field(default_factory=list)
    versions: list[ConfigVersion] = field(default_factory=list)


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """The instants [start, end) of the UTC days ``first`` to ``last``."""
    start = datetime.combine(first, datetime.min.time(), UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC) if last else None
    return start, end


def merge_issued(issued: Iterable[tuple], answered: Iterable[tuple]) -> list[IssuedCount]:
    """Issued-card counts from (topic, indicator, drug, day, cards, rule) rows and the (topic, indicator, drug, day,
    cards with feedback, rule) rows."""
    with_feedback = {(*row[:4], row[5]): row[4] for row in answered}
    return [IssuedCount(topic, indicator, drug, as_day(day), cards,
                        int(with_feedback.get((topic, indicator, drug, day, rule), 0)), rule)
            for topic, indicator, drug, day, cards, rule in issued]


def as_day(value: Any) -> date:
    """A day column: ``YYYY-MM-DD`` text in SQLite, a date in PostgreSQL."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def stats_document(service_id: str, counts: FeedbackCounts) -> dict:
    """The statistics answer: the feedback counts summed per topic and indicator (over drugs and days)."""
    groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    total = 0
    for row in counts.rows:
        total += row.items
        if row.topic is None and row.indicator is None:
            continue
        group = groups.setdefault(
            (row.topic, row.indicator),
            {"topic": row.topic, "indicator": row.indicator, "accepted": 0, "overridden": 0, "overrideReasons": {}},
        )
        group[row.outcome] += row.items
        if row.override_code is not None:
            reasons = group["overrideReasons"]
            reasons[row.override_code] = reasons.get(row.override_code, 0) + row.items
    by_topic = [groups[key] for key in sorted(groups, key=lambda k: (k[0] is None, k[0] or "", k[1] or ""))]
    for group in by_topic:  # reasons in a stable order, whatever order the database grouped them in
        group["overrideReasons"] = dict(sorted(group["overrideReasons"].items()))
    return {"service": service_id, "total": total, "byRule": _by_rule(counts), "byTopic": by_topic,
            "unknownCards": counts.unknown_cards, "notIssued": counts.not_issued}


def _by_rule(counts: FeedbackCounts) -> list[dict[str, Any]]:
    """The feedback counts summed per rule id (items on cards noted before rule ids are in ``byTopic`` only)."""
    groups: dict[str, dict[str, Any]] = {}
    for row in counts.rows:
        if row.rule is None:
            continue
        group = groups.setdefault(row.rule, {"rule": row.rule, "topic": row.topic, "indicator": row.indicator,
                                             "accepted": 0, "overridden": 0, "overrideReasons": {}})
        group[row.outcome] += row.items
        if row.override_code is not None:
            group["overrideReasons"][row.override_code] = group["overrideReasons"].get(row.override_code, 0) + row.items
    return [{**groups[rule], "overrideReasons": dict(sorted(groups[rule]["overrideReasons"].items()))}
            for rule in sorted(groups)]


class Store:
    """The service's state in one database; see the module docstring for the behaviour around failures."""

    backend = ""
    database_errors: tuple[type[BaseException], ...] = ()  # every error of the driver

    def __init__(self, where: str, timeout: float, card_max_age: timedelta = CARD_MAX_AGE,
                 prune_every: timedelta = PRUNE_EVERY):
        self.where = where  # the database, without credentials: said in logs, errors and /healthz
        self.timeout = timeout  # seconds feedback and statistics may wait for the database
        self.card_max_age = card_max_age
        self.prune_every = prune_every  # old cards are deleted at most this often (per process)
        self.card_notes_failed = 0  # issued-cards notes not written, in this process
        self._pruned_at: float | None = None
        self._jti_purge_at = -math.inf
        self._lock = threading.Lock()
        self._down_until = -math.inf  # monotonic time until which the hot path skips the database
        self._fallback = MemoryReplayCache()
        self._pending_jti: dict[tuple[str, str], float] = {}
        self._noted: dict[tuple[str, Any], float] = {}  # (service, card or order) -> monotonic time noted
        # notes waiting for the note writer: service, cards, judged orders, site configuration version, time
        self._queue: list[tuple[str, list[IssuedCard], list[JudgedOrder], str | None, datetime]] = []
        self._notes_queued = threading.Event()
        self._write_lock = threading.Lock()
        self._writer_pid: int | None = None

    # --- what a backend implements -----------------------------------------------------------------------------

    def is_unavailable(self, exc: BaseException) -> bool:
        """Whether a database error means the database cannot be used now (unreachable, stopped, locked, out of
        space, read-only, timed out), rather than that the statement or one of its values was refused."""
        raise NotImplementedError

    def _db_record(self, service_id: str, rows: list[FeedbackRow], topics: dict[str, tuple[str | None, ...]],
                   received_at: datetime, reporter: str) -> int:
        """In one transaction: store the rows of issued cards (those in ``topics``, card -> (topic, indicator,
        drug) known to the caller, or in the issued cards), ignoring ones already stored; count the others in the
        not-issued items of ``received_at``'s UTC day. The number of rows stored."""
        raise NotImplementedError

    def _db_counts(self, service_id: str | None, first: date | None, last: date | None,
                   issued: bool) -> Governance:
        """In one read-only snapshot: the feedback counts of ``service_id`` (None: every service) with an
        outcomeTimestamp on the UTC days ``first`` to ``last`` (both included; None: unbounded), the latest item of
        each card and reporter only, the not-issued items received on those days, and, if ``issued``,
        the issued-card counts of those days (by issued_at). The one query behind both the feedback statistics and
        the governance view."""
        raise NotImplementedError

    def _db_remember_cards(self, rows: list[tuple[str, IssuedCard, datetime]], prune_before: datetime | None,
                           orders: list[tuple[str, JudgedOrder, str | None, datetime]] | None = None) -> None:
        """Insert or update each (service, card, issued_at), at most once per (service, card), and each (service,
        judged order, site configuration version, judged_at), at most once per (service, order); first delete the
        cards and orders noted before ``prune_before``, if given."""
        raise NotImplementedError

    def _db_config_seen(self, version: ConfigVersion) -> ConfigVersion:
        """Record a site configuration version unless recorded (same version and digest); the stored record."""
        raise NotImplementedError

    def _db_first_use(self, pairs: list[tuple[str, str, float]], now: float, purge: bool) -> list[bool]:
        """Record each (iss, jti, until) unless an unexpired record of it exists; True for each recorded."""
        raise NotImplementedError

    def _db_ping(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Write the queued notes, close this process's connections (they are opened again on next use)."""
        self.write_notes()
        self._close()

    def _close(self) -> None:
        pass

    # --- feedback and statistics: committed or refused ---------------------------------------------------------

    def record(self, service_id: str, items: list[FeedbackItem],
               topics: Mapping[str, tuple[str | None, ...]] | None = None, reporter: str = "") -> int:
        """Store the items on issued cards durably (committed before this returns), ignoring ones already stored,
        and count the others as not issued; return how many were stored. StoreUnavailable if they could not be
        committed, StoreRefused if the database refused a value. ``topics``: card -> (topic, indicator[, drug[, rule]])
        of cards known to be issued; ``reporter``: who sent them (one counted outcome per card and reporter)."""
        rows = feedback_rows(items)
        if not rows:
            return 0
        self.write_notes()  # so the rules of this process's cards are known
        known = {card: (*rule, None, None, None, None, None)[:5] for card, rule in (topics or {}).items()}
        new = self._durable("feedback", lambda: self._db_record(service_id, rows, known, datetime.now(UTC),
                                                                reporter), refusable=True)
        log.info("feedback for %s: %d item(s), %d stored", service_id, len(items), new)
        return new

    def stats(self, service_id: str) -> dict:
        """Outcome counts per card topic and indicator, plus how many distinct cards had no known topic."""
        self.write_notes()
        counts = self._durable("feedback statistics", lambda: self._db_counts(service_id, None, None, False))
        return stats_document(service_id, counts.feedback)

    def governance(self, service_id: str | None, first: date, last: date) -> Governance:
        """The issued-card and feedback counts per rule and UTC day from ``first`` to ``last`` (both included), of
        one service or (None) all, read in one snapshot: the same feedback query as ``stats``."""
        self.write_notes()
        return self._durable("governance report", lambda: self._db_counts(service_id, first, last, True))

    def config_seen(self, version: str, settings: Mapping[str, Any]) -> ConfigVersion:
        """Record that the service runs with this site configuration version (first-seen time kept; the same
        version name with other settings is a version of its own, told apart by its digest). StoreUnavailable if
        the database cannot be written (start-up stops)."""
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        record = ConfigVersion(version, hashlib.sha256(text.encode()).hexdigest(), datetime.now(UTC), text)
        return self._durable("site configuration record", lambda: self._db_config_seen(record))

    def _durable(self, what: str, operation: Callable[[], T], refusable: bool = False) -> T:
        """``operation``, its outage answered StoreUnavailable (503); if ``refusable`` (it writes values of the
        request), a refused statement StoreRefused (400). Any other error is a fault of the service (500)."""
        try:
            return operation()
        except self.database_errors as exc:
            if self.is_unavailable(exc):
                log.warning("database %s unavailable for the %s: %s", self.where, what, reason(exc))
                raise StoreUnavailable(what) from None
            if not refusable:
                raise
            log.warning("database %s refused a value of the %s: %s", self.where, what, reason(exc))
            raise StoreRefused(what) from None

    # --- the hot path: never fails a CDS call ------------------------------------------------------------------

    def remember_cards(self, service_id: str, cards: list[dict], drugs: Iterable[str | None] | None = None,
                       orders: Iterable[JudgedOrder] = (), site_config: str | None = None) -> None:
        """Note the rule (topic, indicator, drug: ``drugs`` in the order of the cards, rule id) of each card with a
        uuid, so later feedback can be counted per rule; and each judged ``orders`` with its number of
        cards (cards per order); both with the ``site_config`` version in force. The note is queued and this
        process's note writer writes it within NOTE_BATCH_DELAY, with the other calls' notes, in one statement: a
        CDS call never waits for the database. Best-effort: never raises; a note that cannot be written is logged
        and counted."""
        try:
            moment = time.monotonic()
            issued = [card for card in issued_cards(cards, drugs, site_config)
                      if moment - self._noted.get((service_id, card), -math.inf) >= NOTE_AGAIN_AFTER]
            judged = [order for order in orders
                      if moment - self._noted.get((service_id, (order, site_config)), -math.inf) >= NOTE_AGAIN_AFTER]
            if not issued and not judged:
                return
            with self._lock:
                if len(self._noted) + len(issued) + len(judged) > NOTED_MAX:
                    self._noted.clear()
                self._noted.update(((service_id, card), moment) for card in issued)
                self._noted.update(((service_id, (order, site_config)), moment) for order in judged)
                if len(self._queue) >= NOTES_QUEUED_MAX:
                    self.card_notes_failed += 1
                    return
                self._queue.append((service_id, issued, judged, site_config, datetime.now(UTC)))
                if self._writer_pid != os.getpid():  # one writer thread per process, started after fork
                    self._writer_pid = os.getpid()
                    threading.Thread(target=self._write_notes_forever, name="fhirsvc-card-notes", daemon=True).start()
            self._notes_queued.set()
        except Exception:  # the cards go out whatever happens to the note
            self._count_failed_note()
            log.exception("issued-cards note failed")

    def _write_notes_forever(self) -> None:
        while True:
            self._notes_queued.wait()
            time.sleep(NOTE_BATCH_DELAY)  # gather the notes of the calls meanwhile
            self.write_notes()

    def write_notes(self) -> None:
        """Write the queued notes now (the note writer calls this; so do record, stats, health and close, so that
        they see every note of this process)."""
        with self._write_lock:
            with self._lock:
                batch, self._queue = self._queue, []
                self._notes_queued.clear()
            if not batch:
                return
            if not self._hot_path_open():
                self._count_failed_note(len(batch))
                return
            rows = {(service_id, card.card): (service_id, card, issued_at)
                    for service_id, cards, _, _, issued_at in batch for card in cards}  # the last of a uuid wins
            judged = {(service_id, order.order): (service_id, order, version, judged_at)
                      for service_id, _, orders, version, judged_at in batch for order in orders}
            moment = time.monotonic()
            prune = self._pruned_at is None or moment - self._pruned_at >= self.prune_every.total_seconds()
            try:
                self._db_remember_cards(list(rows.values()),
                                        datetime.now(UTC) - self.card_max_age if prune else None,
                                        list(judged.values()))
            except Exception as exc:
                self._noted.clear()  # write them again next time
                self._count_failed_note(len(batch))
                if isinstance(exc, self.database_errors) and self.is_unavailable(exc):
                    self._hot_path_failed("issued-cards note", exc)
                else:
                    log.exception("issued-cards note failed")
            else:
                if prune:
                    self._pruned_at = moment

    def _count_failed_note(self, calls: int = 1) -> None:
        with self._lock:
            self.card_notes_failed += calls

    def first_use(self, iss: str, jti: str, until: float, now: float) -> bool:
        """Record (iss, jti) as used until ``until``; False if it was already used and has not expired at ``now``
        (the JWT verifier's replay cache). While the database is unavailable, this process's memory decides. A
        value the database refuses is no outage: ReplayUnrecordable, and the token is refused."""
        if self._hot_path_open():
            with self._lock:
                pending = [(i, j, u) for (i, j), u in self._pending_jti.items() if u > now]
            purge = now >= self._jti_purge_at
            try:
                first, *_ = self._db_first_use([(iss, jti, until), *pending], now, purge)
            except self.database_errors as exc:
                if not self.is_unavailable(exc):
                    log.warning("database %s refused a jti of %s: %s", self.where, iss[:100], reason(exc))
                    raise ReplayUnrecordable(reason(exc)) from None
                self._hot_path_failed("jti check", exc)
            else:
                if purge:
                    self._jti_purge_at = now + PURGE_EVERY
                if pending:
                    log.info("database %s available: %d jti value(s) accepted meanwhile written", self.where,
                             len(pending))
                    with self._lock:
                        for i, j, _ in pending:
                            self._pending_jti.pop((i, j), None)
                return first
        accepted = self._fallback.first_use(iss, jti, until, now)
        if accepted:
            with self._lock:
                if len(self._pending_jti) < PENDING_JTI_MAX:
                    self._pending_jti[(iss, jti)] = until
        return accepted

    def _hot_path_open(self) -> bool:
        return time.monotonic() >= self._down_until

    def _hot_path_failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_AFTER
        log.warning("database %s unavailable for the %s (left alone for %g s): %s", self.where, what, RETRY_AFTER,
                    reason(exc))

    # --- health ------------------------------------------------------------------------------------------------

    def health(self) -> dict:
        """For /healthz: whether the database answers now, which one, the notes lost in this process, and the
        ``jti`` values this process accepted in its memory alone (the database unavailable) not yet written."""
        status: dict[str, Any] = {"backend": self.backend, "database": self.where}
        self.write_notes()  # so the count of failed notes is current
        try:
            self._db_ping()
        except self.database_errors as exc:
            status.update(status="unavailable", error=reason(exc))
        else:
            status["status"] = "ok"
            with self._lock:
                self._down_until = -math.inf
        status["cardNotesFailed"] = self.card_notes_failed
        with self._lock:
            status["jtiInMemory"] = len(self._pending_jti)
        return status


def reason(exc: BaseException) -> str:
    """The first line of a database error, without the noise of multi-line server messages."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
