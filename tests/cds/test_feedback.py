"""CDS Hooks feedback: validating posted bodies; the SQLite store (idempotency, stats, durability, concurrency)."""

from __future__ import annotations

import copy
import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fhirsvc.cds.feedback import FeedbackInvalid, FeedbackItem, FeedbackStore, parse_feedback
from tests.conftest import CONFORMANCE_DIR as CONFORMANCE

SPEC_EXAMPLES = ["accepted", "overridden", "overridden-with-reason"]
SERVICE = "anakinra-order-select"
T0 = datetime(2021, 12, 11, 10, 5, 31, tzinfo=UTC)


def spec_example(name: str) -> dict:
    return json.loads((CONFORMANCE / f"spec-2.0.1.feedback.{name}.json").read_text())


def item(card: str = "card-1", outcome: str = "overridden", at: datetime = T0, **kwargs) -> FeedbackItem:
    return FeedbackItem(card=card, outcome=outcome, outcome_timestamp=at, **kwargs)


def card(uuid: str, topic: str | None, indicator: str = "warning", suggestions: tuple[str, ...] = ()) -> dict:
    source = {"label": "Anakinra monograph"}
    if topic:
        source["topic"] = {"system": "http://example.org/topics", "code": topic, "display": topic.title()}
    return {
        "uuid": uuid,
        "summary": "s",
        "indicator": indicator,
        "source": source,
        "suggestions": [{"label": "l", "uuid": s} for s in suggestions],
    }


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]


# --- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_EXAMPLES)
def test_spec_examples_parse(name):
    body = spec_example(name)
    [parsed] = parse_feedback(body)
    raw = body["feedback"][0]
    assert parsed.card == raw["card"] and parsed.outcome == raw["outcome"]
    assert parsed.outcome_timestamp == datetime.fromisoformat(raw["outcomeTimestamp"])
    assert parsed.outcome_timestamp.tzinfo is UTC


def test_spec_examples_fields():
    accepted = parse_feedback(spec_example("accepted"))[0]
    assert accepted.accepted_suggestions == ("e56e1945-20b3-4393-8503-a1a20fd73152",)
    assert accepted.override_code is None and accepted.user_comment is None
    reason = parse_feedback(spec_example("overridden-with-reason"))[0]
    assert (reason.override_code, reason.override_system, reason.override_display) == (
        "d7ecf885",
        "https://example.com/cds-hooks/override-reason-system",
        None,  # the sandbox sends no display either
    )
    assert reason.user_comment == "A comment entered by the clinician."
    assert reason.accepted_suggestions == ()


def test_offsets_are_normalised_to_utc_and_unknown_fields_ignored():
    body = {
        "feedback": [
            {
                "card": "c",
                "outcome": "overridden",
                "outcomeTimestamp": "2021-12-11T11:05:31.5+01:00",
                "overrideReason": {"reason": {"code": "x", "system": "s", "display": "X", "future": 1}},
                "futureField": {"anything": True},
            }
        ],
        "extension": {"x": 1},
    }
    [parsed] = parse_feedback(body)
    assert parsed.outcome_timestamp == datetime(2021, 12, 11, 10, 5, 31, 500000, tzinfo=UTC)
    assert parsed.outcome_timestamp.tzinfo is UTC
    assert parsed.override_display == "X"


def test_several_items_in_one_body():
    body = {"feedback": spec_example("accepted")["feedback"] + spec_example("overridden")["feedback"]}
    assert [i.outcome for i in parse_feedback(body)] == ["accepted", "overridden"]


def with_item(**changes) -> dict:
    """The overridden spec example with fields replaced (None removes one)."""
    raw = copy.deepcopy(spec_example("overridden")["feedback"][0])
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return {"feedback": [raw]}


ACCEPTED = spec_example("accepted")["feedback"][0]

INVALID = [
    pytest.param(with_item(card=None), ("feedback", "0", "card"), "Missing data", id="missing-card"),
    pytest.param(with_item(card=42), ("feedback", "0", "card"), "Not a valid string", id="card-not-a-string"),
    pytest.param(with_item(card=""), ("feedback", "0", "card"), "Shorter", id="card-empty"),
    pytest.param(with_item(outcome="ignored"), ("feedback", "0", "outcome"), "Must be one of", id="bad-outcome"),
    pytest.param(with_item(outcome=None), ("feedback", "0", "outcome"), "Missing data", id="missing-outcome"),
    pytest.param(
        with_item(outcome="accepted"),
        ("feedback", "0", "acceptedSuggestions"),
        "Required when outcome is accepted",
        id="accepted-without-acceptedSuggestions",
    ),
    pytest.param(
        with_item(outcome="accepted", acceptedSuggestions=[]),
        ("feedback", "0", "acceptedSuggestions"),
        "Shorter",
        id="accepted-with-empty-acceptedSuggestions",
    ),
    pytest.param(
        with_item(outcome="accepted", acceptedSuggestions=[{"uuid": "x"}]),
        ("feedback", "0", "acceptedSuggestions", "0", "id"),
        "Missing data",
        id="accepted-suggestion-without-id",
    ),
    pytest.param(
        with_item(outcome="accepted", acceptedSuggestions=["e56e1945"]),
        ("feedback", "0", "acceptedSuggestions", "0", "_schema"),
        "Invalid input type",
        id="accepted-suggestion-not-an-object",
    ),
    pytest.param(
        with_item(outcomeTimestamp=None),
        ("feedback", "0", "outcomeTimestamp"),
        "Missing data for required field.",
        id="missing-timestamp",
    ),
    pytest.param(
        with_item(outcomeTimestamp="2021-12-11T10:05:31"),
        ("feedback", "0", "outcomeTimestamp"),
        "no time zone",
        id="naive-timestamp",
    ),
    pytest.param(
        with_item(outcomeTimestamp="yesterday"),
        ("feedback", "0", "outcomeTimestamp"),
        "RFC 3339",
        id="garbage-timestamp",
    ),
    pytest.param(
        with_item(outcomeTimestamp="2021-12-11"), ("feedback", "0", "outcomeTimestamp"), "RFC 3339", id="date-only"
    ),
    pytest.param(
        with_item(outcomeTimestamp="20211211T100531Z"),
        ("feedback", "0", "outcomeTimestamp"),
        "RFC 3339",
        id="iso-basic-format-timestamp",
    ),
    pytest.param(
        with_item(outcomeTimestamp="2021-02-30T10:05:31Z"),
        ("feedback", "0", "outcomeTimestamp"),
        "RFC 3339",
        id="impossible-date",
    ),
    pytest.param(
        with_item(outcomeTimestamp=1639217131),
        ("feedback", "0", "outcomeTimestamp"),
        "RFC 3339",
        id="epoch-number-timestamp",
    ),
    pytest.param(
        with_item(overrideReason={}),
        ("feedback", "0", "overrideReason"),
        "Needs a reason or a userComment",
        id="overrideReason-empty",
    ),
    pytest.param(
        with_item(overrideReason="too risky"),
        ("feedback", "0", "overrideReason", "_schema"),
        "Invalid input type",
        id="overrideReason-not-an-object",
    ),
    pytest.param(
        with_item(overrideReason={"reason": {"code": "d7ecf885"}}),
        ("feedback", "0", "overrideReason", "reason", "system"),
        "Missing data",
        id="reason-without-system",
    ),
    pytest.param(
        with_item(overrideReason={"reason": {"system": "http://x"}}),
        ("feedback", "0", "overrideReason", "reason", "code"),
        "Missing data",
        id="reason-without-code",
    ),
    pytest.param(
        with_item(overrideReason={"userComment": 7}),
        ("feedback", "0", "overrideReason", "userComment"),
        "Not a valid string",
        id="userComment-not-a-string",
    ),
    pytest.param(
        {"feedback": [ACCEPTED, {"outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31Z"}]},
        ("feedback", "1", "card"),
        "Missing data",
        id="second-item-missing-card",
    ),
    pytest.param({"feedback": ACCEPTED}, ("feedback",), "Not a valid list", id="feedback-not-a-list"),
    pytest.param({"feedback": []}, ("feedback",), "Shorter", id="feedback-empty-list"),
    pytest.param({"feedback": None}, ("feedback",), "may not be null", id="feedback-null"),
    pytest.param({}, ("feedback",), "Missing data", id="feedback-missing"),
    pytest.param([ACCEPTED], ("_schema",), "Invalid input type", id="body-a-list"),
    pytest.param("feedback", ("_schema",), "Invalid input type", id="body-a-string"),
    pytest.param(None, ("_schema",), "Invalid input type", id="body-null"),
]


@pytest.mark.parametrize(("body", "path", "message"), INVALID)
def test_invalid_bodies_name_the_field(body, path, message):
    with pytest.raises(FeedbackInvalid) as caught:
        parse_feedback(body)
    errors = caught.value.errors
    assert json.loads(json.dumps(errors)) == errors  # the 400 body as is, string keys throughout
    node = errors
    for key in path:
        assert key in node, (path, errors)
        node = node[key]
    assert any(message in m for m in node), errors


def test_every_bad_item_is_reported_at_once():
    body = {
        "feedback": [
            {"outcome": "maybe"},
            ACCEPTED,
            {"card": "c", "outcome": "overridden"},
            {"card": 1, "outcome": "accepted", "outcomeTimestamp": "2021-12-11T10:05:31Z", "overrideReason": {}},
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2021-12-11T10:05:31Z", "acceptedSuggestions": []},
        ]
    }
    with pytest.raises(FeedbackInvalid) as caught:
        parse_feedback(body)
    errors = caught.value.errors["feedback"]
    assert set(errors) == {"0", "2", "3", "4"}
    assert set(errors["0"]) == {"card", "outcome", "outcomeTimestamp"}
    assert errors["2"] == {"outcomeTimestamp": ["Missing data for required field."]}
    assert set(errors["3"]) == {"card", "acceptedSuggestions", "overrideReason"}  # invariants beside field errors
    assert errors["4"] == {"acceptedSuggestions": ["Shorter than minimum length 1."]}  # present, so not "required"


# --- store ------------------------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "feedback.sqlite3"


@pytest.fixture
def store(db):
    store = FeedbackStore(db)
    yield store
    store.close()


def test_connection_settings(store, db):
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_issued_cards_do_not_wait_for_the_disk_and_feedback_does(store):
    """Issued cards are written on their own connection, synchronous NORMAL; feedback's stays FULL."""
    store.remember_cards(SERVICE, [card("a", "A")])
    assert store._conn("NORMAL").execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert store._conn().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_record_is_idempotent(store, db):
    assert store.record(SERVICE, [item()]) == 1
    assert store.record(SERVICE, [item()]) == 0
    assert count_rows(db) == 1
    assert store.record(SERVICE, [item(at=T0 + timedelta(seconds=1))]) == 1
    assert count_rows(db) == 2


def test_idempotency_key_is_service_card_outcome_instant(store, db):
    same_instant = T0.astimezone(datetime.fromisoformat("2000-01-01T00:00:00+05:30").tzinfo)
    assert store.record(SERVICE, [item(at=same_instant), item(), item()]) == 1
    assert store.record(SERVICE, [item(outcome="accepted", accepted_suggestions=("s1",))]) == 1
    assert store.record("other-service", [item()]) == 1
    assert store.record(SERVICE, [item(card="card-2")]) == 1
    assert count_rows(db) == 4


def test_stored_columns(store, db):
    store.record(
        SERVICE,
        [
            item(override_code="d7ecf885", override_system="https://x", user_comment="patient declined"),
            item(card="c2", outcome="accepted", accepted_suggestions=("s1", "s2")),
        ],
    )
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = {r["card"]: r for r in conn.execute("SELECT * FROM feedback")}
    assert rows["card-1"]["outcome_timestamp"] == "2021-12-11T10:05:31.000000Z"
    assert (rows["card-1"]["override_code"], rows["card-1"]["user_comment"]) == ("d7ecf885", "patient declined")
    assert json.loads(rows["c2"]["accepted_suggestions"]) == ["s1", "s2"]


def test_user_comment_is_never_logged(store, caplog):
    caplog.set_level(logging.DEBUG)
    store.record(SERVICE, [item(user_comment="SECRET-FREE-TEXT")])
    assert caplog.records and "SECRET-FREE-TEXT" not in caplog.text


def test_stats_per_topic_and_outcome(store):
    store.remember_cards(
        SERVICE,
        [
            card("a1", "DOSECOND", suggestions=("s-a1",)),
            card("a2", "DOSECOND"),
            card("b1", "INFECTION", indicator="critical"),
            card("n1", None, indicator="info"),
            {"summary": "no uuid, never fed back", "indicator": "info", "source": {"label": "x"}},
        ],
    )
    reason = {"override_code": "pt-declined", "override_system": "https://x"}
    store.record(
        SERVICE,
        [
            item("a1", "accepted", accepted_suggestions=("s-a1",)),
            item("a1", "overridden", **reason),
            item("a2", "overridden", **reason),
            item("a2", "overridden", at=T0 + timedelta(minutes=1), user_comment="only a comment"),
            item("b1", "overridden", override_code="other", override_system="https://x"),
            item("n1", "accepted", accepted_suggestions=("s",)),
            item("zz-unknown", "overridden"),
            item("zz-unknown", "accepted", accepted_suggestions=("s",)),
        ],
    )
    store.record("other-service", [item("a1", "accepted", accepted_suggestions=("s-a1",))])
    assert store.stats(SERVICE) == {
        "service": SERVICE,
        "total": 8,
        "byTopic": [
            {
                "topic": "DOSECOND",
                "indicator": "warning",
                "accepted": 1,
                "overridden": 3,
                "overrideReasons": {"pt-declined": 2},
            },
            {
                "topic": "INFECTION",
                "indicator": "critical",
                "accepted": 0,
                "overridden": 1,
                "overrideReasons": {"other": 1},
            },
            {"topic": None, "indicator": "info", "accepted": 1, "overridden": 0, "overrideReasons": {}},
        ],
        "unknownCards": 1,
    }
    assert store.stats("other-service")["byTopic"] == []  # cards are remembered per service
    assert store.stats("nobody") == {"service": "nobody", "total": 0, "byTopic": [], "unknownCards": 0}


def test_topics_argument_and_late_remembered_cards(store):
    store.record(SERVICE, [item("given")], topics={"given": ("GIVEN", "info")})
    store.record(SERVICE, [item("late")])
    assert store.stats(SERVICE)["unknownCards"] == 1
    store.remember_cards(SERVICE, [card("late", "LATE")])
    stats = store.stats(SERVICE)
    assert [(t["topic"], t["indicator"], t["overridden"]) for t in stats["byTopic"]] == [
        ("GIVEN", "info", 1),
        ("LATE", "warning", 1),
    ]
    assert stats["unknownCards"] == 0


def test_remember_cards_is_idempotent_and_prunes_old_cards(db):
    store = FeedbackStore(db, prune_every=timedelta(0))
    store.remember_cards(SERVICE, [card("old", "OLD", suggestions=("s1",))])
    store.remember_cards(SERVICE, [card("old", "OLD", suggestions=("s1",))])
    store.record(SERVICE, [item("old")])  # the topic is kept with the feedback, beyond the card's pruning
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*), MIN(suggestions) FROM issued_cards").fetchone() == (1, '["s1"]')
        backdated = (datetime.now(UTC) - timedelta(days=31)).replace(tzinfo=None).isoformat() + "Z"
        conn.execute("UPDATE issued_cards SET issued_at = ?", (backdated,))
    store.remember_cards(SERVICE, [card("new", "NEW")])
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT card FROM issued_cards")] == ["new"]
    assert [t["topic"] for t in store.stats(SERVICE)["byTopic"]] == ["OLD"]
    store.close()


def test_the_cards_of_one_call_are_stored_together_the_last_of_a_uuid_winning(store, db):
    store.remember_cards(SERVICE, [card("a", "A", suggestions=("s1", "s2")), card("b", "B"), card("a", "A2")])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT card, topic, suggestions FROM issued_cards ORDER BY card").fetchall() == [
            ("a", "A2", "[]"), ("b", "B", "[]")]


def test_old_cards_are_pruned_at_most_once_per_interval(db):
    store = FeedbackStore(db, card_max_age=timedelta(0), prune_every=timedelta(hours=1))
    store.remember_cards(SERVICE, [card("a", "A")])
    store.remember_cards(SERVICE, [card("b", "B")])  # "a" is older than 0 s, but the last pruning is recent
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT card FROM issued_cards")) == ["a", "b"]
    store._pruned_at -= 3600  # an hour later
    store.remember_cards(SERVICE, [card("c", "C")])
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT card FROM issued_cards")] == ["c"]
    store.close()


def test_card_max_age_is_configurable(db):
    store = FeedbackStore(db, card_max_age=timedelta(0), prune_every=timedelta(0))
    store.remember_cards(SERVICE, [card("a", "A")])
    store.remember_cards(SERVICE, [card("b", "B")])
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT card FROM issued_cards")] == ["b"]
    store.close()


def test_durable_across_reopening(db):
    first = FeedbackStore(db)
    first.remember_cards(SERVICE, [card("a1", "DOSECOND")])
    first.record(SERVICE, [item("a1")])
    first.close()
    second = FeedbackStore(db)  # re-running the schema on an existing file is harmless
    assert second.stats(SERVICE)["byTopic"][0]["overridden"] == 1
    assert second.record(SERVICE, [item("a1")]) == 0
    second.close()


def record_then_die(path: str) -> None:
    """Record one item, then die without closing anything, as a worker killed by its master would."""
    FeedbackStore(path).record(SERVICE, [item("before-kill")])
    os.kill(os.getpid(), signal.SIGKILL)


def test_committed_feedback_survives_a_killed_process(db):
    process = multiprocessing.get_context("spawn").Process(target=record_then_die, args=(str(db),))
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL
    store = FeedbackStore(db)
    assert store.record(SERVICE, [item("before-kill")]) == 0
    assert store._conn().execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()


def test_threads_share_a_store(store, db):
    def work(n: int) -> int:
        try:
            return store.record(SERVICE, [item(f"t{n}-{i}") for i in range(5)] + [item("shared")])
        finally:
            store.close()

    with ThreadPoolExecutor(8) as pool:
        new = sum(pool.map(work, range(16)))
    assert new == 16 * 5 + 1 == count_rows(db)


def record_many(path: str, worker: int, count: int, start, results) -> None:
    """One worker process: wait for the others, then create the store and record items one request at a time."""
    start.wait()
    began = time.monotonic()
    store = FeedbackStore(path)  # schema creation races too, as when gunicorn workers boot
    new = 0
    for i in range(count):
        store.remember_cards(SERVICE, [card(f"w{worker}-{i}", f"TOPIC{worker}")])
        new += store.record(SERVICE, [item(f"w{worker}-{i}"), item("shared-by-all")])
    store.close()
    results.put((began, time.monotonic(), new))


def test_concurrent_processes_lose_nothing(db):
    workers, count = 4, 100
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(workers), ctx.Queue()
    processes = [ctx.Process(target=record_many, args=(str(db), w, count, start, results)) for w in range(workers)]
    for process in processes:
        process.start()
    began, ended, new = zip(*(results.get(timeout=120) for _ in processes), strict=True)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert max(began) < min(ended), "the workers did not overlap"
    assert sum(new) == workers * count + 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        cards = {r[0] for r in conn.execute("SELECT card FROM feedback")}
    assert cards == {f"w{w}-{i}" for w in range(workers) for i in range(count)} | {"shared-by-all"}
    store = FeedbackStore(db)
    stats = store.stats(SERVICE)
    store.close()
    assert stats["total"] == workers * count + 1 and stats["unknownCards"] == 1
    assert [(t["topic"], t["overridden"]) for t in stats["byTopic"]] == [(f"TOPIC{w}", count) for w in range(workers)]
