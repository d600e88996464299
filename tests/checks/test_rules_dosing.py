"""Dose checks #6-#9, #18 and "Unable to check dose": firing, not firing, boundaries."""

from __future__ import annotations

import copy

import pytest

from fhirsvc.terminology import ICD10CM, SNOMED
from tests.checks.conftest import (
    ANAKINRA_RXNORM,
    KINERET_NDC,
    NOMID,
    RECENT_ANC,
    RECENT_KIDNEY,
    concept,
    condition,
    context,
    crcl,
    dosage,
    med_request,
    observation,
    one,
    only,
    quiet,
    rules,
    run,
    weight,
)

BY_CODE = concept(ANAKINRA_RXNORM)
BY_NDC = concept(KINERET_NDC)
BY_TEXT = concept(text="Kineret 100 mg/0.67 mL syringe")


# --- #6 high dose ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("medication", "dose", "fires"), [
    pytest.param(BY_CODE, dosage(100, "mg"), False, id="100-mg-day-rxnorm"),
    pytest.param(BY_CODE, dosage(101, "mg"), True, id="101-mg-day-rxnorm"),
    pytest.param(BY_NDC, dosage(101, "mg"), True, id="101-mg-day-ndc"),
    pytest.param(BY_TEXT, dosage(101, "mg"), True, id="101-mg-day-text-only"),
    pytest.param(BY_CODE, dosage(50, "mg", freq=2), False, id="50-mg-twice-a-day"),
    pytest.param(BY_CODE, dosage(100, "mg", code="BID"), True, id="100-mg-BID"),
    pytest.param(BY_CODE, dosage(0.67, "mL"), False, id="0.67-mL-is-100-mg"),
    pytest.param(BY_CODE, dosage(1, "mL"), True, id="1-mL-is-149-mg"),
    pytest.param(BY_CODE, dosage(1, "syringe"), False, id="one-syringe"),
    pytest.param(BY_CODE, dosage(1, "syringe", period=12, period_unit="h"), True, id="syringe-every-12-h"),
    pytest.param(BY_CODE, dosage(700, "mg", period_unit="wk"), False, id="700-mg-a-week"),
    pytest.param(BY_CODE, dosage(701, "mg", period_unit="wk"), True, id="701-mg-a-week"),
])
def test_high_dose(knowledge, medication, dose, fires):
    found = run(knowledge, context(med_request(medication=medication, dosages=[dose]), **quiet()))
    assert rules(found) == (["anakinra-max-daily-dose"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("DOSEH", "warning", "dosing-ra")
        assert finding.section.endswith("Adult Dosage (ages 18 years and older)")
        assert finding.facts["maximum_mg_per_day"] == 100
        assert "100 mg/day" in finding.summary


def test_high_dose_by_medication_reference(knowledge):
    med = {"resourceType": "Medication", "id": "m1", "code": concept(KINERET_NDC)}
    order = med_request(reference="Medication/m1", dosages=[dosage(200, "mg")])
    found = run(knowledge, context(order, referenced={"Medication/m1": med}, **quiet()))
    assert one(found, "anakinra-max-daily-dose").facts["daily_dose_mg"] == 200


def test_no_high_dose_card_with_a_nomid_indication(knowledge):
    observations = [weight(40), RECENT_KIDNEY, RECENT_ANC]
    ctx = context(med_request(dosages=[dosage(150, "mg")]), **quiet(conditions=[NOMID], observations=observations))
    assert "anakinra-max-daily-dose" not in rules(run(knowledge, ctx))


# --- unreadable dose -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("dose", "problem"), [
    pytest.param(dosage(2, "tablet"), "unit 'tablet' cannot be converted to mg", id="tablet"),
    pytest.param(dosage(100, None), "unit 'no unit' cannot be converted to mg", id="no-unit"),
    pytest.param(dosage(None), "no dose quantity", id="no-dose"),
    pytest.param(dosage(100, "mg", timing={"repeat": {"frequency": 1}}), "no readable frequency", id="no-period"),
    pytest.param(dosage(2, "mg/kg"), "unit 'mg/kg' cannot be converted to mg", id="mg-per-kg-dose"),
    pytest.param(dosage(1, "{pill}"), "unit 'pill' cannot be converted to mg", id="ucum-annotation-in-words"),
])
def test_unreadable_dose_says_unable_to_check(knowledge, dose, problem):
    found = run(knowledge, context(med_request(dosages=[dose]), **quiet()))
    finding = one(found, "anakinra-max-daily-dose")
    assert (finding.topic, finding.indicator, finding.unable) == ("DOSE", "warning", True)
    assert finding.summary.startswith("Unable to check dose")
    assert finding.facts["dose_problem"] == problem  # the one finding of #6: its "Unable to check", no high dose


def test_the_unable_card_names_an_annotated_unit_in_words_and_escapes_it(knowledge):
    """The CDS Hooks sandbox's ``{pill}``: "pill" on the card, never the braces; outside text stays escaped."""
    found = run(knowledge, context(med_request(dosages=[dosage(1, "{pill}"), dosage(1, "{<b>tab</b>}")]), **quiet()))
    finding = one(found, "anakinra-max-daily-dose")
    assert finding.unable
    assert "{" not in finding.summary + finding.detail and "pill" in finding.summary
    assert "<b>" not in finding.detail


@pytest.mark.parametrize("dose", [
    pytest.param(dosage(0.2, "g"), id="0.2-g"),
    pytest.param(dosage(200000, "mcg"), id="200000-mcg"),
    pytest.param(dosage(200000, "ug"), id="ucum-ug"),
])
def test_a_dose_in_another_mass_unit_is_judged_in_mg(knowledge, dose):
    found = run(knowledge, context(med_request(dosages=[dose]), **quiet()))
    finding = one(found, "anakinra-max-daily-dose")  # one finding of #6: the high dose, not "Unable to check"
    assert finding.facts["daily_dose_mg"] == 200 and not finding.unable


# --- #7 / #8 dose for weight ------------------------------------------------------------------------------

def nomid_order(mg_per_day: float, freq: int = 1) -> dict:
    return med_request(dosages=[dosage(mg_per_day / freq, "mg", freq=freq)])


@pytest.mark.parametrize(("mg", "kg", "rule"), [
    pytest.param(160, 20, None, id="8.0-mg-kg-day"),
    pytest.param(162, 20, "anakinra-max-dose-for-weight", id="8.1-mg-kg-day"),
    pytest.param(400, 40, "anakinra-max-dose-for-weight", id="10-mg-kg-day"),
    pytest.param(20, 20, None, id="1.0-mg-kg-day"),
    pytest.param(19.8, 20, "anakinra-starting-dose-for-weight", id="0.99-mg-kg-day"),
])
def test_dose_for_weight(knowledge, mg, kg, rule):
    ctx = context(nomid_order(mg), **quiet(conditions=[NOMID], observations=[weight(kg), RECENT_KIDNEY, RECENT_ANC]))
    found = run(knowledge, ctx)
    assert rules(found) == ([rule] if rule else [])
    if rule == "anakinra-max-dose-for-weight":
        assert (found[0].topic, found[0].indicator, found[0].anchor) == ("DOSEHINDW", "critical", "dosing-nomid")
        assert found[0].facts["maximum_mg_per_kg_per_day"] == 8
    if rule == "anakinra-starting-dose-for-weight":
        assert (found[0].topic, found[0].indicator) == ("DOSELINDW", "info")


def test_split_nomid_dose_counts_as_daily_total(knowledge):
    ctx = context(nomid_order(162, freq=2), **quiet(conditions=[NOMID], observations=[weight(20), RECENT_KIDNEY,
                                                                                        RECENT_ANC]))
    assert one(run(knowledge, ctx), "anakinra-max-dose-for-weight").facts["mg_per_kg_per_day"] == pytest.approx(8.1)


def test_nomid_as_the_order_reason_counts(knowledge):
    order = nomid_order(400)
    order["reasonCode"] = [concept(text="NOMID")]
    ctx = context(order, **quiet(conditions=[], observations=[weight(40), RECENT_KIDNEY, RECENT_ANC]))
    assert "anakinra-max-dose-for-weight" in rules(run(knowledge, ctx))


def test_weight_in_pounds_is_converted(knowledge):
    ctx = context(nomid_order(162), **quiet(conditions=[NOMID], observations=[
        observation("29463-7", 44.0925, "[lb_av]", 5), RECENT_KIDNEY, RECENT_ANC]))
    weight = one(run(knowledge, ctx), "anakinra-max-dose-for-weight").facts["weight"]
    assert weight["value"] == pytest.approx(20, rel=1e-3)


@pytest.mark.parametrize(("observations", "says"), [
    pytest.param([weight(20, days=120)], "is 120 days old (over 90 days)", id="stale-weight"),
    pytest.param([weight(20, days=91)], "is 91 days old (over 90 days)", id="91-days"),
    pytest.param([], "no body weight recorded", id="no-weight"),
    pytest.param([weight(20, unit="stone")], "cannot be used (20 stone, 2026-11-19)", id="unusable-unit"),
])
def test_missing_or_stale_weight_says_unable_to_check(knowledge, observations, says):
    observations = [*observations, RECENT_KIDNEY, RECENT_ANC]
    ctx = context(nomid_order(160), **quiet(conditions=[NOMID], observations=observations))
    found = run(knowledge, ctx)
    finding = one(found, "anakinra-max-dose-for-weight")
    assert (finding.topic, finding.indicator, finding.unable) == ("DOSEHINDW", "warning", True)
    assert finding.summary.startswith("Unable to check") and says in finding.summary
    assert "anakinra-starting-dose-for-weight" not in rules(found)


def test_weight_of_90_days_is_still_used(knowledge):
    ctx = context(nomid_order(160), **quiet(conditions=[NOMID], observations=[weight(20, days=89), RECENT_KIDNEY,
                                                                               RECENT_ANC]))
    assert run(knowledge, ctx) == []


# --- #9 kidney function -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("evidence", "fires"), [
    pytest.param([crcl(29)], True, id="crcl-29"),
    pytest.param([crcl(30)], False, id="crcl-30"),
    pytest.param([crcl(29.9, code="2164-2")], True, id="24h-crcl-29.9"),
    pytest.param([crcl(25, code="62238-1", unit="mL/min/{1.73_m2}")], True, id="egfr-25"),
    pytest.param([crcl(45, days=5), crcl(20, days=100)], False, id="newest-result-decides"),
    pytest.param([crcl(20, days=5), crcl(45, days=100)], True, id="newest-low"),
    pytest.param([crcl(20, days=179)], True, id="low-within-180-days"),
])
def test_renal_dosing_by_result(knowledge, evidence, fires):
    ctx = context(med_request(), **quiet(observations=[*evidence, RECENT_ANC]))
    found = run(knowledge, ctx)
    assert rules(found) == (["anakinra-kidney-dosing"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("DOSECOND", "warning", "kidney-disease")
        assert "every other day" in finding.summary


def test_renal_summary_names_the_result(knowledge):
    found = run(knowledge, context(med_request(), **quiet(observations=[crcl(22, days=53), RECENT_ANC])))
    assert one(found, "anakinra-kidney-dosing").summary == \
        "Severe kidney disease (CrCl 22 mL/min, 2026-10-02): anakinra every other day is advised"


@pytest.mark.parametrize("cond", [
    pytest.param(condition("431857002"), id="ckd-4-snomed"),
    pytest.param(condition("433146000"), id="ckd-5-snomed"),
    pytest.param(condition("46177005"), id="esrd-snomed"),
    pytest.param(condition("N18.4", ICD10CM), id="n18.4"),
    pytest.param(condition("N18.5", ICD10CM), id="n18.5"),
    pytest.param(condition("N18.6", ICD10CM), id="n18.6"),
])
def test_renal_dosing_by_condition(knowledge, cond):
    ctx = context(med_request(), **quiet(conditions=[cond, condition("69896004")], observations=[RECENT_ANC]))
    assert one(run(knowledge, ctx), "anakinra-kidney-dosing").facts["severe_kidney_disease"] == "condition"


def test_resolved_kidney_condition_does_not_count(knowledge):
    ctx = context(med_request(), **quiet(conditions=[condition("46177005", clinical="resolved"),
                                                     condition("69896004")]))
    assert run(knowledge, ctx) == []


@pytest.mark.parametrize("dose", [
    pytest.param(dosage(100, "mg", period=2), id="every-2-days"),
    pytest.param(dosage(100, "mg", code="QOD"), id="QOD"),
    pytest.param(dosage(100, "mg", period=48, period_unit="h"), id="every-48-h"),
    pytest.param(dosage(100, "mg", period=1, period_unit="wk"), id="weekly"),
])
def test_every_other_day_order_is_fine_in_kidney_disease(knowledge, dose):
    ctx = context(med_request(dosages=[dose]), **quiet(observations=[crcl(10), RECENT_ANC]))
    assert run(knowledge, ctx) == []


def test_renal_update_suggestion_is_the_whole_changed_order(knowledge):
    order = med_request("rx-7", dosages=[{**dosage(100, "mg", code="QD"), "text": "100 mg once daily"}],
                        note=[{"text": "kept"}])
    original = copy.deepcopy(order)
    found = run(knowledge, context(order, **quiet(observations=[crcl(22), RECENT_ANC])))
    finding = one(found, "anakinra-kidney-dosing")
    (suggestion,) = finding.suggestions
    assert suggestion.action == "update" and suggestion.recommended
    changed = suggestion.resource
    assert changed["id"] == "rx-7" and changed["resourceType"] == "MedicationRequest"
    assert changed["note"] == [{"text": "kept"}]
    (dosage_json,) = changed["dosageInstruction"]
    assert dosage_json["timing"] == {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}
    assert dosage_json["doseAndRate"] == [{"doseQuantity": {"value": 100, "unit": "mg"}}]
    assert dosage_json["text"] == "100 mg every other day"
    assert order == original


def test_renal_update_keeps_the_dose_and_bounds(knowledge):
    dose = dosage(50, "mg", freq=2)
    dose["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-11-25"}
    finding = one(run(knowledge, context(med_request(dosages=[dose]), **quiet(observations=[crcl(10), RECENT_ANC]))),
                  "anakinra-kidney-dosing")
    repeat = finding.suggestions[0].resource["dosageInstruction"][0]["timing"]["repeat"]
    assert repeat == {"boundsPeriod": {"start": "2026-11-25"}, "frequency": 1, "period": 2, "periodUnit": "d"}


@pytest.mark.parametrize(("observations", "says"), [
    pytest.param([], "no kidney function result (creatinine clearance or eGFR) in the last 180 days", id="none"),
    pytest.param([crcl(80, days=181)], "newest kidney function result is 181 days old (over 180 days)", id="stale"),
    pytest.param([observation("2160-0", 1.0, "mg/dL", 3)], "no kidney function result", id="creatinine-only"),
])
def test_no_recent_kidney_result_is_info_unable_to_check(knowledge, observations, says):
    found = run(knowledge, context(med_request(), **quiet(observations=[*observations, RECENT_ANC])))
    finding = one(found, "anakinra-kidney-dosing")
    assert (finding.topic, finding.indicator, finding.unable) == ("DOSECOND", "info", True)
    assert finding.summary.startswith("Unable to check") and says in finding.summary
    assert finding.section == "SECTION 4 of 4 \u203a Clinical Monitoring \u203a Kidney test"


def test_nomid_renal_guideline_applies_to_nomid(knowledge):
    ctx = context(nomid_order(40), **quiet(conditions=[NOMID, condition("433146000")],
                                           observations=[weight(20), RECENT_ANC]))
    finding = one(run(knowledge, ctx), "anakinra-kidney-dosing")
    assert finding.facts["guideline"] == "nomid-renal-condition"
    assert "Neonatal-onset" in finding.section


# --- #18 route ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("route", "fires"), [
    pytest.param(concept({"system": SNOMED, "code": "47625008", "display": "Intravenous route"}), True, id="iv"),
    pytest.param(concept({"system": SNOMED, "code": "34206005"}), False, id="subcutaneous-snomed"),
    pytest.param(concept({"system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                          "code": "SQ"}), False, id="subcutaneous-v3"),
    pytest.param(concept({"system": "urn:oid:1.2.3", "code": "18", "display": "Subcutaneous"}), False,
                 id="local-code-with-subcutaneous-display"),
    pytest.param(concept(text="intravenous"), False, id="text-only-is-not-judged"),
])
def test_route(knowledge, route, fires):
    found = run(knowledge, context(med_request(dosages=[dosage(route=route)]), **quiet()))
    assert rules(found) == (["anakinra-route"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator) == ("DOSE", "warning")
        assert found[0].section == "SECTION 1 of 4 \u203a Drug Features"


def test_no_route_card_for_an_unknown_drug(knowledge):
    order = med_request(medication=concept(text="insulin glargine"), dosages=[dosage(
        route=concept({"system": SNOMED, "code": "47625008"}))])
    assert only(run(knowledge, context(order, **quiet())), "anakinra-route") == []
