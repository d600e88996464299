"""How the checks read patient data (docs/reading-patient-data.md), table by table:

1. every measurement x readable / unreadable (unit, text, status, dataAbsentReason) / absent / too old;
2. every history, screening and exposure range x each condition check, and clinical statuses;
3. every window at its limit - 1, limit and limit + 1, with date-only and date-time values.

Each table row runs the real checks over the shipped knowledge and states the expected findings: the rule,
whether it is an "Unable to check" finding, and (where the rule is the point of the row) a phrase of its text.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirsvc.checks.config import WEIGHT_MAX_AGE
from fhirsvc.checks.reading.conditions import condition_in
from fhirsvc.checks.reading.observations import (
    Threshold,
    observation_time,
    observation_when,
    read_coded,
    read_quantity,
)
from fhirsvc.checks.reading.windows import Window, parse_when, when_start
from fhirsvc.drugmodel.units import cells_10e9_per_l, kidney_ml_per_min
from fhirsvc.terminology import ICD10CM, LOINC, SNOMED
from tests.checks.conftest import (
    ANAKINRA_RXNORM,
    METHOTREXATE,
    NOMID,
    NOW,
    RA,
    RECENT_ANC,
    RECENT_KIDNEY,
    concept,
    condition,
    context,
    current_med,
    date_ago,
    dosage,
    med_request,
    observation,
    patient,
    quiet,
    run,
    stopped_med,
    when,
)

# the shipped defaults of the two windows a site may adjust (the rule registry's site-setting extensions)
KIDNEY_MAX_AGE = Window(180, "day", "results")
TEMPERATURE_WINDOW = Window(72, "hour", "temperatures")

# --- 1. measurements: readable, unreadable, absent, too old ----------------------------------------------------

PREGNANT = concept({"system": LOINC, "code": "LA15173-0", "display": "Pregnant"})


def unreadable(obs: dict, how: str) -> dict:
    """The observation made unreadable in one of the ways real EHRs send."""
    obs = {**obs, "id": f"{obs['id']}-{how}"}
    if how == "unit":  # a count as a percentage, a weight in stone, a clearance in mg/dL, a temperature in K
        code = obs["code"]["coding"][0]["code"]
        unit = {"751-8": "%", "29463-7": "[stone_av]", "35591-7": "mg/dL", "8310-5": "K"}[code]
        obs["valueQuantity"] = {**obs["valueQuantity"], "unit": unit, "code": unit}
    elif how == "text":
        obs.pop("valueQuantity", None)
        obs.pop("valueCodeableConcept", None)
        obs["valueString"] = "not reported: specimen clotted"
    elif how == "preliminary":
        obs["status"] = "preliminary"
    elif how == "data-absent":
        obs.pop("valueQuantity", None)
        obs.pop("valueCodeableConcept", None)
        obs["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                               "code": "error", "display": "Error"}]}
    return obs


def weight_case(obs: list[dict]) -> dict:
    """A NOMID child (20 kg when weighed), 160 mg a day (8 mg/kg: at the limit, no card when the weight is read)."""
    return {"drafts": [med_request(dosages=[dosage(160)])], "pat": patient(6),
            **quiet(conditions=[NOMID], observations=[*obs, RECENT_KIDNEY, RECENT_ANC])}


def kidney_case(obs: list[dict]) -> dict:
    return {"drafts": [med_request()], **quiet(observations=[*obs, RECENT_ANC])}


def temperature_case(obs: list[dict]) -> dict:
    return {"drafts": [med_request()], **quiet(observations=[*obs, RECENT_KIDNEY, RECENT_ANC])}


def count_case(obs: list[dict]) -> dict:
    return {"drafts": [med_request()], **quiet(observations=[*obs, RECENT_KIDNEY])}


def pregnancy_case(obs: list[dict]) -> dict:
    return {"drafts": [med_request()], **quiet(observations=[*obs, RECENT_KIDNEY, RECENT_ANC])}


WEIGHT = observation("29463-7", 20, "kg", 5, oid="wt")
CRCL = observation("35591-7", 80, "mL/min", 10, oid="crcl")
FEVER = observation("8310-5", 38.5, "Cel", hours=6, oid="temp")
LOW_ANC = observation("751-8", 1.2, "10*9/L", 3, oid="anc")
STATUS = observation("82810-3", None, None, 10, oid="preg", value_concept=PREGNANT)

# (measurement, case builder, readable observation, what a readable one gives, a too-old observation, what
# that gives); an unreadable one always gives the rule's "Unable to check" finding (and for the count, #14's
# due card too); "absent" gives what the contract says for no data.
MEASUREMENTS: list[tuple[str, Any, dict, set, dict, set, set]] = [
    ("body weight", weight_case, WEIGHT, set(), observation("29463-7", 20, "kg", 95, oid="wt"),
     {("anakinra-max-dose-for-weight", True)}, {("anakinra-max-dose-for-weight", True)}),
    ("kidney function", kidney_case, CRCL, set(), observation("35591-7", 80, "mL/min", 200, oid="crcl"),
     {("anakinra-kidney-dosing", True)}, {("anakinra-kidney-dosing", True)}),
    ("body temperature", temperature_case, FEVER, {("anakinra-active-infection", False)},
     observation("8310-5", 38.5, "Cel", 4, oid="temp"), set(), set()),
    ("neutrophil count", count_case, LOW_ANC, {("anakinra-neutropenia", False)},
     observation("751-8", 1.2, "10*9/L", 200, oid="anc"),
     {("anakinra-neutropenia", False), ("anakinra-blood-count-monitoring", False)},
     {("anakinra-blood-count-monitoring", False)}),
    ("pregnancy status", pregnancy_case, STATUS, {("anakinra-pregnancy", False)},
     observation("82810-3", None, None, 300, oid="preg", value_concept=PREGNANT), set(), set()),
]
UNREADABLE_RULE = {"body weight": {("anakinra-max-dose-for-weight", True)},
                   "kidney function": {("anakinra-kidney-dosing", True)},
                   "body temperature": {("anakinra-active-infection", True)},
                   "neutrophil count": {("anakinra-neutropenia", True), ("anakinra-blood-count-monitoring", False)},
                   "pregnancy status": {("anakinra-pregnancy", True)}}


def _cases() -> list[Any]:
    params = []
    for name, case, readable, gives, old, old_gives, absent_gives in MEASUREMENTS:
        params.append(pytest.param(case([readable]), gives, None, id=f"{name}-readable"))
        for how in ("unit", "text", "preliminary", "data-absent"):
            if how == "unit" and name == "pregnancy status":
                continue
            params.append(pytest.param(case([unreadable(readable, how)]), UNREADABLE_RULE[name], how,
                                       id=f"{name}-unreadable-{how}"))
        params.append(pytest.param(case([]), absent_gives, None, id=f"{name}-absent"))
        params.append(pytest.param(case([old]), old_gives, None, id=f"{name}-too-old"))
        # the newest unreadable, an older readable one recent enough: the readable one decides
        params.append(pytest.param(case([unreadable({**readable, "id": "newer"}, "text") | {
            "effectiveDateTime": when(0, 1)}, readable]), gives, None, id=f"{name}-newest-unreadable-older-decides"))
    return params


def outcome(findings) -> set[tuple[str, bool]]:
    return {(f.rule, f.unable) for f in findings}


def check(knowledge, case: dict) -> list:
    """Run the checks on a case (its ``drafts`` and the context's keyword arguments)."""
    case = dict(case)
    return run(knowledge, context(*case.pop("drafts"), **case))


@pytest.mark.parametrize(("case", "expected", "how"), _cases())
def test_measurement_states(knowledge, case, expected, how):
    found = check(knowledge, case)
    assert outcome(found) == expected
    if how is not None:  # an unreadable result is named: what was found and its date
        unable = next(f for f in found if f.unable)
        named = {"unit": ("%", "stone", "mg/dL", "K"), "text": ("specimen clotted",), "preliminary": ("preliminary",),
                 "data-absent": ("Error",)}[how]
        assert any(n in unable.detail for n in named), unable.detail
        assert "Unable to check" in unable.summary and len(unable.summary) < 140


def test_an_unreadable_count_is_not_a_count_for_monitoring(knowledge):
    """#14 counts only readable counts: a percentage 3 days ago leaves the baseline count due."""
    found = check(knowledge, count_case([unreadable(RECENT_ANC, "unit")]))
    due = next(f for f in found if f.rule == "anakinra-blood-count-monitoring")
    assert "no usable count" in due.summary and "does not count as a result" in due.detail
    assert due.facts["unreadable_count"]["found"] == "4 %"


@pytest.mark.parametrize(("comparator", "value", "test", "meets"), [
    pytest.param(">", 60, ("<", 30), False, id="egfr>60-is-not-below-30"),
    pytest.param(">=", 30, ("<", 30), False, id="egfr>=30-is-not-below-30"),
    pytest.param(">", 20, ("<", 30), None, id="egfr>20-does-not-decide"),
    pytest.param("<", 30, ("<", 30), True, id="egfr<30-is-below-30"),
    pytest.param("<=", 30, ("<", 30), None, id="egfr<=30-may-be-30"),
    pytest.param("<", 0.1, ("<", 1.5), True, id="anc<0.1-is-low"),
    pytest.param(">", 1.0, ("<", 1.5), None, id="anc>1.0-does-not-decide"),
    pytest.param(">", 38.5, (">=", 38.0), True, id="temp>38.5-is-fever"),
])
def test_a_value_with_a_comparator_is_read_only_when_it_decides(comparator, value, test, meets):
    obs = observation("62238-1", value, "mL/min", 3)
    obs["valueQuantity"]["comparator"] = comparator
    reading = read_quantity(obs, kidney_ml_per_min, Threshold.compare(*test))
    assert reading.readable == (meets is not None)
    assert reading.meets is meets
    assert not read_quantity(obs, kidney_ml_per_min).readable  # without a threshold a bound is not a value


@pytest.mark.parametrize(("comparator", "cards"), [
    pytest.param(">", set(), id="egfr>60-decides-no-card"),
    pytest.param("<", {("anakinra-kidney-dosing", True)}, id="egfr<60-unable"),
])
def test_egfr_reported_as_a_bound(knowledge, comparator, cards):
    egfr = observation("62238-1", 60, "mL/min/{1.73_m2}", 5)
    egfr["valueQuantity"]["comparator"] = comparator
    assert outcome(run(knowledge, context(med_request(), **quiet(observations=[egfr, RECENT_ANC])))) == cards


@pytest.mark.parametrize(("status", "readable"), [
    ("final", True), ("amended", True), ("corrected", True), ("preliminary", False), ("registered", False),
    ("unknown", False)])
def test_readable_statuses(status, readable):
    assert read_quantity(observation("751-8", 3, "10*9/L", status=status), cells_10e9_per_l).readable is readable
    assert read_coded(observation("82810-3", None, None, status=status, value_concept=PREGNANT)).readable is readable


@pytest.mark.parametrize(("timing", "expected"), [
    pytest.param({"effectiveDateTime": "2026-11-20T08:00:00Z"}, "2026-11-20T08:00:00+00:00", id="date-time"),
    pytest.param({"effectivePeriod": {"start": "2026-11-18T08:00:00Z", "end": "2026-11-19T08:00:00Z"}},
                 "2026-11-19T08:00:00+00:00", id="period-end"),
    pytest.param({"effectivePeriod": {"start": "2026-11-18T08:00:00Z"}}, "2026-11-18T08:00:00+00:00",
                 id="period-start-only"),
    pytest.param({"issued": "2026-11-21T10:00:00Z"}, "2026-11-21T10:00:00+00:00", id="issued-only"),
    pytest.param({"effectiveTiming": {"event": ["2026-11-01"]}, "issued": "2026-11-21T10:00:00Z"},
                 "2026-11-21T10:00:00+00:00", id="timing-falls-back-to-issued"),
    pytest.param({}, None, id="undated"),
])
def test_when_an_observation_applies(timing, expected):
    obs = {"resourceType": "Observation", "status": "final", **timing}
    found = observation_when(obs)
    assert (found.start.isoformat() if found else None) == expected
    time = observation_time(obs)
    assert (time.isoformat() if time else None) == expected


# --- 2. history, screening and exposure; clinical statuses ---------------------------------------------------

# (check, its rule, a member code of its value set, the disease's name as a problem list writes it, the other
# conditions the row needs so that only this rule is in question)
CONDITION_CHECKS = [
    ("infection", "anakinra-active-infection", ("233604007", SNOMED), "pneumonia", [RA]),
    ("neutropenia", "anakinra-neutropenia", ("165517008", SNOMED), "neutropenia", [RA]),
    ("pregnancy", "anakinra-pregnancy", ("77386006", SNOMED), "pregnancy", [RA]),
    ("severe kidney disease", "anakinra-kidney-dosing", ("433146000", SNOMED), "chronic kidney disease stage 5", [RA]),
]
# Categories of the not-an-active-condition value set (ICD-10-CM Z80-Z87, Z11-Z13, Z20) and its SNOMED CT
# situations, each written as a problem list would, naming the disease.
NOT_ACTIVE = [
    ("Z80", ICD10CM, "Family history of {}"), ("Z81", ICD10CM, "Family history of {}"),
    ("Z82", ICD10CM, "Family history of {}"), ("Z83", ICD10CM, "Family history of {}"),
    ("Z84", ICD10CM, "Family history of {}"), ("Z85", ICD10CM, "Personal history of {}"),
    ("Z86", ICD10CM, "Personal history of {}"), ("Z87.01", ICD10CM, "Personal history of {} (recurrent)"),
    ("Z8701", ICD10CM, "Personal history of {}"), ("Z11", ICD10CM, "Screening for {}"),
    ("Z12", ICD10CM, "Screening for {}"), ("Z13", ICD10CM, "Screening for {}"),
    ("Z20", ICD10CM, "Contact with and (suspected) exposure to {}"),
    ("417662000", SNOMED, "History of {}"), ("416471007", SNOMED, "Family history of {}"),
    ("443508001", SNOMED, "No history of {}"), ("160266009", SNOMED, "No family history of {}"),
    ("161525004", SNOMED, "History of {}"),
]


def condition_findings(knowledge, conditions: list[dict], rule: str) -> set[tuple[str, bool]]:
    """The findings of one rule for a daily order (severe kidney disease matters for an order more often than
    every other day)."""
    found = run(knowledge, context(med_request(), **quiet(conditions=conditions)))
    return {o for o in outcome(found) if o[0] == rule}


def coded(code: str, system: str, text: str, *extra: dict, cid: str = "c", clinical: str | None = "active") -> dict:
    cond = condition(code, system, cid=cid, clinical=clinical)
    cond["code"]["coding"][0]["display"] = text
    cond["code"]["coding"] += list(extra)
    cond["code"]["text"] = text
    return cond


@pytest.mark.parametrize(("name", "rule", "member", "disease", "others"), CONDITION_CHECKS,
                         ids=[c[0] for c in CONDITION_CHECKS])
@pytest.mark.parametrize(("code", "system", "pattern"), NOT_ACTIVE, ids=[f"{c[0]}" for c in NOT_ACTIVE])
def test_history_screening_and_exposure_never_count(knowledge, name, rule, member, disease, others, code, system,
                                                    pattern):
    text = pattern.format(disease)
    # the code alone (its display and text naming the disease), with a local code beside it (so that no code
    # the disease value set judges is there), and with the disease's own code beside it: never the condition
    for extra in ((), ({"system": "urn:oid:2.16.840.1.113883.19.5", "code": "L-17", "display": text},),
                  ({"system": member[1], "code": member[0]},)):
        assert condition_findings(knowledge, [*others, coded(code, system, text, *extra)], rule) == set(), extra
    # controls: the same words on an uncoded entry, and the disease's own code, are the condition
    uncoded = condition("", text=disease.capitalize(), cid="u")
    assert condition_findings(knowledge, [*others, uncoded], rule) == {(rule, False)}
    assert condition_findings(knowledge, [*others, condition(*member, cid="m")], rule) == {(rule, False)}


@pytest.mark.parametrize(("code", "system", "pattern"), NOT_ACTIVE, ids=[f"{c[0]}" for c in NOT_ACTIVE])
def test_history_of_the_indication_is_not_the_indication(knowledge, code, system, pattern):
    found = run(knowledge, context(med_request(), **quiet(
        conditions=[coded(code, system, pattern.format("rheumatoid arthritis"))])))
    assert {f.rule for f in found} == {"anakinra-indication"} and "No indication" in found[0].summary


@pytest.mark.parametrize(("concept_", "member"), [
    pytest.param(concept({"system": ICD10CM, "code": "Z87.01", "display": "Personal history of pneumonia"}),
                 False, id="icd-history-display"),
    pytest.param(concept({"system": SNOMED, "code": "233604007", "display": "Pneumonia"}), True, id="member-code"),
    pytest.param(concept({"system": SNOMED, "code": "195967001", "display": "Asthma"}, text="pneumonia?"),
                 False, id="coded-non-member-text-ignored"),
    pytest.param(concept({"system": "urn:local", "code": "77", "display": "Lobar pneumonia"}), True,
                 id="local-code-only-by-name"),
    pytest.param(concept(text="Community-acquired pneumonia"), True, id="uncoded-by-name"),
    pytest.param(concept({"system": ICD10CM, "code": "J18.9"}), True, id="icd-range-member"),
])
def test_a_coded_condition_is_judged_by_its_code(knowledge, concept_, member):
    infections = knowledge.value_set("https://fhirsvc.org/fhir/ValueSet/serious-infections")
    not_active = knowledge.value_set("https://fhirsvc.org/fhir/ValueSet/not-an-active-condition")
    assert condition_in(infections, concept_, not_active) is member


STATUSES = ["active", "recurrence", "relapse", "inactive", "remission", "resolved", None]


@pytest.mark.parametrize("clinical", STATUSES, ids=[s or "no-status" for s in STATUSES])
@pytest.mark.parametrize(("name", "rule", "member", "disease", "others"), CONDITION_CHECKS[:3],
                         ids=[c[0] for c in CONDITION_CHECKS[:3]])
def test_active_problems_are_active_relapsing_or_without_status(knowledge, name, rule, member, disease, others,
                                                                  clinical):
    cond = condition(*member, cid="c", clinical=clinical)
    expected = {(rule, False)} if clinical in ("active", "recurrence", "relapse", None) else set()
    assert condition_findings(knowledge, [*others, cond], rule) == expected


@pytest.mark.parametrize("clinical", STATUSES, ids=[s or "no-status" for s in STATUSES])
def test_an_indication_is_recorded_in_remission_or_relapse(knowledge, clinical):
    ra = condition("69896004", cid="ra", clinical=clinical)
    found = run(knowledge, context(med_request(), **quiet(conditions=[ra])))
    recorded = clinical != "resolved"
    assert [f.rule for f in found] == ([] if recorded else ["anakinra-indication"])
    if not recorded:
        assert "No indication" in found[0].summary


# --- 3. windows: limit - 1, limit, limit + 1, date-only and date-time --------------------------------------------

def dated(obs: dict, days: int, form: str) -> dict:
    """The observation dated ``days`` before NOW: a date only, or a date-time early or late on that day (whole
    days count, so the hour never matters)."""
    obs = {**obs, "id": f"{obs['id']}-{days}-{form}"}
    that_day = NOW - timedelta(days=days)
    obs["effectiveDateTime"] = {"date": date_ago(days), "early": that_day.replace(hour=0, minute=5).isoformat(),
                                "late": that_day.replace(hour=23, minute=55).isoformat()}[form]
    return obs


FORMS = ["date", "early", "late"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("days", "used"), [(89, True), (90, True), (91, False)])
def test_weight_window_90_days(knowledge, days, used, form):
    found = check(knowledge, weight_case([dated(WEIGHT, days, form)]))
    assert outcome(found) == (set() if used else {("anakinra-max-dose-for-weight", True)})
    if not used:
        assert "91 days old; results older than 90 days are not used" in found[0].detail


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("days", "used"), [(179, True), (180, True), (181, False)])
def test_kidney_window_180_days(knowledge, days, used, form):
    found = run(knowledge, context(med_request(), **quiet(observations=[dated(CRCL, days, form), RECENT_ANC])))
    assert outcome(found) == (set() if used else {("anakinra-kidney-dosing", True)})
    if not used:
        assert "181 days old; results older than 180 days are not used" in found[0].detail


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("started", "days", "due"), [
    (None, 29, False), (None, 30, False), (None, 31, True),  # before starting: 30 days
    (60, 30, False), (60, 31, False), (60, 32, True),  # first 3 months: 31 days
    (180, 91, False), (180, 92, False), (180, 93, True),  # 3-12 months: 92 days
])
def test_monitoring_windows(knowledge, started, days, due, form):
    medications = [METHOTREXATE] + ([current_med("k-1", concept(ANAKINRA_RXNORM), authoredOn=date_ago(started))]
                                    if started is not None else [])
    found = run(knowledge, context(med_request(), **quiet(
        observations=[RECENT_KIDNEY, dated(RECENT_ANC, days, form)], medications=medications)))
    monitoring = "anakinra-blood-count-monitoring"
    assert (monitoring, False) in outcome(found) if due else monitoring not in {f.rule for f in found}


@pytest.mark.parametrize(("taken", "fever"), [
    pytest.param(when(hours=71), True, id="71h"),
    pytest.param(when(hours=72), True, id="72h-exactly"),
    pytest.param((NOW - timedelta(hours=72, minutes=1)).isoformat(), False, id="72h-and-a-minute"),
    pytest.param(when(hours=73), False, id="73h"),
    pytest.param(date_ago(3), True, id="date-3-days-ago-overlaps-the-72h"),
    pytest.param(date_ago(4), False, id="date-4-days-ago"),
    pytest.param(NOW.strftime("%Y-%m"), True, id="this-month-only"),
    pytest.param((NOW - timedelta(days=40)).strftime("%Y-%m"), False, id="last-month-only"),
])
def test_fever_window_72_hours(knowledge, taken, fever):
    temp = {**FEVER, "effectiveDateTime": taken}
    found = check(knowledge, temperature_case([temp]))
    assert outcome(found) == ({("anakinra-active-infection", False)} if fever else set())


@pytest.mark.parametrize("form", ["date", "date-time-late", "year-month"])
@pytest.mark.parametrize(("days", "warns"), [(90, True), (91, True), (92, False)])
def test_live_vaccine_washout_3_months(knowledge, days, warns, form):
    """3 months = 91.3125 days (UCUM mo): a stop less than that many whole days ago warns."""
    end_day = NOW - timedelta(days=days)
    end = {"date": end_day.date().isoformat(), "date-time-late": end_day.replace(hour=23, minute=30).isoformat(),
           "year-month": end_day.strftime("%Y-%m")}[form]
    if form == "year-month":  # a year-month end is its last day: how many days ago that is decides
        last = (end_day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        warns = (NOW.date() - last.date()).days < 91.3125
    vaccine = med_request("mmr", concept({"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}), dosages=[])
    stopped = stopped_med("k-old", concept(ANAKINRA_RXNORM), end)
    found = run(knowledge, context(vaccine, medications=[stopped]))
    assert [f.rule for f in found if f.rule.startswith("anakinra-live-vaccine-washout")] == (
        ["anakinra-live-vaccine-washout"] if warns else [])


@pytest.mark.parametrize(("days", "counts"), [(293, True), (294, True), (295, False)])
def test_pregnancy_status_window_42_weeks(knowledge, days, counts):
    status = observation("82810-3", None, None, days, oid="preg", value_concept=PREGNANT)
    assert outcome(check(knowledge, pregnancy_case([status]))) == (
        {("anakinra-pregnancy", False)} if counts else set())


# --- the helpers themselves -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "precision", "first", "last"), [
    ("2026-11-20", "day", "2026-11-20T00:00:00+00:00", "2026-11-20T23:59:59.999999+00:00"),
    ("2026-11", "month", "2026-11-01T00:00:00+00:00", "2026-11-30T23:59:59.999999+00:00"),
    ("2026", "year", "2026-01-01T00:00:00+00:00", "2026-12-31T23:59:59.999999+00:00"),
    ("2026-11-20T08:30:00+02:00", "time", "2026-11-20T08:30:00+02:00", "2026-11-20T08:30:00+02:00"),
    ("2026-11-20T08:30:00Z", "time", "2026-11-20T08:30:00+00:00", "2026-11-20T08:30:00+00:00"),
])
def test_parse_when(value, precision, first, last):
    parsed = parse_when(value)
    assert parsed is not None and parsed.precision == precision
    assert (parsed.instant("first").isoformat(), parsed.instant("last").isoformat()) == (first, last)


@pytest.mark.parametrize("value", ["2026-02-30", "20261120", "yesterday", "", None, 20261120])
def test_parse_when_refuses_what_is_not_a_date(value):
    assert parse_when(value) is None


@settings(max_examples=500)
@given(st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M")),
    st.dates().map(lambda day_: day_.isoformat()), st.dates().map(lambda day_: day_.isoformat()[:7]),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+Z-]{0,20}\Z"), st.text(max_size=30), st.none(),
    st.integers()))
def test_when_start_is_the_start_of_parse_when(value):
    """The date-time read without its ``When`` is the same instant, and refuses the same values."""
    parsed = parse_when(value)
    assert when_start(value) == (parsed.start if parsed else None)


@pytest.mark.parametrize(("window", "value", "age", "inside", "said"), [
    (WEIGHT_MAX_AGE, date_ago(91), 91, False, "91 days old; results older than 90 days are not used"),
    (WEIGHT_MAX_AGE, date_ago(90), 90, True, "90 days old; results older than 90 days are not used"),
    (KIDNEY_MAX_AGE, date_ago(181), 181, False, "181 days old; results older than 180 days are not used"),
    (TEMPERATURE_WINDOW, when(hours=73), 73, False, "73 hours old; temperatures older than 72 hours are not used"),
    (Window(30, "day", "counts"), (NOW + timedelta(days=2)).date().isoformat(), 0, True,
     "from today; counts older than 30 days are not used"),
])
def test_window_messages_state_the_rule(window, value, age, inside, said):
    parsed = parse_when(value)
    assert window.age(parsed, NOW) == age
    assert window.contains(parsed, NOW) is inside
    assert window.too_old(parsed, NOW) == said


def test_a_date_time_is_dated_in_the_time_zone_of_now():
    """23:30 at UTC-05:00 on the 20th is the 21st in UTC (the service's clock)."""
    assert WEIGHT_MAX_AGE.age(parse_when("2026-11-20T23:30:00-05:00"), NOW) == 3


# --- the order's dose: a dose range, as-needed dosing ---------------------------------------------------------

def ranged(low: float | None, high: float | None, unit: str = "mg", **timing: Any) -> dict:
    d = dosage(None, **timing)
    d["doseAndRate"] = [{"doseRange": {k: {"value": v, "unit": unit} for k, v in (("low", low), ("high", high))
                                       if v is not None}}]
    return d


@pytest.mark.parametrize(("dosages", "pat", "conditions", "weights", "expected"), [
    pytest.param([ranged(50, 100)], None, [RA], [], set(), id="50-100-mg-within-the-maximum"),
    pytest.param([ranged(50, 150)], None, [RA], [], {("anakinra-max-daily-dose", False)},
                 id="50-150-mg-upper-end-too-high"),
    pytest.param([ranged(None, 150)], None, [RA], [], {("anakinra-max-daily-dose", False)}, id="up-to-150-mg"),
    pytest.param([ranged(50, None)], None, [RA], [], {("anakinra-max-daily-dose", True)}, id="no-upper-end"),
    pytest.param([ranged(1, 2, unit="tablet")], None, [RA], [], {("anakinra-max-daily-dose", True)},
                 id="unit-not-mass"),
    pytest.param([ranged(0.05, 0.15, unit="g")], None, [RA], [], {("anakinra-max-daily-dose", False)},
                 id="grams-converted"),
    pytest.param([ranged(10, 40)], 6, [NOMID], [WEIGHT], {("anakinra-starting-dose-for-weight", False)},
                 id="nomid-10-40-mg-low-end-below-1-mg-kg"),
    pytest.param([ranged(20, 180)], 6, [NOMID], [WEIGHT], {("anakinra-max-dose-for-weight", False)},
                 id="nomid-20-180-mg-upper-end-above-8-mg-kg"),
    pytest.param([ranged(20, 160)], 6, [NOMID], [WEIGHT], set(), id="nomid-20-160-mg-within"),
])
def test_a_dose_range_is_read_at_both_ends(knowledge, dosages, pat, conditions, weights, expected):
    found = run(knowledge, context(med_request(dosages=dosages), pat=patient(pat) if pat else True, **quiet(
        conditions=conditions, observations=[*weights, RECENT_KIDNEY, RECENT_ANC])))
    assert outcome(found) == expected
    for finding in found:
        if finding.rule in ("anakinra-max-daily-dose", "anakinra-max-dose-for-weight") and not finding.unable:
            assert "upper end of its dose range" in finding.detail
            assert finding.facts["dose_range"]["read_at"] == "upper end"


@pytest.mark.parametrize(("as_needed", "timing", "expected"), [
    pytest.param({"asNeededBoolean": True}, {"freq": 1}, set(), id="prn-once-a-day-100-mg"),
    pytest.param({"asNeededBoolean": True}, {"freq": 2}, {("anakinra-max-daily-dose", False)},
                 id="prn-up-to-twice-a-day"),
    pytest.param({"asNeededCodeableConcept": {"text": "flare"}}, {"freq": 2}, {("anakinra-max-daily-dose", False)},
                 id="prn-for-a-reason-twice-a-day"),
    pytest.param({"asNeededBoolean": True}, {"timing": {}}, {("anakinra-max-daily-dose", True)},
                 id="prn-without-frequency"),
])
def test_as_needed_dosing_is_judged_at_the_most_it_allows(knowledge, as_needed, timing, expected):
    order = med_request(dosages=[{**dosage(100, **timing), **as_needed}])
    assert outcome(run(knowledge, context(order, **quiet()))) == expected


ODD = [None, 7, "x", [], {}, [{"code": 1}], {"value": "12"}, True]


@pytest.mark.parametrize("odd", ODD, ids=[repr(v) for v in ODD])
def test_odd_shapes_are_unreadable_never_a_failed_check(knowledge, odd):
    """Sent data can have any JSON type: a result or condition of an odd shape is unreadable or no match, and no
    check fails on it (a failure would be an "Unable to check ...: the check failed" card)."""
    obs = []
    for field in ("status", "valueQuantity", "effectiveDateTime", "dataAbsentReason", "valueCodeableConcept",
                  "effectivePeriod", "code"):
        for base in (LOW_ANC, STATUS, FEVER, CRCL):
            obs.append({**base, "id": f"{base['id']}-{field}", field: odd})
    cond = condition("233604007", cid="odd-code")
    cond["code"] = odd
    odd_status = condition("165517008", cid="odd-status")
    odd_status["clinicalStatus"] = odd
    odd_status["verificationStatus"] = odd
    found = run(knowledge, context(med_request(), **quiet(conditions=[RA, cond, odd_status], observations=obs)))
    assert not [f for f in found if "the check failed" in f.summary], [f.summary for f in found]


@pytest.mark.parametrize("form", ["date", "date-time"])
@pytest.mark.parametrize(("started", "count_age", "window"), [
    (91, 35, 31), (92, 35, None), (92, 100, 92), (365, 100, 92), (366, 100, None)])
def test_therapy_phases_in_whole_days(knowledge, started, count_age, window, form):
    """#14's phases (3 months = 91.3 days, 12 months = 365.25 days) count whole days since the start date: on day
    91 the monthly window (31 days) applies, from day 92 the quarterly one (92 days), after day 365 none."""
    start = date_ago(started) if form == "date" else (NOW - timedelta(days=started)).replace(hour=23).isoformat()
    current = current_med("k-1", concept(ANAKINRA_RXNORM), authoredOn=start)
    count = dated(RECENT_ANC, count_age, "date")
    found = run(knowledge, context(med_request(), **quiet(observations=[RECENT_KIDNEY, count],
                                                         medications=[METHOTREXATE, current])))
    due = [f for f in found if f.rule == "anakinra-blood-count-monitoring"]
    assert [f.facts["window_days"] for f in due] == ([window] if window else [])
