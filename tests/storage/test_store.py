"""The store, the same suite on both backends (a SQLite file; a database of a real PostgreSQL server): feedback
idempotent and durable, statistics per topic, issued cards pruned, used ``jti`` values refused until they expire
(across stores, as across instances), the schema and its version, concurrency of threads and processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from fhirsvc.storage import SCHEMA_VERSION, StorageError, open_store
from fhirsvc.storage.base import HOT_TIMEOUT, NOTE_AGAIN_AFTER, FeedbackItem, JudgedOrder
from tests.storage.conftest import run_sql

SERVICE = "anakinra-order-select"
T0 = datetime(2021, 12, 11, 10, 5, 31, tzinfo=UTC)
NOW = 1_800_000_000.0


def item(card: str = "card-1", outcome: str = "overridden", at: datetime = T0, **kwargs) -> FeedbackItem:
    return FeedbackItem(card=card, outcome=outcome, outcome_timestamp=at, **kwargs)


def card(uuid: str, topic: str | None, indicator: str = "warning", suggestions: tuple[str, ...] = (),
         rule: str | None = None) -> dict:
    source = {"label": "Anakinra monograph"}
    if topic:
        source["topic"] = {"system": "http://example.org/topics", "code": topic, "display": topic.title()}
    return {"uuid": uuid, "summary": "s", "indicator": indicator, "source": source,
            "suggestions": [{"label": "l", "uuid": s} for s in suggestions],
            **({"extension": {"fhirsvc.rule": rule}} if rule else {})}


def as_json(value) -> object:
    """A JSON column: text in SQLite, already decoded from PostgreSQL's jsonb."""
    return json.loads(value) if isinstance(value, str) else value


def as_instant(value) -> datetime:
    """A timestamp column: fixed-width UTC text in SQLite, timestamptz in PostgreSQL."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))


def note(store, service_id: str, cards: list[dict]) -> None:
    """One call's issued-cards note, written now rather than by the note writer a moment later."""
    store.remember_cards(service_id, cards)
    store.write_notes()


def issue(store, *uuids: str, service_id: str = SERVICE, topic: str = "TOPIC") -> None:
    """The store notes these cards as issued (feedback is counted only on issued cards)."""
    note(store, service_id, [card(uuid, topic) for uuid in uuids])


def count_rows(sql) -> int:
    return sql("SELECT COUNT(*) FROM feedback")[0][0]


# --- connection settings --------------------------------------------------------------------------------------


def test_feedback_waits_for_the_disk_and_the_hot_path_does_not(store):
    """Feedback commits are synced before the 200; the issued-cards note and the jti are not (a crash of the
    server may lose the last few), and wait for a lock at most HOT_TIMEOUT."""
    if store.backend == "sqlite":
        durable, hot = store._conn("durable"), store._conn("hot")
        assert durable.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert durable.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert hot.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert durable.execute("PRAGMA busy_timeout").fetchone() == (int(store.timeout * 1000),)
        assert hot.execute("PRAGMA busy_timeout").fetchone() == (int(HOT_TIMEOUT * 1000),)
    else:
        with store.pool().connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
            assert conn.execute("SHOW statement_timeout").fetchone() == (f"{int(store.timeout)}s",)
            with store.durable_transaction(conn):
                assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)


# --- feedback ---------------------------------------------------------------------------------------------------


def test_record_is_idempotent(store, sql):
    issue(store, "card-1")
    assert store.record(SERVICE, [item()]) == 1
    assert store.record(SERVICE, [item()]) == 0
    assert count_rows(sql) == 1
    assert store.record(SERVICE, [item(at=T0 + timedelta(seconds=1))]) == 1
    assert count_rows(sql) == 2


def test_idempotency_key_is_service_card_reporter_outcome_instant(store, sql):
    issue(store, "card-1", "card-2")
    issue(store, "card-1", service_id="other-service")
    same_instant = T0.astimezone(datetime.fromisoformat("2000-01-01T00:00:00+05:30").tzinfo)
    assert store.record(SERVICE, [item(at=same_instant), item(), item()]) == 1
    assert store.record(SERVICE, [item(outcome="accepted", accepted_suggestions=("s1",))]) == 1
    assert store.record("other-service", [item()]) == 1
    assert store.record(SERVICE, [item(card="card-2")]) == 1
    assert store.record(SERVICE, [item(at=T0 + timedelta(microseconds=1))]) == 1  # to the microsecond
    assert store.record(SERVICE, [item()], reporter="another") == 1  # another user's, at the same instant
    assert count_rows(sql) == 6


def test_stored_columns(store, sql):
    issue(store, "card-1", "c2")
    store.record(SERVICE, [item(override_code="d7ecf885", override_system="https://x", user_comment="patient declined"),
                           item(card="c2", outcome="accepted", accepted_suggestions=("s1", "s2"))])
    rows = {r[0]: r[1:] for r in sql("SELECT card, outcome_timestamp, override_code, user_comment,"
                                     " accepted_suggestions, received_at FROM feedback")}
    assert as_instant(rows["card-1"][0]) == T0
    assert rows["card-1"][1:3] == ("d7ecf885", "patient declined")
    assert as_json(rows["c2"][3]) == ["s1", "s2"]
    assert abs(as_instant(rows["c2"][4]) - datetime.now(UTC)) < timedelta(minutes=5)


def test_user_comment_is_never_logged(store, caplog):
    issue(store, "card-1")
    caplog.set_level(logging.DEBUG)
    store.record(SERVICE, [item(user_comment="SECRET-FREE-TEXT")])
    assert caplog.records and "SECRET-FREE-TEXT" not in caplog.text


def test_stats_per_topic_and_outcome(store, sql):
    store.remember_cards(SERVICE, [
        card("a1", "DOSECOND", suggestions=("s-a1",)),
        card("a2", "DOSECOND"),
        card("b1", "INFECTION", indicator="critical"),
        card("n1", None, indicator="info"),
        {"summary": "no uuid, never fed back", "indicator": "info", "source": {"label": "x"}},
    ])
    reason = {"override_code": "pt-declined", "override_system": "https://x"}
    store.record(SERVICE, [
        item("a1", "accepted", accepted_suggestions=("s-a1",)),
        item("a2", "overridden", **reason),
        item("a2", "overridden", at=T0 + timedelta(minutes=1), user_comment="only a comment"),  # replaces the above
        item("b1", "overridden", override_code="other", override_system="https://x"),
        item("n1", "accepted", accepted_suggestions=("s",)),
        item("zz-unknown", "overridden"),
        item("zz-unknown", "accepted", accepted_suggestions=("s",)),
    ], reporter="user-1")
    store.record(SERVICE, [item("a1", "overridden", **reason)], reporter="user-2")
    store.record("other-service", [item("a1", "accepted", accepted_suggestions=("s-a1",))])
    assert store.stats(SERVICE) == {
        "service": SERVICE,
        "total": 5,
        "byRule": [],  # cards without a rule id (as noted before rule ids)
        "byTopic": [
            {"topic": "DOSECOND", "indicator": "warning", "accepted": 1, "overridden": 2,
             "overrideReasons": {"pt-declined": 1}},
            {"topic": "INFECTION", "indicator": "critical", "accepted": 0, "overridden": 1,
             "overrideReasons": {"other": 1}},
            {"topic": None, "indicator": "info", "accepted": 1, "overridden": 0, "overrideReasons": {}},
        ],
        "unknownCards": 0,
        "notIssued": 2,
    }
    assert count_rows(sql) == 6  # the replaced item is kept, not counted; the not-issued ones are not stored
    assert store.stats("other-service")["byTopic"] == []  # cards are remembered per service
    assert store.stats("other-service")["notIssued"] == 1
    assert store.stats("nobody") == {"service": "nobody", "total": 0, "byRule": [], "byTopic": [],
                                     "unknownCards": 0, "notIssued": 0}


def test_feedback_on_a_card_never_issued_is_counted_apart_not_stored(store, sql):
    """Forged feedback (a card uuid this store never noted) neither lands in the rules' counts nor is kept."""
    assert store.record(SERVICE, [item(f"forged-{n}", at=T0 + timedelta(seconds=n)) for n in range(30)]) == 0
    stats = store.stats(SERVICE)
    assert (stats["total"], stats["byTopic"], stats["notIssued"]) == (0, [], 30)
    assert count_rows(sql) == 0
    today = datetime.now(UTC).date()
    counts = store.governance(None, today, today)  # counted on the day they were received
    assert (counts.feedback.rows, counts.feedback.not_issued) == ([], 30)
    assert store.governance(None, today - timedelta(days=2), today - timedelta(days=1)).feedback.not_issued == 0
    issue(store, "forged-0", topic="LATE")  # issued later: the same item is stored and counted now
    assert store.record(SERVICE, [item("forged-0", at=T0)]) == 1
    assert [(t["topic"], t["overridden"]) for t in store.stats(SERVICE)["byTopic"]] == [("LATE", 1)]


def test_feedback_on_a_card_no_longer_kept_is_counted_apart(database_url, sql):
    """A card older than the retention is pruned: later feedback on it cannot be told from forged feedback, and
    is counted as not issued; feedback stored while the card was kept keeps its rule."""
    store = open_store(database_url, card_max_age=timedelta(0), prune_every=timedelta(0))
    try:
        issue(store, "kept")
        assert store.record(SERVICE, [item("kept")]) == 1
        issue(store, "other")  # prunes "kept" (older than 0 s)
        assert store.record(SERVICE, [item("kept", at=T0 + timedelta(minutes=1))]) == 0
        stats = store.stats(SERVICE)
        assert (stats["total"], stats["notIssued"]) == (1, 1)
        assert stats["byTopic"][0]["topic"] == "TOPIC"
    finally:
        store.close()


def test_one_outcome_per_card_and_reporter_counts(store, sql):
    """25 "overridden" items on one card told apart only by time count once; the latest outcome replaces the
    earlier ones whatever order they arrive in; another reporter's outcome counts beside it."""
    issue(store, "card-1")
    burst = [item(at=T0 + timedelta(seconds=n), override_code="pt-declined", override_system="https://x")
             for n in range(25)]
    assert store.record(SERVICE, burst, reporter="client-a") == 25
    assert store.record(SERVICE, [item(outcome="accepted", at=T0 + timedelta(minutes=1),
                                       accepted_suggestions=("s",))], reporter="client-a") == 1
    assert store.record(SERVICE, [item(at=T0 + timedelta(seconds=30))], reporter="client-a") == 1  # late, older
    assert store.record(SERVICE, [item(at=T0)], reporter="client-b") == 1
    [topic] = store.stats(SERVICE)["byTopic"]
    assert (topic["accepted"], topic["overridden"], topic["overrideReasons"]) == (1, 1, {})
    assert count_rows(sql) == 28  # every item kept; one per card and reporter counted
    counts = store.governance(SERVICE, T0.date(), T0.date())
    assert sorted((r.outcome, r.items) for r in counts.feedback.rows) == [("accepted", 1), ("overridden", 1)]


# --- issued cards -----------------------------------------------------------------------------------------------


def test_remember_cards_is_idempotent_and_prunes_old_cards(database_url, sql):
    store = open_store(database_url, prune_every=timedelta(0))
    note(store, SERVICE, [card("old", "OLD", suggestions=("s1",))])
    note(store, SERVICE, [card("old", "OLD", suggestions=("s1",))])
    store.record(SERVICE, [item("old")])  # the topic is kept with the feedback, beyond the card's pruning
    [(count, suggestions)] = sql("SELECT COUNT(*), MIN(suggestions::text) FROM issued_cards"
                                 if database_url.startswith("postgresql") else
                                 "SELECT COUNT(*), MIN(suggestions) FROM issued_cards")
    assert (count, json.loads(suggestions)) == (1, ["s1"])
    moment = datetime.now(UTC) - timedelta(days=31)
    sql("UPDATE issued_cards SET issued_at = ?",
        moment if database_url.startswith("postgresql") else moment.replace(tzinfo=None).isoformat() + "Z")
    note(store, SERVICE, [card("new", "NEW")])
    assert sql("SELECT card FROM issued_cards") == [("new",)]
    assert [t["topic"] for t in store.stats(SERVICE)["byTopic"]] == ["OLD"]
    store.close()


def test_the_cards_of_one_call_are_stored_together_the_last_of_a_uuid_winning(store, sql):
    note(store, SERVICE, [card("a", "A", suggestions=("s1", "s2")), card("b", "B"), card("a", "A2")])
    rows = sql("SELECT card, topic, suggestions FROM issued_cards ORDER BY card")
    assert [(c, t, as_json(s)) for c, t, s in rows] == [("a", "A2", []), ("b", "B", [])]


def test_an_unchanged_card_is_not_written_again_for_a_while(store, sql):
    """order-select on every keystroke gives the same cards: this process writes an unchanged card once per
    NOTE_AGAIN_AFTER; a changed card (or another service's) at once."""
    note(store, SERVICE, [card("a", "A")])
    sql("UPDATE issued_cards SET topic = 'MARK'")  # tells a write from none
    note(store, SERVICE, [card("a", "A")])
    assert sql("SELECT topic FROM issued_cards") == [("MARK",)]
    note(store, SERVICE, [card("a", "A", indicator="critical")])  # changed: written
    assert sql("SELECT topic, indicator FROM issued_cards") == [("A", "critical")]
    note(store, "other-service", [card("a", "A", indicator="critical")])
    assert len(sql("SELECT card FROM issued_cards")) == 2
    sql("UPDATE issued_cards SET topic = 'MARK'")
    store._noted = {key: moment - NOTE_AGAIN_AFTER for key, moment in store._noted.items()}  # an hour later
    note(store, SERVICE, [card("a", "A", indicator="critical")])
    assert sorted(sql("SELECT topic FROM issued_cards")) == [("A",), ("MARK",)]


def test_old_cards_are_pruned_at_most_once_per_interval(database_url, sql):
    store = open_store(database_url, card_max_age=timedelta(0), prune_every=timedelta(hours=1))
    note(store, SERVICE, [card("a", "A")])
    note(store, SERVICE, [card("b", "B")])  # "a" is older than 0 s, but the last pruning is recent
    assert sorted(r[0] for r in sql("SELECT card FROM issued_cards")) == ["a", "b"]
    store._pruned_at -= 3600  # an hour later
    note(store, SERVICE, [card("c", "C")])
    assert sql("SELECT card FROM issued_cards") == [("c",)]
    store.close()


def test_card_max_age_is_configurable(database_url, sql):
    store = open_store(database_url, card_max_age=timedelta(0), prune_every=timedelta(0))
    note(store, SERVICE, [card("a", "A")])
    note(store, SERVICE, [card("b", "B")])
    assert sql("SELECT card FROM issued_cards") == [("b",)]
    store.close()


def test_the_note_writer_writes_by_itself(store, sql):
    """A CDS call only queues its note; this process's note writer thread writes it a moment later."""
    store.remember_cards(SERVICE, [card("queued", "Q")])
    deadline = time.monotonic() + 30
    while not sql("SELECT card FROM issued_cards") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sql("SELECT card, topic FROM issued_cards") == [("queued", "Q")]


def test_the_hot_path_has_connections_of_its_own(postgres_url):
    """PostgreSQL: feedback requests holding every connection of a worker's pool do not hold up the notes and the
    jti check of its order-sign calls (SQLite opens a connection per thread and kind)."""
    def sql(query, *params):
        return run_sql(postgres_url, query, *params)

    store = open_store(postgres_url, timeout=1.0, pool_size=2)
    held = [store.pool().getconn() for _ in range(2)]  # as two feedback requests in their transactions
    try:
        note(store, SERVICE, [card("while-held", "HELD")])
        assert store.first_use("iss", "while-held", NOW + 300, NOW)
        assert store.card_notes_failed == 0 and store._hot_path_open() and not store._pending_jti
        assert sql("SELECT card FROM issued_cards") == [("while-held",)]
        assert sql("SELECT jti FROM used_jti") == [("while-held",)]
    finally:
        for conn in held:
            store.pool().putconn(conn)
        store.close()


# --- used jti values --------------------------------------------------------------------------------------------


def test_a_jti_is_accepted_once_until_its_token_expires(store):
    assert store.first_use("iss-a", "j1", NOW + 300, NOW)
    assert not store.first_use("iss-a", "j1", NOW + 300, NOW + 10)
    assert store.first_use("iss-b", "j1", NOW + 300, NOW)  # another issuer's jti is another token
    assert store.first_use("iss-a", "j1", NOW + 700, NOW + 400)  # the first token has expired


def test_a_jti_used_through_one_store_is_refused_through_another(database_url):
    """Two stores on one database stand for two worker processes (SQLite) or two instances (PostgreSQL)."""
    first, second = open_store(database_url), open_store(database_url)
    try:
        assert first.first_use("iss", "shared", NOW + 300, NOW)
        assert not second.first_use("iss", "shared", NOW + 300, NOW + 1)
        assert second.first_use("iss", "other", NOW + 300, NOW + 1)
        assert not first.first_use("iss", "other", NOW + 300, NOW + 2)
    finally:
        first.close()
        second.close()


def test_expired_jti_values_are_deleted(store, sql):
    store.first_use("iss", "old", NOW + 10, NOW)
    store.first_use("iss", "young", NOW + 1000, NOW)
    store._jti_purge_at = NOW  # due
    store.first_use("iss", "new", NOW + 900, NOW + 500)
    assert sorted(r[0] for r in sql("SELECT jti FROM used_jti")) == ["new", "young"]


# --- schema -----------------------------------------------------------------------------------------------------


def test_schema_is_created_with_its_version(store, sql):
    assert sql("SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)]
    tables = {"feedback", "issued_cards", "used_jti", "fhirsvc_schema"}
    if store.backend == "sqlite":
        found = {r[0] for r in sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
    else:
        found = {r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert tables <= found


def test_reopening_keeps_everything(database_url, sql):
    first = open_store(database_url)
    first.remember_cards(SERVICE, [card("a1", "DOSECOND")])
    first.record(SERVICE, [item("a1")])
    first.first_use("iss", "j", NOW + 300, NOW)
    first.close()
    second = open_store(database_url)  # the schema step on an existing database changes nothing
    assert second.stats(SERVICE)["byTopic"][0]["overridden"] == 1
    assert second.record(SERVICE, [item("a1")]) == 0
    assert not second.first_use("iss", "j", NOW + 300, NOW + 1)
    assert sql("SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)]
    second.close()


def test_a_database_of_a_newer_schema_is_refused(database_url, sql):
    open_store(database_url).close()
    sql("UPDATE fhirsvc_schema SET version = ?", SCHEMA_VERSION + 1)
    with pytest.raises(StorageError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade fhirsvc"):
        open_store(database_url)


def test_a_version_2_database_is_migrated_keeping_its_feedback(database_url):
    """Version 3 adds the reporter to the feedback's key (SQLite: the table rebuilt, its rows copied) and the
    not-issued counts: every stored item is kept, its rule too; of the items of one card (all of reporter '')
    only the latest counts from now on."""
    import importlib

    backend = importlib.import_module("fhirsvc.storage." + ("sqlite" if database_url.startswith("sqlite")
                                                            else "postgres"))
    for statement in ["CREATE TABLE fhirsvc_schema (version integer NOT NULL)", *backend.MIGRATIONS[1],
                      *backend.MIGRATIONS[2], "INSERT INTO fhirsvc_schema (version) VALUES (2)"]:
        run_sql(database_url, statement)
    stamp = (lambda n: (T0 + timedelta(minutes=n)).isoformat()) if database_url.startswith("postgresql") else (
        lambda n: (T0 + timedelta(minutes=n)).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z")
    for n, (card_id, outcome, topic) in enumerate([("a", "overridden", "OLD"), ("a", "overridden", "OLD"),
                                                   ("a", "accepted", "OLD"), ("gone", "overridden", None)]):
        run_sql(database_url, "INSERT INTO feedback (service, card, outcome, outcome_timestamp, accepted_suggestions,"
                              " topic, indicator, drug, received_at) VALUES (?, ?, ?, ?, '[]', ?, ?, 'anakinra', ?)",
                SERVICE, card_id, outcome, stamp(n), topic, "warning" if topic else None, stamp(n))
    store = open_store(database_url)
    try:
        assert run_sql(database_url, "SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)] == [(5,)]
        rows = run_sql(database_url, "SELECT card, outcome, topic, drug, reporter FROM feedback ORDER BY id")
        assert rows == [("a", "overridden", "OLD", "anakinra", ""), ("a", "overridden", "OLD", "anakinra", ""),
                        ("a", "accepted", "OLD", "anakinra", ""), ("gone", "overridden", None, "anakinra", "")]
        stats = store.stats(SERVICE)
        assert [(t["topic"], t["accepted"], t["overridden"]) for t in stats["byTopic"]] == [("OLD", 1, 0)]
        assert (stats["total"], stats["unknownCards"], stats["notIssued"]) == (2, 1, 0)
        issue(store, "a", topic="OLD")
        assert store.record(SERVICE, [item("a", at=T0)], reporter="client") == 1  # the key holds the reporter now
        assert store.record(SERVICE, [item("never-issued")]) == 0
        assert store.stats(SERVICE)["notIssued"] == 1
    finally:
        store.close()


def test_a_version_4_database_is_migrated_keeping_its_cards_and_feedback(database_url):
    """Version 5 adds the site configuration version to cards and feedback, the judged orders and the site
    configuration versions: what was stored is kept (no version), and the new rows are written and read."""
    import importlib

    backend = importlib.import_module("fhirsvc.storage." + ("sqlite" if database_url.startswith("sqlite")
                                                            else "postgres"))
    for statement in ["CREATE TABLE fhirsvc_schema (version integer NOT NULL)", *backend.MIGRATIONS[1],
                      *backend.MIGRATIONS[2], *backend.MIGRATIONS[3], *backend.MIGRATIONS[4],
                      "INSERT INTO fhirsvc_schema (version) VALUES (4)"]:
        run_sql(database_url, statement)
    stamp = (T0.isoformat() if database_url.startswith("postgresql")
             else T0.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z")
    run_sql(database_url, "INSERT INTO issued_cards (service, card, topic, indicator, drug, suggestions, issued_at)"
                          " VALUES (?, 'old', 'DOSEH', 'warning', 'anakinra', '[]', ?)", SERVICE, stamp)
    run_sql(database_url, "INSERT INTO feedback (service, card, outcome, outcome_timestamp, accepted_suggestions,"
                          " topic, indicator, drug, received_at) VALUES (?, 'old', 'overridden', ?, '[]', 'DOSEH',"
                          " 'warning', 'anakinra', ?)", SERVICE, stamp, stamp)
    store = open_store(database_url)
    try:
        assert run_sql(database_url, "SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)] == [(5,)]
        assert run_sql(database_url, "SELECT card, rule, site_config FROM issued_cards") == [("old", None, None)]
        assert run_sql(database_url, "SELECT card, rule, site_config FROM feedback") == [("old", None, None)]
        assert store.stats(SERVICE)["byTopic"][0]["overridden"] == 1
        store.remember_cards(SERVICE, [card("new", "DOSEH", rule="anakinra-max-daily-dose")], ["anakinra"],
                             [JudgedOrder("order-1", "anakinra", 1)], site_config="2026-12-a")
        store.write_notes()
        assert run_sql(database_url, "SELECT rule, site_config FROM issued_cards WHERE card = 'new'") == [
            ("anakinra-max-daily-dose", "2026-12-a")]
        assert run_sql(database_url, "SELECT order_key, drug, cards, site_config FROM judged_orders") == [
            ("order-1", "anakinra", 1, "2026-12-a")]
        store.record(SERVICE, [item("new")])
        assert run_sql(database_url, "SELECT rule, site_config FROM feedback WHERE card = 'new'") == [
            ("anakinra-max-daily-dose", "2026-12-a")]
        seen = store.config_seen("2026-12-a", {"version": "2026-12-a", "rules": {}})
        again = store.config_seen("2026-12-a", {"version": "2026-12-a", "rules": {}})
        assert again.first_seen == seen.first_seen  # the first time is kept
        other = store.config_seen("2026-12-a", {"version": "2026-12-a", "rules": {"x": {}}})
        assert other.digest != seen.digest
        assert len(run_sql(database_url, "SELECT version FROM site_config_versions")) == 2
    finally:
        store.close()


def test_a_sqlite_file_from_before_the_schema_version_is_adopted(tmp_path):
    """Files written before the schema had a version hold exactly version 1's tables: they are kept, and marked."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    run_sql(url, "CREATE TABLE issued_cards (service TEXT NOT NULL, card TEXT NOT NULL, topic TEXT, indicator TEXT,"
                 " suggestions TEXT NOT NULL, issued_at TEXT NOT NULL, PRIMARY KEY (service, card))")
    run_sql(url, "INSERT INTO issued_cards VALUES ('s', 'c', 'OLD', 'info', '[]', '2026-11-01T00:00:00.000000Z')")
    store = open_store(url)
    store.record("s", [item("c")])
    assert [t["topic"] for t in store.stats("s")["byTopic"]] == ["OLD"]
    assert run_sql(url, "SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)]
    store.close()


# --- durability and concurrency ---------------------------------------------------------------------------------


def record_then_die(url: str) -> None:
    """Record one item, then die without closing anything, as a worker killed by its master would."""
    open_store(url).record(SERVICE, [item("before-kill")])
    os.kill(os.getpid(), signal.SIGKILL)


def test_committed_feedback_survives_a_killed_process(database_url, store):
    process = multiprocessing.get_context("spawn").Process(target=record_then_die, args=(database_url,))
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL
    assert store.record(SERVICE, [item("before-kill")]) == 0
    if store.backend == "sqlite":
        assert store._conn().execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_threads_share_a_store(store, sql):
    issue(store, "shared", *(f"t{n}-{i}" for n in range(16) for i in range(5)))

    def work(n: int) -> int:
        return store.record(SERVICE, [item(f"t{n}-{i}") for i in range(5)] + [item("shared")])

    with ThreadPoolExecutor(8) as pool:
        new = sum(pool.map(work, range(16)))
    assert new == 16 * 5 + 1 == count_rows(sql)


def record_many(url: str, worker: int, count: int, start, results) -> None:
    """One worker process: wait for the others, then open the store and record items one request at a time."""
    start.wait()
    began = time.monotonic()
    store = open_store(url)  # schema creation races too, as when gunicorn workers or instances start
    new = 0
    for i in range(count):
        store.remember_cards(SERVICE, [card(f"w{worker}-{i}", f"TOPIC{worker}")])
        new += store.record(SERVICE, [item(f"w{worker}-{i}")])
        assert store.first_use("iss", f"w{worker}-{i}", NOW + 300, NOW)
        assert not store.first_use("iss", f"w{worker}-{i}", NOW + 300, NOW)
    failed = store.card_notes_failed
    store.close()
    results.put((began, time.monotonic(), new, failed))


@pytest.mark.slow
def test_concurrent_processes_lose_nothing(database_url, sql):
    workers, count = 4, 50
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(workers), ctx.Queue()
    processes = [ctx.Process(target=record_many, args=(database_url, w, count, start, results))
                 for w in range(workers)]
    for process in processes:
        process.start()
    began, ended, new, failed = zip(*(results.get(timeout=120) for _ in processes), strict=True)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert max(began) < min(ended), "the workers did not overlap"
    assert sum(new) == workers * count - sum(failed)
    assert {r[0] for r in sql("SELECT card FROM feedback")} <= {f"w{w}-{i}" for w in range(workers)
                                                                   for i in range(count)}
    if database_url.startswith("sqlite:"):
        assert sql("PRAGMA integrity_check") == [("ok",)]
    store = open_store(database_url)
    stats = store.stats(SERVICE)
    store.close()
    # every card note that was written counts its feedback under its topic; a note that could not wait for the
    # lock was counted as failed, and its card's feedback as on a card not issued
    assert stats["total"] == workers * count - sum(failed) == sum(t["overridden"] for t in stats["byTopic"])
    assert stats["notIssued"] == sum(failed)


def test_stats_and_governance_per_rule_id(store, sql):
    """Two rules of one topic and indicator (#4 and #19: DRG critical) are counted apart by their rule id; the
    outcome stored records the rule id of its card."""
    note(store, SERVICE, [card("v1", "DRG", "critical", rule="anakinra-live-vaccine"),
                          card("v2", "DRG", "critical", rule="anakinra-live-vaccine-on-therapy"),
                          card("v3", "DRG", "critical", rule="anakinra-live-vaccine-on-therapy")])
    store.record(SERVICE, [item("v1", "accepted", accepted_suggestions=("s",)), item("v2", "overridden"),
                           item("v3", "overridden", override_code="pt-declined", override_system="https://x")])
    assert sorted(r[0] for r in sql("SELECT rule FROM feedback")) == [
        "anakinra-live-vaccine", "anakinra-live-vaccine-on-therapy", "anakinra-live-vaccine-on-therapy"]
    stats = store.stats(SERVICE)
    assert stats["byRule"] == [
        {"rule": "anakinra-live-vaccine", "topic": "DRG", "indicator": "critical", "accepted": 1, "overridden": 0,
         "overrideReasons": {}},
        {"rule": "anakinra-live-vaccine-on-therapy", "topic": "DRG", "indicator": "critical", "accepted": 0,
         "overridden": 2, "overrideReasons": {"pt-declined": 1}}]
    assert [(t["topic"], t["accepted"], t["overridden"]) for t in stats["byTopic"]] == [("DRG", 1, 2)]
    counts = store.governance(SERVICE, T0.date() - timedelta(days=400), datetime.now(UTC).date())
    assert sorted((c.rule, c.cards, c.with_feedback) for c in counts.issued) == [
        ("anakinra-live-vaccine", 1, 1), ("anakinra-live-vaccine-on-therapy", 2, 2)]


def test_a_version_3_database_is_migrated_keeping_its_rows_without_a_rule_id(database_url):
    """Version 4 adds the rule id to issued cards and feedback: every row stored before is kept as it was (its
    topic, indicator and drug; no rule id) and still counted per topic; new cards and outcomes carry their rule."""
    import importlib

    backend = importlib.import_module("fhirsvc.storage." + ("sqlite" if database_url.startswith("sqlite")
                                                            else "postgres"))
    for statement in ["CREATE TABLE fhirsvc_schema (version integer NOT NULL)", *backend.MIGRATIONS[1],
                      *backend.MIGRATIONS[2], *backend.MIGRATIONS[3],
                      "INSERT INTO fhirsvc_schema (version) VALUES (3)"]:
        run_sql(database_url, statement)
    stamp = (lambda n: (T0 + timedelta(minutes=n)).isoformat()) if database_url.startswith("postgresql") else (
        lambda n: (T0 + timedelta(minutes=n)).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z")
    run_sql(database_url, "INSERT INTO issued_cards (service, card, topic, indicator, drug, suggestions, issued_at)"
                          " VALUES (?, 'old', 'DRG', 'critical', 'anakinra', '[]', ?)", SERVICE, stamp(0))
    run_sql(database_url, "INSERT INTO feedback (service, card, reporter, outcome, outcome_timestamp,"
                          " accepted_suggestions, topic, indicator, drug, received_at)"
                          " VALUES (?, 'old', 'r', 'overridden', ?, '[]', 'DRG', 'critical', 'anakinra', ?)",
            SERVICE, stamp(1), stamp(1))
    store = open_store(database_url)
    try:
        assert run_sql(database_url, "SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)] == [(5,)]
        assert run_sql(database_url, "SELECT card, outcome, topic, indicator, drug, rule FROM feedback") == [
            ("old", "overridden", "DRG", "critical", "anakinra", None)]
        assert run_sql(database_url, "SELECT card, topic, drug, rule FROM issued_cards") == [
            ("old", "DRG", "anakinra", None)]
        note(store, SERVICE, [card("new", "DRG", "critical", rule="anakinra-live-vaccine")])
        assert store.record(SERVICE, [item("new", "overridden")]) == 1
        stats = store.stats(SERVICE)
        assert [(t["topic"], t["overridden"]) for t in stats["byTopic"]] == [("DRG", 2)]
        assert [(r["rule"], r["overridden"]) for r in stats["byRule"]] == [("anakinra-live-vaccine", 1)]
    finally:
        store.close()



def test_the_governance_report_keys_on_the_rule_id(store, knowledge):
    """#4 and #19 share topic, indicator and drug: the report gives each its own row, named by its rule id."""
    from fhirsvc.governance.report import Period, Thresholds, build_report, report_document

    note(store, SERVICE, [card("g1", "DRG", "critical", rule="anakinra-live-vaccine"),
                          card("g2", "DRG", "critical", rule="anakinra-live-vaccine-on-therapy"),
                          card("g3", "DRG", "critical")])  # noted before rule ids: topic + indicator + drug only
    store.record(SERVICE, [item("g1", "overridden"), item("g2", "accepted", accepted_suggestions=("s",)),
                           item("g3", "overridden")])
    today = datetime.now(UTC).date()
    period = Period(T0.date(), today)
    report = build_report(store.governance(SERVICE, period.first, period.last), period, SERVICE,
                          Thresholds(0.5, 1), knowledge, T0.date())
    rows = {r["rule"]: (r["topic"], r["indicator"], r["accepted"], r["overridden"])
            for r in report_document(report)["rules"]}
    assert rows == {"anakinra-live-vaccine": ("DRG", "critical", 0, 1),
                    "anakinra-live-vaccine-on-therapy": ("DRG", "critical", 1, 0),
                    None: ("DRG", "critical", 0, 1)}
    assert {r.label for r in report.rules} >= {"Drug Interaction Alert · critical · drug not recorded · "
                                               "anakinra-live-vaccine"}
