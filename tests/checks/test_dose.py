"""Dose arithmetic: administrations per day, dose units, the daily dose (table-driven)."""

from __future__ import annotations

import pytest

from fhirsvc.checks.reading.daily_dose import daily_dose, describe_per_day, dose_quantity, to_mg, unit_kind
from fhirsvc.drugmodel.profile import drug_profiles
from fhirsvc.drugmodel.timing import administrations_per_day, timing_code_per_day
from tests.checks.conftest import dosage, med_request

MG_PER_ML = 100 / 0.67  # the test's own strength, for the unit tests that do not read the knowledge
MG_PER_SYRINGE = 100.0


@pytest.mark.parametrize(("timing", "per_day"), [
    pytest.param({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, 1, id="once-a-day"),
    pytest.param({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, 2, id="twice-a-day"),
    pytest.param({"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}, 0.5, id="every-2-days"),
    pytest.param({"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}, 2, id="every-12-hours"),
    pytest.param({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, 3, id="every-8-hours"),
    pytest.param({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, 1 / 7, id="weekly"),
    pytest.param({"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}}, 3 / 7, id="three-a-week"),
    pytest.param({"repeat": {"period": 1, "periodUnit": "d"}}, 1, id="frequency-defaults-to-1"),
    pytest.param({"repeat": {"frequency": 1, "frequencyMax": 2, "period": 1, "periodUnit": "d"}}, 2,
                 id="frequency-max-counts"),
    pytest.param({"repeat": {"timeOfDay": ["08:00:00", "20:00:00"]}}, 2, id="times-of-day"),
    pytest.param({"code": {"coding": [{"code": "QD"}]}}, 1, id="code-QD"),
    pytest.param({"code": {"coding": [{"code": "BID"}]}}, 2, id="code-BID"),
    pytest.param({"code": {"coding": [{"code": "TID"}]}}, 3, id="code-TID"),
    pytest.param({"code": {"coding": [{"code": "QID"}]}}, 4, id="code-QID"),
    pytest.param({"code": {"coding": [{"code": "QOD"}]}}, 0.5, id="code-QOD"),
    pytest.param({"code": {"coding": [{"code": "Q2D"}]}}, 0.5, id="code-Q2D"),
    pytest.param({"code": {"coding": [{"code": "Q8H"}]}}, 3, id="code-Q8H"),
    pytest.param({"code": {"text": "bid"}}, 2, id="code-text-lowercase"),
    pytest.param({"code": {"coding": [{"code": "WK"}]}}, 1 / 7, id="code-WK"),
    pytest.param({"repeat": {"frequency": 1, "period": 1, "periodUnit": "fortnight"}}, None, id="unknown-unit"),
    pytest.param({"repeat": {"frequency": 1}}, None, id="no-period"),
    pytest.param({"code": {"coding": [{"code": "PRN"}]}}, None, id="unknown-code"),
    pytest.param({}, None, id="empty-timing"),
    pytest.param(None, None, id="no-timing"),
])
def test_administrations_per_day(timing, per_day):
    result = administrations_per_day(timing)
    if per_day is None:
        assert result is None
    else:
        assert result == pytest.approx(per_day)


@pytest.mark.parametrize(("code", "per_day"), [("QD", 1), ("q.o.d.", 0.5), ("Q3D", 1 / 3), ("Q1W", 1 / 7),
                                               ("Q6H", 4), ("STAT", None), (None, None)])
def test_timing_codes(code, per_day):
    result = timing_code_per_day(code)
    assert result == (pytest.approx(per_day) if per_day is not None else None)


@pytest.mark.parametrize(("unit", "kind"), [
    ("mg", "mg"), ("MG", "mg"), ("milligrams", "mg"), ("mL", "mL"), ("ML", "mL"), ("ml", "mL"),
    ("syringe", "syringe"), ("Syringes", "syringe"), ("{syringe}", "syringe"), ("prefilled syringe", "syringe"),
    ("g", "mg"), ("ug", "mg"), ("mcg", "mg"), ("\u00b5g", "mg"), ("micrograms", "mg"), ("Gram", "mg"),
    ("mg/kg", None), ("tablet", None), ("{pill}", None), ("kg", None), ("", None), (None, None),
])
def test_accepted_dose_units(unit, kind):
    assert unit_kind(unit) == kind


@pytest.mark.parametrize(("quantity", "mg"), [
    pytest.param({"value": 100, "unit": "mg"}, 100, id="mg"),
    pytest.param({"value": 100, "code": "mg", "unit": "milligram"}, 100, id="ucum-code-first"),
    pytest.param({"value": 0.67, "unit": "mL"}, 100, id="0.67-mL-is-100-mg"),
    pytest.param({"value": 1, "unit": "mL"}, 149.253731, id="1-mL"),
    pytest.param({"value": 1, "unit": "syringe"}, 100, id="one-syringe"),
    pytest.param({"value": 2, "unit": "syringes"}, 200, id="two-syringes"),
    pytest.param({"value": 0.2, "unit": "g"}, 200, id="0.2-g-is-200-mg"),
    pytest.param({"value": 200000, "unit": "mcg"}, 200, id="200000-mcg-is-200-mg"),
    pytest.param({"value": 200000, "code": "ug", "unit": "microgram"}, 200, id="ucum-ug"),
    pytest.param({"value": 100000, "unit": "\u00b5g"}, 100, id="micro-sign"),
    pytest.param({"value": 0.1, "unit": "grams"}, 100, id="grams-spelled-out"),
    pytest.param({"value": 1, "unit": "tablet"}, None, id="other-unit"),
    pytest.param({"value": 1, "unit": "{pill}", "code": "{pill}"}, None, id="ucum-annotation"),
    pytest.param({"value": 100}, None, id="no-unit"),
    pytest.param({"unit": "mg"}, None, id="no-value"),
    pytest.param({"value": -1, "unit": "mg"}, None, id="negative"),
    pytest.param(None, None, id="none"),
])
def test_dose_in_mg(quantity, mg):
    result = to_mg(quantity, MG_PER_ML, MG_PER_SYRINGE)
    assert result == (pytest.approx(mg) if mg is not None else None)


@pytest.mark.parametrize(("dosage_json", "value"), [
    pytest.param({"doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}]}, 100, id="array"),
    pytest.param({"doseAndRate": {"doseQuantity": {"value": 50, "unit": "mg"}}}, 50, id="object"),
    pytest.param({"doseQuantity": {"value": 75, "unit": "mg"}}, 75, id="stu3-dose-on-dosage"),
    pytest.param({"doseAndRate": [
        {"type": {"coding": [{"code": "calculated"}]}, "doseQuantity": {"value": 1, "unit": "mL"}},
        {"type": {"coding": [{"code": "ordered"}]}, "doseQuantity": {"value": 100, "unit": "mg"}}]}, 100,
        id="ordered-wins"),
    pytest.param({"doseAndRate": [{"doseRange": {"low": {"value": 1}}}]}, None, id="range-only"),
    pytest.param({}, None, id="none"),
])
def test_dose_quantity_shapes(dosage_json, value):
    quantity = dose_quantity(dosage_json)
    assert (quantity or {}).get("value") == value


@pytest.fixture(scope="module")
def drug(knowledge):
    return next(d for d in drug_profiles(knowledge) if d.product_value_set)


def test_strength_and_syringe_content_come_from_the_knowledge(drug):
    assert drug.mg_per_ml == pytest.approx(100 / 0.67)
    assert drug.mg_per_syringe == pytest.approx(100)


@pytest.mark.parametrize(("dosages", "daily", "problem"), [
    pytest.param([dosage(100, "mg")], 100, None, id="100-mg-daily"),
    pytest.param([dosage(101, "mg")], 101, None, id="101-mg-daily"),
    pytest.param([dosage(50, "mg", freq=2)], 100, None, id="50-mg-twice"),
    pytest.param([dosage(0.67, "mL")], 100, None, id="0.67-mL-daily"),
    pytest.param([dosage(1, "mL")], 149.253731, None, id="1-mL-daily"),
    pytest.param([dosage(1, "syringe", code="BID")], 200, None, id="syringe-BID"),
    pytest.param([dosage(100, "mg", period=2)], 50, None, id="every-other-day"),
    pytest.param([dosage(100, "mg", period_unit="wk")], 100 / 7, None, id="weekly"),
    pytest.param([dosage(50, "mg"), dosage(50, "mg")], 100, None, id="two-instructions-add-up"),
    pytest.param([{**dosage(100, "mg"), "sequence": 1}, {**dosage(200, "mg"), "sequence": 2}], 200, None,
                 id="sequential-instructions-largest"),
    pytest.param([dosage(1, "tablet")], None, "unit 'tablet' cannot be converted to mg", id="other-unit"),
    pytest.param([dosage(None)], None, "no dose quantity", id="no-dose"),
    pytest.param([dosage(100, "mg", timing={})], None, "no readable frequency", id="no-frequency"),
    pytest.param([], None, "no dosage instruction", id="no-instruction"),
])
def test_daily_dose(drug, dosages, daily, problem):
    result = daily_dose(med_request(dosages=dosages), drug.mg_per_ml, drug.mg_per_syringe)
    assert result.problem == problem
    assert result.daily_mg == (pytest.approx(daily) if daily is not None else None)
    assert result.readable == (problem is None)


@pytest.mark.parametrize(("per_day", "text"), [(1, "every day"), (2, "twice a day"), (0.5, "every other day"),
                                               (1 / 3, "every 3 days"), (1 / 7, "once a week"), (3, "3 times a day"),
                                               (6, "every 4 hours"), (None, "at an unreadable frequency")])
def test_frequency_words(per_day, text):
    assert describe_per_day(per_day) == text
