"""Patient data selection (table-driven): age, active conditions and allergies, the newest usable
measurement (below / at / above, missing, stale, unit variants), medication status and dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhirsvc.canonical import value_set_url
from fhirsvc.checks.config import WEIGHT_MAX_AGE
from fhirsvc.checks.reading.age import age_years
from fhirsvc.checks.reading.conditions import is_active_allergy, is_active_condition
from fhirsvc.checks.reading.medications import is_current, is_live_draft, is_past, medication_end, medication_start
from fhirsvc.checks.reading.observations import newest_measurement
from fhirsvc.checks.reading.windows import Window, parse_datetime
from fhirsvc.drugmodel.units import (
    cells_10e9_per_l,
    celsius,
    duration_days,
    kidney_ml_per_min,
    weight_kg,
)
from tests.checks.conftest import NOW, allergy, birth_date, condition, med_request, observation, stopped_med

KIDNEY_MAX_AGE = Window(180, "day", "results")  # the shipped default (rule anakinra-kidney-dosing)


@pytest.mark.parametrize(("value", "end", "expected"), [
    ("2026-10-02", False, datetime(2026, 10, 2, tzinfo=UTC)),
    ("2026-10-02", True, datetime(2026, 10, 3, tzinfo=UTC)),
    ("2026-10", False, datetime(2026, 10, 1, tzinfo=UTC)),
    ("2026-12", True, datetime(2027, 1, 1, tzinfo=UTC)),
    ("2026", True, datetime(2027, 1, 1, tzinfo=UTC)),
    ("2026-10-02T08:30:00Z", False, datetime(2026, 10, 2, 8, 30, tzinfo=UTC)),
    ("2026-10-02T08:30:00+02:00", False, datetime(2026, 10, 2, 6, 30, tzinfo=UTC)),
    ("2026-10-02T08:30:00", False, datetime(2026, 10, 2, 8, 30, tzinfo=UTC)),
    ("not a date", False, None),
    (None, False, None),
], ids=["date", "date-end", "month", "month-end", "year-end", "instant-z", "offset", "naive", "garbage", "none"])
def test_parse_datetime(value, end, expected):
    assert parse_datetime(value, end=end) == expected


@pytest.mark.parametrize(("birth", "age"), [
    pytest.param(birth_date(18, 0), 18, id="18th-birthday-today"),
    pytest.param(birth_date(18, -1), 17, id="18th-birthday-tomorrow"),
    pytest.param(birth_date(65, -1), 64, id="65th-birthday-tomorrow-is-64"),
    pytest.param(birth_date(65, 0), 65, id="65th-birthday-today"),
    pytest.param("1950", 76, id="year-only-counts-from-january"),
    pytest.param(None, None, id="no-birth-date"),
])
def test_age(birth, age):
    patient = {"resourceType": "Patient", "birthDate": birth} if birth else {"resourceType": "Patient"}
    assert age_years(patient, NOW) == age


@pytest.mark.parametrize(("clinical", "verification", "active"), [
    ("active", None, True), ("recurrence", "confirmed", True), ("relapse", "provisional", True),
    (None, None, True), ("inactive", None, False), ("resolved", "confirmed", False), ("remission", None, False),
    ("active", "refuted", False), ("active", "entered-in-error", False),
])
def test_condition_filter(clinical, verification, active):
    assert is_active_condition(condition("431857002", clinical=clinical, verification=verification)) is active


def test_abated_condition_without_status_is_not_active():
    cond = condition("431857002", clinical=None)
    cond["abatementDateTime"] = "2025-01-01"
    assert not is_active_condition(cond)


@pytest.mark.parametrize(("clinical", "verification", "active"), [
    ("active", "confirmed", True), ("active", "unconfirmed", True), (None, None, True),
    ("inactive", "confirmed", False), ("resolved", None, False), ("active", "refuted", False),
    ("active", "entered-in-error", False),
])
def test_allergy_filter(clinical, verification, active):
    assert is_active_allergy(allergy(text="latex", clinical=clinical, verification=verification)) is active


@pytest.mark.parametrize(("value", "unit", "kg"), [
    (70, "kg", 70), (70000, "g", 70), (154.3234, "[lb_av]", 70), (154.3234, "lb", 70), (70, "stone", None)])
def test_weight_units(value, unit, kg):
    result = weight_kg(value, unit)
    assert result == (pytest.approx(kg, rel=1e-4) if kg is not None else None)


@pytest.mark.parametrize(("value", "unit", "ml_min"), [
    (29, "mL/min", 29), (29, "mL/min/{1.73_m2}", 29), (29, "mL/min/1.73m2", 29), (0.5, "mL/s", 30),
    (29, "mg/dL", None)])
def test_kidney_units(value, unit, ml_min):
    assert kidney_ml_per_min(value, unit) == ml_min


@pytest.mark.parametrize(("value", "unit", "giga"), [
    pytest.param(1.49, "10*9/L", 1.49, id="10*9/L"),
    pytest.param(1.5, "10^9/L", 1.5, id="10^9/L"),
    pytest.param(1.49, "10*3/uL", 1.49, id="10*3/uL"),
    pytest.param(1.49, "K/uL", 1.49, id="K/uL"),
    pytest.param(1.49, "G/L", 1.49, id="giga-per-litre"),
    pytest.param(1490, "/uL", 1.49, id="per-uL"),
    pytest.param(1500, "/mm3", 1.5, id="per-mm3"),
    pytest.param(1490, "cells/\u00b5L", 1.49, id="cells-per-micro-litre"),
    pytest.param(45, "%", None, id="percent-not-usable"),
    pytest.param(1.49, "g/L", None, id="grams-per-litre-is-not-a-count"),
])
def test_neutrophil_units(value, unit, giga):
    result = cells_10e9_per_l(value, unit)
    assert result == (pytest.approx(giga) if giga is not None else None)


@pytest.mark.parametrize(("value", "unit", "cel"), [
    (38.0, "Cel", 38.0), (38.0, "°C", 38.0), (100.4, "[degF]", 38.0), (100.4, "°F", 38.0), (311, "K", None)])
def test_temperature_units(value, unit, cel):
    result = celsius(value, unit)
    assert result == (pytest.approx(cel) if cel is not None else None)


@pytest.mark.parametrize(("value", "unit", "days"), [
    (3, "mo", 91.3125), (3, "months", 91.3125), (30, "d", 30), (72, "h", 3), (1, "wk", 7), (1, "a", 365.25),
    (1, "fortnight", None)])
def test_durations(value, unit, days):
    assert duration_days(value, unit) == days


@pytest.fixture(scope="module")
def weight_vs(knowledge):
    return knowledge.value_set(value_set_url("body-weight"))


@pytest.fixture(scope="module")
def kidney_vs(knowledge):
    return knowledge.value_set(value_set_url("kidney-function"))


@pytest.mark.parametrize(("observations", "status", "value"), [
    pytest.param([observation("29463-7", 20, "kg", 10)], "found", 20, id="recent"),
    pytest.param([observation("3141-9", 20, "kg", 10)], "found", 20, id="measured-weight-code"),
    pytest.param([observation("29463-7", 20, "kg", 90)], "found", 20, id="at-90-days"),
    pytest.param([observation("29463-7", 20, "kg", 90, hours=1)], "found", 20, id="90-days-in-whole-days"),
    pytest.param([observation("29463-7", 20, "kg", 91)], "stale", 20, id="91-days"),
    pytest.param([observation("29463-7", 20, "kg", 120)], "stale", 20, id="stale"),
    pytest.param([observation("29463-7", 20, "kg", 100), observation("29463-7", 22, "kg", 5)], "found", 22,
                 id="newest-wins"),
    pytest.param([observation("29463-7", 44.0925, "[lb_av]", 5)], "found", 20, id="pounds"),
    pytest.param([observation("29463-7", 20, "stone", 5)], "unreadable", None, id="unknown-unit"),
    pytest.param([observation("29463-7", 20, "stone", 5), observation("29463-7", 21, "kg", 10)], "found", 21,
                 id="newest-usable"),
    pytest.param([observation("29463-7", 20, "kg", 5, status="entered-in-error")], "missing", None,
                 id="entered-in-error-ignored"),
    pytest.param([observation("8302-2", 120, "cm", 5)], "missing", None, id="other-code"),
    pytest.param([], "missing", None, id="none"),
])
def test_newest_weight(weight_vs, observations, status, value):
    measure = newest_measurement(observations, weight_vs, NOW, weight_kg, "kg", WEIGHT_MAX_AGE)
    assert measure.status == status
    assert measure.value == (pytest.approx(value, rel=1e-4) if value is not None else None)


@pytest.mark.parametrize(("observations", "status", "value"), [
    pytest.param([observation("35591-7", 22, "mL/min", 30)], "found", 22, id="crcl"),
    pytest.param([observation("62238-1", 28, "mL/min/{1.73_m2}", 30)], "found", 28, id="egfr"),
    pytest.param([observation("98979-8", 28, "mL/min/{1.73_m2}", 180)], "found", 28, id="at-180-days"),
    pytest.param([observation("98979-8", 28, "mL/min/{1.73_m2}", 181)], "stale", 28, id="181-days"),
    pytest.param([observation("2160-0", 3.1, "mg/dL", 3)], "missing", None, id="serum-creatinine-is-not-clearance"),
])
def test_newest_kidney_result(kidney_vs, observations, status, value):
    measure = newest_measurement(observations, kidney_vs, NOW, kidney_ml_per_min, "mL/min", KIDNEY_MAX_AGE)
    assert (measure.status, measure.value) == (status, value)


@pytest.mark.parametrize(("status", "current", "past"), [
    ("active", True, False), ("on-hold", True, False), ("stopped", False, True), ("completed", False, True),
    ("draft", False, False), ("cancelled", False, False), ("entered-in-error", False, False)])
def test_medication_status(status, current, past):
    res = med_request(status=status)
    assert (is_current(res), is_past(res)) == (current, past)


@pytest.mark.parametrize(("resource", "live"), [
    ({"resourceType": "MedicationRequest", "status": "draft"}, True),
    ({"resourceType": "MedicationRequest", "status": "cancelled"}, False),
    ({"resourceType": "ServiceRequest", "status": "draft"}, True),
    ({"resourceType": "ServiceRequest", "status": "revoked"}, False),
    ({"resourceType": "Immunization", "status": "completed"}, True),
    ({"resourceType": "Immunization", "status": "not-done"}, False),
    ({"resourceType": "Immunization", "status": "entered-in-error"}, False),
])
def test_live_draft(resource, live):
    assert is_live_draft(resource) is live


@pytest.mark.parametrize(("resource", "end"), [
    pytest.param(stopped_med("m", {}, "2026-08-27"), datetime(2026, 8, 28, tzinfo=UTC), id="bounds-period-end"),
    pytest.param(stopped_med("m", {}, "2026-08-27", via="validity"), datetime(2026, 8, 28, tzinfo=UTC),
                 id="validity-period-end"),
    pytest.param(stopped_med("m", {}, "2026-08-27T10:00:00Z"), datetime(2026, 8, 27, 10, tzinfo=UTC),
                 id="end-instant"),
    pytest.param(stopped_med("m", {}, None), None, id="unknown"),
])
def test_medication_end(resource, end):
    assert medication_end(resource) == end


def test_bounds_period_end_wins_over_validity_period():
    res = stopped_med("m", {}, "2026-08-01")
    res["dispenseRequest"] = {"validityPeriod": {"end": "2026-10-01"}}
    assert medication_end(res) == datetime(2026, 8, 2, tzinfo=UTC)


@pytest.mark.parametrize(("extra", "start"), [
    ({"authoredOn": "2026-09-01"}, datetime(2026, 9, 1, tzinfo=UTC)),
    ({"authoredOn": "2026-09-01", "dispenseRequest": {"validityPeriod": {"start": "2026-08-15"}}},
     datetime(2026, 8, 15, tzinfo=UTC)),
    ({}, None),
])
def test_medication_start(extra, start):
    assert medication_start(med_request(status="active", **extra)) == start


def test_start_from_bounds_period():
    res = med_request(status="active", authoredOn="2026-01-01")
    res["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-03-01"}
    assert medication_start(res) == datetime(2026, 3, 1, tzinfo=UTC)
    assert NOW - medication_start(res) > timedelta(days=200)
