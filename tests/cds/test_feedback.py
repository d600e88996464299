"""CDS Hooks feedback: validating posted bodies (the store: tests/storage)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from fhirsvc.cds.feedback import MAX_FEEDBACK_ITEMS, MAX_FUTURE_SKEW, FeedbackInvalid, parse_feedback, reporter
from fhirsvc.errors import ApiError
from tests.conftest import CONFORMANCE_DIR as CONFORMANCE

SPEC_EXAMPLES = ["accepted", "overridden", "overridden-with-reason"]


def spec_example(name: str) -> dict:
    return json.loads((CONFORMANCE / f"spec-2.0.1.feedback.{name}.json").read_text())


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
    pytest.param(with_item(card=""), ("feedback", "0", "card"), "Length must be between 1 and 128", id="card-empty"),
    pytest.param(with_item(card="c" * 8192), ("feedback", "0", "card"), "Length must be between 1 and 128",
                 id="card-8kB"),
    pytest.param(with_item(card="abc\x00def"), ("feedback", "0", "card"), "NUL", id="card-with-NUL"),
    pytest.param(with_item(overrideReason={"userComment": "fine\x00"}), ("feedback", "0", "overrideReason",
                 "userComment"), "NUL", id="userComment-with-NUL"),
    pytest.param(with_item(overrideReason={"userComment": "x" * 4097}), ("feedback", "0", "overrideReason",
                 "userComment"), "Longer than maximum length 4096", id="userComment-too-long"),
    pytest.param(with_item(overrideReason={"reason": {"code": "c" * 257, "system": "http://x"}}),
                 ("feedback", "0", "overrideReason", "reason", "code"), "Length must be between 1 and 256",
                 id="reason-code-too-long"),
    pytest.param(with_item(overrideReason={"reason": {"code": "c\x00", "system": "http://x"}}),
                 ("feedback", "0", "overrideReason", "reason", "code"), "NUL", id="reason-code-with-NUL"),
    pytest.param(with_item(overrideReason={"reason": {"code": "c", "system": "http://x", "display": "d" * 1025}}),
                 ("feedback", "0", "overrideReason", "reason", "display"), "Longer than maximum length 1024",
                 id="reason-display-too-long"),
    pytest.param(with_item(overrideReason={"reason": {"code": "c", "system": "http://x/\x00"}}),
                 ("feedback", "0", "overrideReason", "reason", "system"), "NUL", id="reason-system-with-NUL"),
    pytest.param(with_item(outcome="accepted", acceptedSuggestions=[{"id": "s" * 129}]),
                 ("feedback", "0", "acceptedSuggestions", "0", "id"), "Length must be between 1 and 128",
                 id="suggestion-id-too-long"),
    pytest.param(with_item(outcomeTimestamp="2099-01-01T00:00:00Z"), ("feedback", "0", "outcomeTimestamp"),
                 "More than 5 minutes in the future", id="timestamp-in-2099"),
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


def test_a_timestamp_a_little_ahead_is_taken_one_further_ahead_refused():
    """The EHR's clock may run a little ahead: up to MAX_FUTURE_SKEW (5 minutes) is taken."""
    now = datetime.now(UTC)
    stamp = (now + MAX_FUTURE_SKEW - timedelta(seconds=30)).isoformat()
    assert parse_feedback(with_item(outcomeTimestamp=stamp))[0].outcome_timestamp.isoformat() == stamp
    with pytest.raises(FeedbackInvalid) as caught:
        parse_feedback(with_item(outcomeTimestamp=(now + MAX_FUTURE_SKEW + timedelta(minutes=1)).isoformat()))
    assert list(caught.value.errors["feedback"]["0"]) == ["outcomeTimestamp"]


def test_more_items_than_the_limit_are_refused_before_reading_them():
    item = spec_example("overridden")["feedback"][0]
    assert len(parse_feedback({"feedback": [item] * MAX_FEEDBACK_ITEMS})) == MAX_FEEDBACK_ITEMS == 100
    with pytest.raises(ApiError) as caught:
        parse_feedback({"feedback": [item] * (MAX_FEEDBACK_ITEMS + 1)})
    assert caught.value.status == 413
    assert "at most 100 feedback items per request (MAX_FEEDBACK_ITEMS)" in caught.value.diagnostics
    assert caught.value.fields == {"feedback": ["Longer than the maximum of 100 items."]}


def test_the_reporter_is_the_authenticated_client():
    """Who sent the feedback: the JWT's iss, tenant and sub, as a digest; nobody in particular without a token."""
    a = reporter({"iss": "https://ehr.example", "sub": "client-1", "jti": "j1"})
    assert a == reporter({"iss": "https://ehr.example", "sub": "client-1", "jti": "j2"})  # another token
    assert len(a) == 64 and "client-1" not in a
    assert a != reporter({"iss": "https://ehr.example", "sub": "client-2"})
    assert a != reporter({"iss": "https://ehr.example", "sub": "client-1", "tenant": "t"})
    assert reporter({}) == ""
