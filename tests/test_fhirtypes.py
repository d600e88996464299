"""The FHIR datatype helpers every layer reads (``fhirsvc.fhirtypes``) and the one OperationOutcome builder."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhirsvc.errors import operation_outcome, outcome_issue
from fhirsvc.fhirtypes import (
    concept_text,
    date_bounds,
    format_instant,
    now_instant,
    number_text,
    parse_instant,
    quantity_text,
    random_uuid,
    schedule_words,
    second_instant,
    unit_words,
    uuid4_text,
)

SNOMED = "http://snomed.info/sct"


# --- CodeableConcept ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("concept", "text"), [
    pytest.param({"text": "Latex allergy", "coding": [{"display": "Allergy to latex"}]}, "Latex allergy", id="text"),
    pytest.param({"coding": [{"system": SNOMED, "code": "300916003", "display": "Latex allergy"}]}, "Latex allergy",
                 id="display-only"),
    pytest.param({"coding": [{"system": SNOMED, "code": "300916003"}, {"display": "Latex allergy"}]},
                 "Latex allergy", id="a-later-display-before-a-code"),
    pytest.param({"coding": [{"system": SNOMED, "code": "300916003"}]}, "300916003", id="code-only"),
    pytest.param({"text": "", "coding": []}, "", id="empty-text-no-coding"),
    pytest.param({"coding": [{"system": SNOMED}]}, "", id="coding-without-code-or-display"),
    pytest.param({}, "", id="empty"),
    pytest.param(None, "", id="none"),
    pytest.param({"coding": "not a list"}, "", id="coding-not-an-array"),
    pytest.param({"coding": [None, 3, {"display": "Fever"}]}, "Fever", id="non-objects-in-coding-skipped"),
    pytest.param({"concept": {"text": "Neutropenia"}}, "Neutropenia", id="codeable-reference"),
    pytest.param({"concept": {"coding": [{"code": "165517008"}]}, "reference": {"reference": "Condition/1"}},
                 "165517008", id="codeable-reference-code-only"),
    pytest.param({"text": 42}, "42", id="text-not-a-string"),
])
def test_concept_text(concept, text):
    assert concept_text(concept) == text


# --- Quantity ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("quantity", "style", "text"), [
    ({"value": 30, "unit": "mL/min", "code": "mL/min"}, "code", "30 mL/min"),
    ({"value": 30, "comparator": "<", "unit": "mL/min"}, "code", "< 30 mL/min"),
    ({"value": 30, "comparator": ">=", "unit": "mL/min"}, "code", ">= 30 mL/min"),
    ({"value": 30, "comparator": ">=", "unit": "mL/min"}, "sign", "\u2265 30 mL/min"),
    ({"value": 30, "comparator": "<=", "unit": "mL/min"}, "sign", "\u2264 30 mL/min"),
    ({"value": 5, "comparator": "ad", "unit": "mL"}, "sign", "5 mL"),
    ({"value": 5, "comparator": "<", "unit": "mg/L"}, "joined", "<5 mg/L"),
    ({"value": 60, "comparator": ">", "code": "mL/min/{1.73_m2}"}, "joined", ">60 mL/min/{1.73_m2}"),
    ({"value": 0.5, "code": "mg"}, "code", "0.5 mg"),
    ({"value": 40.0, "unit": "mg"}, "code", "40 mg"),
    ({"value": 2}, "code", "2"),
    ({"value": "40", "unit": "mg"}, "code", "40 mg"),
    ({"unit": "mg"}, "code", ""),
    ({"value": None, "unit": "mg"}, "sign", ""),
    ({}, "code", ""),
    (None, "joined", ""),
])
def test_quantity_text(quantity, style, text):
    assert quantity_text(quantity, style) == text


def test_quantity_text_writes_a_comparator_as_coded_by_default():
    assert quantity_text({"value": 90, "comparator": ">", "unit": "kg"}) == "> 90 kg"


@pytest.mark.parametrize(("value", "text"), [(2, "2"), (2.0, "2"), (0.5, "0.5"), (1500000, "1500000"),
                                             (0.0001, "0.0001"), (True, "True"), ("x", "x")])
def test_number_text(value, text):
    assert number_text(value) == text


# --- partial dates and instants ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "start", "end", "precision"), [
    ("2026", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "year"),
    ("2026-02", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), "month"),
    ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "month"),
    ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC), "day"),
    ("2026-10-02", datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC), "day"),
])
def test_a_partial_date_is_the_whole_period_it_names(text, start, end, precision):
    assert date_bounds(text) == (start, end, precision)


@pytest.mark.parametrize("text", ["2026-13", "2026-02-30", "2025-02-29", "2026-1", "26", "2026-10-02T08:00:00Z",
                                  "2026/10/02", "", " 2026", "9999", "9999-12", "9999-12-31"])
def test_what_is_not_a_partial_date(text):
    assert date_bounds(text) is None


def test_instants_are_written_in_utc_to_the_second():
    moment = datetime(2026, 10, 2, 10, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    assert format_instant(moment) == "2026-10-02T08:30:15Z"
    assert parse_instant("2026-10-02T08:30:15Z") == moment.replace(microsecond=0)
    assert parse_instant("2026-10-02T10:30:15+02:00") == moment.replace(microsecond=0)
    assert format_instant(parse_instant("2026-10-02T08:30:15Z")) == "2026-10-02T08:30:15Z"


@given(second=st.integers(0, 253402300799))  # up to 9999-12-31T23:59:59Z
def test_an_instant_of_a_whole_second_is_format_instant_s(second):
    assert second_instant(second) == format_instant(datetime.fromtimestamp(second, UTC))


def test_now_is_written_to_the_second():
    before = format_instant(datetime.now(UTC))
    now = now_instant()
    assert before <= now <= format_instant(datetime.now(UTC))
    assert parse_instant(now).tzinfo == UTC


@given(raw=st.binary(min_size=16, max_size=16))
def test_the_text_of_a_version_4_uuid_is_the_uuid_module_s(raw):
    assert uuid4_text(raw) == str(uuid.UUID(bytes=raw, version=4))


def test_random_uuids_are_version_4_and_differ():
    first, second = random_uuid(), random_uuid()
    assert uuid.UUID(first).version == 4 and str(uuid.UUID(first)) == first
    assert first != second


# --- schedules ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("frequency", "period", "unit", "once", "words"), [
    (1, 1, "d", False, "every day"),
    (1, 1, "d", True, "once a day"),
    (2, 1, "d", False, "twice a day"),
    (2, 1, "d", True, "twice a day"),
    (3, 1, "d", False, "3 times a day"),
    (1.5, 1, "d", False, "1.5 times a day"),
    (1, 2, "wk", True, "once every 2 weeks"),
    (1, 14, "d", False, "every 14 days"),
    (1, 3, "mo", False, "every 3 months"),
    (1, 1, "mo", False, "every month"),
    (1, 8, "h", False, "every 8 hours"),
    (1, 1, "wk", True, "once a week"),
    (3, 2, "d", True, "3 times every 2 days"),
    (1, 2.5, "d", False, "every 2.5 days"),
    (1, 1, "fortnight", False, "every fortnight"),
])
def test_schedule_words(frequency, period, unit, once, words):
    assert schedule_words(frequency, period, unit, once=once) == words


# --- OperationOutcome --------------------------------------------------------------------------------------

def test_an_operation_outcome_with_one_issue():
    assert operation_outcome("no such thing", "not-found") == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": "no such thing"}]}


def test_an_operation_outcome_with_several_issues_an_id_and_expressions():
    outcome = operation_outcome(resource_id="o1", issues=[
        outcome_issue("required", "structure", expression=["Patient.name[0]"]),
        outcome_issue("3 more errors are not listed", "too-costly"),
        outcome_issue("unknown parameter ignored", "not-supported", "warning")])
    assert list(outcome) == ["resourceType", "id", "issue"]
    assert outcome["id"] == "o1"
    assert outcome["issue"] == [
        {"severity": "error", "code": "structure", "diagnostics": "required", "expression": ["Patient.name[0]"]},
        {"severity": "error", "code": "too-costly", "diagnostics": "3 more errors are not listed"},
        {"severity": "warning", "code": "not-supported", "diagnostics": "unknown parameter ignored"}]


@pytest.mark.parametrize(("unit", "words"), [
    ("{pill}", "pill"), ("{ pill }", "pill"), ("{cells}/uL", "cells/uL"), ("mg{total}", "mg total"),
    ("mL/min/{1.73_m2}", "mL/min/1.73_m2"), ("mg", "mg"), ("", ""), (None, ""), ("{}", ""),
])
def test_unit_words_drop_the_braces_of_a_ucum_annotation(unit, words):
    assert unit_words(unit) == words
