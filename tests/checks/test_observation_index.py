"""The call's observation index (``ObservationIndex``: observations by code, dated once, each value set selected
once) gives the same answers as reading every observation one by one; and a monitoring plan's schedule kept with
the knowledge is the schedule read from the plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhirsvc.checks.config import (
    VS_BODY_TEMPERATURE,
    VS_BREASTFEEDING_STATUS,
    VS_NEUTROPHIL_COUNT,
    VS_PREGNANCY_STATUS,
    value_set_url,
)
from fhirsvc.checks.reading.observations import (
    ObservationIndex,
    Reading,
    Threshold,
    newest_coded,
    newest_measurement,
    observation_when,
    observations_of,
    read_coded,
    read_quantity,
    readings_within,
)
from fhirsvc.checks.reading.windows import Window
from fhirsvc.drugmodel.profile import drug_profiles
from fhirsvc.drugmodel.schedule import monitoring_schedule, plan_schedule
from fhirsvc.drugmodel.units import cells_10e9_per_l, celsius, kidney_ml_per_min
from fhirsvc.terminology import LOINC, SNOMED, ValueSetMatcher
from tests.checks.conftest import NOW

VALUE_SETS = [VS_NEUTROPHIL_COUNT, VS_BODY_TEMPERATURE, VS_PREGNANCY_STATUS, VS_BREASTFEEDING_STATUS,
              value_set_url("kidney-function"), value_set_url("body-weight")]

# Codes of the value sets, codes of none, a name only (text, or a display beside a local code), odd shapes.
CODES: list[Any] = [
    {"coding": [{"system": LOINC, "code": "751-8"}]},
    {"coding": [{"system": LOINC, "code": "751-8", "display": "Neutrophils"}]},
    {"coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}]},
    {"coding": [{"system": SNOMED, "code": "386725007"}]},
    {"coding": [{"system": LOINC, "code": "35591-7"}, {"system": LOINC, "code": "33914-3"}]},
    {"coding": [{"system": LOINC, "code": "29463-7"}]},
    {"coding": [{"system": LOINC, "code": "82810-3"}]},
    {"coding": [{"system": "urn:local", "code": "T1", "display": "body temperature"}]},
    {"text": "ANC"},
    {"text": "eGFR " + "x" * 300},  # too long a text to be remembered: a code of its own
    {"coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}]},
    {"coding": "not a list"},
    "not an object",
    None,
]
TIMES = ["2026-11-20T10:00:00Z", "2026-11-20T12:00:00+02:00", "2026-11-20T10:00:00", "2026-11-24T07:30:00-05:00",
         "2026-11-20", "2026-11", "2026", "2026-11-24T09:00:00.5Z", "not a date", "", 20261120]
STATUSES = ["final", "amended", "corrected", "preliminary", "entered-in-error", "cancelled", None, 7]
VALUES: list[dict[str, Any]] = [
    {"valueQuantity": {"value": 1.2, "unit": "10*9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"}},
    {"valueQuantity": {"value": 38.4, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"}},
    {"valueQuantity": {"value": 25, "unit": "mL/min", "system": "http://unitsofmeasure.org", "code": "mL/min"}},
    {"valueQuantity": {"value": 0.5, "comparator": "<", "unit": "10*9/L"}},
    {"valueQuantity": {"value": 4, "unit": "%"}},
    {"valueString": "specimen clotted"},
    {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "77386006"}]}},
    {"valueBoolean": True},
    {},
]


@st.composite
def observations(draw) -> list[dict[str, Any]]:
    found = []
    for number in range(draw(st.integers(0, 14))):
        obs: dict[str, Any] = {"resourceType": "Observation", "id": f"o{number}"}
        status = draw(st.sampled_from(STATUSES))
        if status is not None:
            obs["status"] = status
        code = draw(st.sampled_from(CODES))
        if code is not None:
            obs["code"] = code
        where = draw(st.sampled_from(["effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued", None]))
        if where == "effectivePeriod":
            obs[where] = {draw(st.sampled_from(["start", "end"])): draw(st.sampled_from(TIMES))}
        elif where is not None:
            obs[where] = draw(st.sampled_from(TIMES))
        obs.update(draw(st.sampled_from(VALUES)))
        found.append(obs)
    return found


def plainly_of(observations: list[dict[str, Any]], matcher: ValueSetMatcher) -> list[dict[str, Any]]:
    """The value set's observations read one by one: not entered-in-error or cancelled, a code in the value set,
    dated; newest first, at the same time in sent order."""
    rows = []
    for position, obs in enumerate(observations):
        status, code = obs.get("status"), obs.get("code")
        if (isinstance(status, str) and status in ("entered-in-error", "cancelled")) or not isinstance(code, Mapping):
            continue
        when = observation_when(obs)
        if when is not None and matcher.matches_concept(code):
            rows.append((when.start, -position, obs))
    rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
    return [obs for _, _, obs in rows]


def plainly_newest(readings: list[Reading], window: Window | None) -> tuple[str, Reading | None]:
    """How the newest measurement stands, read from every reading: found, stale, unreadable or missing."""
    if not readings:
        return "missing", None
    readable = next((r for r in readings if r.readable), None)
    newest = readings[0]

    def recent(reading: Reading) -> bool:
        return window is None or window.contains(reading.when, NOW)

    if readable is not None and recent(readable):
        return "found", readable
    if not newest.readable and (readable is None or recent(newest)):
        return "unreadable", newest
    return "stale", readable


TESTS = {VS_NEUTROPHIL_COUNT: (cells_10e9_per_l, Threshold.compare("<", 1.5, "10*9/L")),
         VS_BODY_TEMPERATURE: (celsius, Threshold.compare(">=", 38.0, "Cel")),
         value_set_url("kidney-function"): (kidney_ml_per_min, Threshold.compare("<", 30, "mL/min"))}


@settings(max_examples=300, deadline=None)
@given(observations(), st.lists(st.sampled_from(VALUE_SETS), min_size=1, max_size=8),
       st.sampled_from([None, Window(5), Window(400), Window(72, "hour")]))
def test_the_index_selects_and_reads_as_one_by_one(knowledge, found, asked, window):
    index = ObservationIndex(found)  # one index asked for several value sets, some twice, in any order
    for url in asked:
        matcher = knowledge.value_set(url)
        plain = plainly_of(found, matcher)
        assert [id(o) for o in observations_of(index, matcher)] == [id(o) for o in plain]
        convert, test = TESTS.get(url, (kidney_ml_per_min, None))
        measure = newest_measurement(index, matcher, NOW, convert, "u", window, test)
        status, reading = plainly_newest([read_quantity(o, convert, test) for o in plain], window)
        assert (measure.status, measure.reading) == (status, reading)
        coded = newest_coded(index, matcher, NOW, window)
        assert (coded.status, coded.reading) == plainly_newest([read_coded(o) for o in plain], window)
        if window is not None:
            assert readings_within(index, matcher, NOW, window, convert, test) == [
                read_quantity(o, convert, test) for o in plain if window.contains(observation_when(o), NOW, "last")]


@settings(max_examples=200, deadline=None)
@given(observations(), st.sampled_from([None, Window(5), Window(400)]))
def test_the_newest_readable_count_is_the_newest_of_the_readable_ones(knowledge, found, window):
    """``readable_only`` (patient-view) gives what the measurement of the readable counts alone gives."""
    matcher = knowledge.value_set(VS_NEUTROPHIL_COUNT)
    convert, test = TESTS[VS_NEUTROPHIL_COUNT]
    readable = [o for o in plainly_of(found, matcher) if read_quantity(o, convert, test).readable]
    assert newest_measurement(ObservationIndex(found), matcher, NOW, convert, "10*9/L", window, test,
                              readable_only=True) == newest_measurement(readable, matcher, NOW, convert, "10*9/L",
                                                                        window, test)


def test_a_plan_schedule_is_read_once_per_knowledge_and_is_the_plan_read(knowledge):
    plans = [plan for drug in drug_profiles(knowledge) for plan in drug.monitoring]
    assert plans
    for plan in plans:
        kept = plan_schedule(knowledge, plan)
        assert kept == monitoring_schedule(plan)
        assert plan_schedule(knowledge, plan) is kept  # kept with the knowledge, not read again


def test_a_plan_that_is_not_the_knowledges_is_read_as_it_is(knowledge):
    plan = next(plan for drug in drug_profiles(knowledge) for plan in drug.monitoring)
    plan_schedule(knowledge, plan)
    changed = {**plan, "action": plan["action"][:1]}  # same id, other actions: not the knowledge's resource
    assert plan_schedule(knowledge, changed) == monitoring_schedule(changed) != monitoring_schedule(plan)

