"""The governance report against the store, on both backends (a SQLite file; a database of a real PostgreSQL
server): for a generated history of 4,000 card shows and 1,500 feedback items, every number of every rule and week
equals what the oracle (tests/governance/conftest.py) computes from the generated cards and feedback; the feedback
statistics route's counts come from the same query."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bench.history import generate, load
from fhirsvc.governance.report import (
    BadParameter,
    Thresholds,
    build_report,
    parse_period,
    report_document,
)
from fhirsvc.storage import open_store
from tests.governance.conftest import END, SEED, START, expected, monday

THRESHOLDS = Thresholds(override_rate=0.8, min_feedback=20)
PERIODS = [
    (END.date() - timedelta(days=29), END.date(), None),  # the default length, ending on the last day
    (date(2026, 11, 5), date(2026, 11, 18), "medication-safety-order-select"),  # cut mid-week, one service
    (START.date(), END.date(), "medication-safety"),  # the deprecated id, the whole history
    (END.date() + timedelta(days=1), END.date() + timedelta(days=3), None),  # after the history: empty
]


@pytest.fixture(scope="module")
def history():
    return generate(SEED, cards=4000, feedback=1500, start=START, end=END)


@pytest.fixture
def loaded(database_url, history):
    store = open_store(database_url)
    load(store, history)
    yield store
    store.close()


def as_numbers(rule) -> tuple:
    return (rule.total.issued, rule.total.with_feedback, rule.total.accepted, rule.total.overridden)


def test_the_report_equals_the_history(loaded, history, knowledge):
    for first, last, service in PERIODS:
        oracle, not_issued = expected(history, first, last, service)
        report = build_report(loaded.governance(service, first, last), parse_period(
            first.isoformat(), last.isoformat(), END.date()), service, THRESHOLDS, knowledge, date(2026, 1, 1))
        assert {(r.topic, r.indicator, r.drug): as_numbers(r) for r in report.rules} == {
            key: (e.issued, e.with_feedback, e.accepted, e.overridden) for key, e in oracle.items()}, (first, service)
        assert (report.unknown_items, report.unknown_cards) == (0, 0)  # feedback is stored on issued cards only
        received = first <= datetime.now(UTC).date() <= last  # the not-issued items count on the day received
        assert report.not_issued == (not_issued if received else 0)
        assert report_document(report)["notIssued"] == {"feedback": report.not_issued}
        assert report.empty == (not oracle)
        for rule in report.rules:
            want = oracle[(rule.topic, rule.indicator, rule.drug)]
            assert {r.code: r.count for r in rule.reasons} == dict(want.reasons)
            assert rule.flagged == (want.rate is not None and want.rate >= 0.8 and want.feedback >= 20)
            for week, tally in zip(report.weeks, rule.weeks, strict=True):
                counts = want.weeks.get(week, {})
                assert (tally.issued, tally.accepted, tally.overridden) == (
                    counts.get("issued", 0), counts.get("accepted", 0), counts.get("overridden", 0)), (rule, week)
        assert report.weeks[0] == monday(first) and report.weeks[-1] == monday(last)
        rates = [r.total.override_rate for r in report.rules]
        known = [r for r in rates if r is not None]
        assert known == sorted(known, reverse=True) and rates[len(known):] == [None] * (len(rates) - len(known))
        assert report.total.issued == sum(e.issued for e in oracle.values())
    assert any(r.flagged for r in report_for(loaded, knowledge, PERIODS[0]).rules), "the history flags no rule"


def test_history_exercises_every_case(history):
    """The generated history holds what the report must handle: re-shown cards, cards with two feedback items,
    overrides without a reason code, feedback on unknown cards, every service."""
    shows = {(s.service, s.card) for s in history.shows}
    assert len(shows) < len(history.shows)
    per_card = {}
    for item in history.feedback:
        per_card[(item.service, item.card)] = per_card.get((item.service, item.card), 0) + 1
    assert max(per_card.values()) >= 2
    assert any(i.outcome == "overridden" and i.reason is None for i in history.feedback)
    assert any(key not in shows for key in per_card)
    assert {s.service for s in history.shows} == {"medication-safety-order-select", "medication-safety-order-sign",
                                                  "medication-safety"}


def test_feedback_statistics_read_the_same_counts(loaded, history):
    """GET .../feedback/stats (Store.stats) and the report count the same items: per topic and indicator, over all
    time, for each service."""
    for service in ("medication-safety-order-select", "medication-safety-order-sign"):
        oracle, not_issued = expected(history, date(2000, 1, 1), date(2100, 1, 1), service)
        stats = loaded.stats(service)
        by_topic = {}
        for (topic, indicator, _), e in oracle.items():
            if e.feedback:
                group = by_topic.setdefault((topic, indicator), [0, 0])
                group[0] += e.accepted
                group[1] += e.overridden
        assert {(g["topic"], g["indicator"]): [g["accepted"], g["overridden"]] for g in stats["byTopic"]} == by_topic
        assert stats["total"] == sum(e.feedback for e in oracle.values())
        assert (stats["unknownCards"], stats["notIssued"]) == (0, not_issued) and not_issued > 0


def test_the_json_twin_carries_the_report(loaded, knowledge):
    report = report_for(loaded, knowledge, PERIODS[0])
    document = report_document(report)
    assert document["period"] == {"from": PERIODS[0][0].isoformat(), "to": PERIODS[0][1].isoformat(), "days": 30}
    assert [(r["rank"], r["cardsIssued"], r["overridden"], r["flagged"]) for r in document["rules"]] == [
        (r.rank, r.total.issued, r.total.overridden, r.flagged) for r in report.rules]
    assert document["totals"]["cardsIssued"] == sum(r["cardsIssued"] for r in document["rules"])
    assert all(len(r["weekly"]) == len(document["weeks"]) for r in document["rules"])


def report_for(store, knowledge, period):
    first, last, service = period
    return build_report(store.governance(service, first, last),
                        parse_period(first.isoformat(), last.isoformat(), END.date()), service, THRESHOLDS,
                        knowledge, date(2026, 1, 1))


# --- the period -------------------------------------------------------------------------------------------------


def test_default_period_is_the_last_30_days():
    period = parse_period(None, None, date(2026, 12, 3))
    assert (period.first, period.last, period.days) == (date(2026, 11, 4), date(2026, 12, 3), 30)
    assert period.weeks() == [date(2026, 11, 2) + timedelta(weeks=n) for n in range(5)]  # Mondays
    assert parse_period(None, "2026-02-28", date(2026, 12, 3)).first == date(2026, 1, 30)
    one = parse_period("2026-11-30", "2026-11-30", date(2026, 12, 3))
    assert (one.days, one.weeks(), one.end - one.start) == (1, [date(2026, 11, 30)], timedelta(days=1))


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-13-01", None, "from='2026-13-01' is not a calendar date"),
    ("2026-02-30", None, "not a calendar date"),
    ("01/11/2026", None, "not a date of the form YYYY-MM-DD"),
    ("20261101", None, "not a date of the form YYYY-MM-DD"),
    ("2026-11-01T00:00", None, "not a date of the form"),
    (None, "yesterday", "to='yesterday' is not a date"),
    ("2026-12-01", "2026-11-01", "from=2026-12-01 is after to=2026-11-01"),
    ("2024-01-01", "2026-01-01", "at most 366 days"),
    ("1999-12-31", "2000-01-01", "out of range"),
    ("9999-12-31", "9999-12-31", "out of range"),
    ("2026-11-01", "", None),  # empty: the default
])
def test_bad_periods_are_named(start, end, message):
    if message is None:
        assert parse_period(start, end, date(2026, 12, 3)).last == date(2026, 12, 3)
        return
    with pytest.raises(BadParameter, match=message):
        parse_period(start, end, date(2026, 12, 3))
