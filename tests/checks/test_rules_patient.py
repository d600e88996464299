"""Patient checks #10-#17: age, seniors, infection, neutropenia, monitoring, pregnancy, breastfeeding,
indication."""

from __future__ import annotations

import pytest

from fhirsvc.terminology import ICD10CM, LOINC, RXNORM, SNOMED
from tests.checks.conftest import (
    ANAKINRA_RXNORM,
    METHOTREXATE,
    NOMID,
    RA,
    RECENT_ANC,
    RECENT_KIDNEY,
    anc_count,
    concept,
    condition,
    context,
    current_med,
    date_ago,
    med_request,
    observation,
    one,
    patient,
    quiet,
    rules,
    run,
    weight,
)

# --- #10 / #11 age ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("years", "expected"), [
    pytest.param(17, ["anakinra-children"], id="17"),
    pytest.param(18, [], id="18"),
    pytest.param(64, [], id="64"),
    pytest.param(65, ["anakinra-seniors"], id="65"),
    pytest.param(90, ["anakinra-seniors"], id="90"),
])
def test_age_limits(knowledge, years, expected):
    found = run(knowledge, context(med_request(), pat=patient(years), **quiet()))
    assert rules(found) == expected
    if expected == ["anakinra-children"]:
        assert (found[0].topic, found[0].indicator, found[0].anchor) == ("AGE", "warning", "children")
        assert "17 years" in found[0].summary and "NOMID" in found[0].summary
    if expected == ["anakinra-seniors"]:
        assert (found[0].topic, found[0].indicator, found[0].anchor) == ("GEALRT", "info", "seniors")


def test_child_with_nomid_gets_no_age_card(knowledge):
    observations = [weight(20), RECENT_KIDNEY, RECENT_ANC]
    ctx = context(med_request(dosages=[]), pat=patient(6), **quiet(conditions=[NOMID], observations=observations))
    assert "anakinra-children" not in rules(run(knowledge, ctx))


@pytest.mark.parametrize(("pat", "unavailable", "why"), [
    pytest.param(patient(None), {}, "no birth date recorded", id="no-birth-date"),
    pytest.param(None, {"patient": "OperationOutcome"}, "patient record unavailable", id="patient-unavailable"),
])
def test_unknown_age_says_unable_to_check(knowledge, pat, unavailable, why):
    found = run(knowledge, context(med_request(), pat=pat or False, unavailable=unavailable, **quiet()))
    assert rules(found) == ["anakinra-children", "anakinra-seniors"]
    for finding in found:
        assert finding.unable and finding.summary.startswith("Unable to check") and why in finding.summary


# --- #12 infection ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("conditions", "observations", "fires"), [
    pytest.param([condition("J10.1", ICD10CM)], [], True, id="influenza-icd-range"),
    pytest.param([condition("A41.9", ICD10CM)], [], True, id="sepsis-icd-range"),
    pytest.param([condition("L03.115", ICD10CM)], [], True, id="cellulitis-icd-range"),
    pytest.param([condition("233604007")], [], True, id="pneumonia-snomed"),
    pytest.param([condition("", text="Community-acquired pneumonia")], [], True, id="pneumonia-text"),
    pytest.param([condition("J45.909", ICD10CM)], [], False, id="asthma-not-infection"),
    pytest.param([condition("233604007", clinical="resolved")], [], False, id="resolved-pneumonia"),
    pytest.param([], [observation("8310-5", 38.0, "Cel", hours=5)], True, id="38.0-C"),
    pytest.param([], [observation("8310-5", 37.9, "Cel", hours=5)], False, id="37.9-C"),
    pytest.param([], [observation("8310-5", 100.4, "[degF]", hours=5)], True, id="100.4-F"),
    pytest.param([], [observation("8310-5", 39.0, "Cel", days=3, hours=1)], False, id="fever-73-hours-ago"),
    pytest.param([], [observation("8310-5", 39.0, "Cel", days=2, hours=23)], True, id="fever-71-hours-ago"),
])
def test_active_infection(knowledge, conditions, observations, fires):
    ctx = context(med_request(), **quiet(conditions=[RA, *conditions],
                                         observations=[RECENT_KIDNEY, RECENT_ANC, *observations]))
    found = run(knowledge, ctx)
    assert rules(found) == (["anakinra-active-infection"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator, found[0].anchor) == ("COND", "warning", "warnings")


# --- #13 neutropenia ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("observations", "conditions", "fires"), [
    pytest.param([anc_count(1.49)], [], True, id="1.49-giga-per-litre"),
    pytest.param([anc_count(1.5)], [], False, id="1.5-giga-per-litre"),
    pytest.param([anc_count(1490, "/uL")], [], True, id="1490-per-uL"),
    pytest.param([anc_count(1500, "/uL")], [], False, id="1500-per-uL"),
    pytest.param([anc_count(1.2, "10*3/uL", code="26499-4")], [], True, id="1.2-thousand-per-uL"),
    pytest.param([anc_count(1.2, "10*3/uL", code="753-4")], [], True, id="manual-count"),
    pytest.param([anc_count(20, "%", days=1), RECENT_ANC], [], False, id="percentage-not-usable"),
    pytest.param([anc_count(1.0, days=20), anc_count(2.5, days=2)], [], False, id="newest-normal"),
    pytest.param([RECENT_ANC], [condition("165517008")], True, id="neutropenia-condition"),
    pytest.param([RECENT_ANC], [condition("D70.1", ICD10CM)], True, id="neutropenia-icd-range"),
])
def test_neutropenia(knowledge, observations, conditions, fires):
    ctx = context(med_request(), **quiet(conditions=[RA, *conditions], observations=[RECENT_KIDNEY, *observations]))
    found = run(knowledge, ctx)
    assert rules(found) == (["anakinra-neutropenia"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator) == ("LAB", "warning")


# --- #14 monitoring ----------------------------------------------------------------------------------------

def on_therapy(started_days_ago: int) -> dict:
    return current_med("k-1", concept(ANAKINRA_RXNORM), authoredOn=date_ago(started_days_ago))


@pytest.mark.parametrize(("started", "last_count", "window"), [
    pytest.param(None, None, 30, id="new-therapy-none"),
    pytest.param(None, 29, None, id="new-therapy-count-29-days"),
    pytest.param(None, 31, 30, id="new-therapy-count-31-days"),
    pytest.param(60, 30, None, id="month-2-count-30-days"),
    pytest.param(60, 32, 31, id="month-2-count-32-days"),
    pytest.param(180, 91, None, id="month-6-count-91-days"),
    pytest.param(180, 93, 92, id="month-6-count-93-days"),
    pytest.param(400, 200, None, id="after-a-year"),
])
def test_monitoring_due(knowledge, started, last_count, window):
    observations = [RECENT_KIDNEY] + ([anc_count(3.0, days=last_count)] if last_count is not None else [])
    medications = [METHOTREXATE] + ([on_therapy(started)] if started is not None else [])
    found = [f for f in run(knowledge, context(med_request(), **quiet(observations=observations,
                                                                      medications=medications)))
             if f.rule != "anakinra-duplicate-therapy"]
    assert rules(found) == (["anakinra-blood-count-monitoring"] if window else [])
    if window:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("LAB", "info", "monitoring")
        assert finding.facts["window_days"] == window
        (create,) = finding.suggestions
        request = create.resource
        assert create.action == "create"
        assert request["resourceType"] == "ServiceRequest" and request["status"] == "draft"
        assert request["intent"] in ("proposal", "order")
        assert request["code"]["coding"][0] == {"system": LOINC, "code": "57021-8",
                                                "display": "CBC W Auto Differential panel - Blood"}
        assert request["subject"] == {"reference": "Patient/pat-1"}


def test_monitoring_with_unknown_start_says_unable_to_check(knowledge):
    ctx = context(med_request(), **quiet(medications=[METHOTREXATE, current_med("k-1", concept(ANAKINRA_RXNORM))]))
    finding = one(run(knowledge, ctx), "anakinra-blood-count-monitoring")
    assert finding.unable and finding.summary.startswith("Unable to check")


# --- #15 pregnancy / #16 breastfeeding ------------------------------------------------------------------------

PREGNANT = concept({"system": LOINC, "code": "LA15173-0", "display": "Pregnant"})
NOT_PREGNANT = concept({"system": LOINC, "code": "LA26683-5", "display": "Not pregnant"})


def status(code: str, answer: dict, days: float) -> dict:
    return observation(code, None, None, days, oid=f"status-{code}-{days}", value_concept=answer)


@pytest.mark.parametrize(("conditions", "observations", "fires"), [
    pytest.param([condition("77386006")], [], True, id="pregnancy-condition"),
    pytest.param([condition("Z33.1", ICD10CM)], [], True, id="pregnant-state-icd"),
    pytest.param([], [status("82810-3", PREGNANT, 10)], True, id="status-pregnant"),
    pytest.param([], [status("82810-3", concept({"system": SNOMED, "code": "77386006"}), 10)], True,
                 id="status-pregnant-snomed-answer"),
    pytest.param([], [status("82810-3", NOT_PREGNANT, 10)], False, id="status-not-pregnant"),
    pytest.param([], [status("82810-3", PREGNANT, 40), status("82810-3", NOT_PREGNANT, 5)], False,
                 id="newer-not-pregnant"),
    pytest.param([], [status("82810-3", concept(text="Not pregnant"), 5)], "unable", id="text-not-pregnant"),
    pytest.param([], [status("82810-3", concept(text="Not pregnant"), 5), status("82810-3", NOT_PREGNANT, 20)],
                 False, id="text-newest-coded-older-decides"),
    pytest.param([], [status("82810-3", PREGNANT, 400)], False, id="status-older-than-42-weeks"),
    pytest.param([], [status("82810-3", concept(text="?"), 400)], False, id="unreadable-older-than-42-weeks"),
])
def test_pregnancy(knowledge, conditions, observations, fires):
    ctx = context(med_request(), **quiet(conditions=[RA, *conditions],
                                         observations=[RECENT_KIDNEY, RECENT_ANC, *observations]))
    found = run(knowledge, ctx)
    assert rules(found) == (["anakinra-pregnancy"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator, found[0].anchor) == ("PREG", "warning", "pregnancy")
        assert found[0].unable == (fires == "unable")


BREASTFEEDING = concept({"system": LOINC, "code": "LA29252-6", "display": "Currently breastfeeding"})
NOT_BREASTFEEDING = concept({"system": LOINC, "code": "LA29253-4", "display": "Not currently breastfeeding"})


@pytest.mark.parametrize(("conditions", "observations", "fires"), [
    pytest.param([condition("413712001")], [], True, id="condition"),
    pytest.param([condition("Z39.1", ICD10CM)], [], True, id="lactating-mother-icd"),
    pytest.param([], [status("63895-7", BREASTFEEDING, 3)], True, id="status-breastfeeding"),
    pytest.param([], [status("63895-7", NOT_BREASTFEEDING, 3)], False, id="status-not-breastfeeding"),
    pytest.param([], [status("63895-7", BREASTFEEDING, 30), status("63895-7", NOT_BREASTFEEDING, 3)], False,
                 id="newer-not-breastfeeding"),
])
def test_breastfeeding(knowledge, conditions, observations, fires):
    ctx = context(med_request(), **quiet(conditions=[RA, *conditions],
                                         observations=[RECENT_KIDNEY, RECENT_ANC, *observations]))
    found = run(knowledge, ctx)
    assert rules(found) == (["anakinra-breastfeeding"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator, found[0].anchor) == ("LACT", "info", "breastfeeding")


# --- #17 indication ------------------------------------------------------------------------------------------

SULFASALAZINE = current_med("ssz", concept(text="Azulfidine 500 mg"), status="stopped")


@pytest.mark.parametrize(("conditions", "medications", "reason", "fires"), [
    pytest.param([], [METHOTREXATE], None, "no-indication", id="nothing-recorded"),
    pytest.param([RA], [], None, "no-dmard", id="ra-without-dmard"),
    pytest.param([RA], [METHOTREXATE], None, None, id="ra-after-methotrexate"),
    pytest.param([RA], [SULFASALAZINE], None, None, id="ra-after-sulfasalazine-brand"),
    pytest.param([condition("M05.79", ICD10CM)], [METHOTREXATE], None, None, id="ra-icd-range"),
    pytest.param([], [METHOTREXATE], concept({"system": SNOMED, "code": "69896004"}), None, id="ra-as-order-reason"),
    pytest.param([RA, NOMID], [], None, None, id="nomid-needs-no-dmard"),
    pytest.param([condition("69896004", clinical="resolved")], [METHOTREXATE], None, "no-indication",
                 id="resolved-ra"),
])
def test_indication(knowledge, conditions, medications, reason, fires):
    order = med_request()
    if reason:
        order["reasonCode"] = [reason]
    observations = [RECENT_KIDNEY, RECENT_ANC, weight(70)]
    found = [f for f in run(knowledge, context(order, conditions=conditions, medications=medications,
                                               observations=observations))
             if f.rule != "anakinra-blood-count-monitoring"]
    assert rules(found) == (["anakinra-indication"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("COND", "info", "summary")
        if fires == "no-indication":
            assert finding.summary == "No indication for anakinra recorded (used for RA or NOMID)"
        else:
            assert "no earlier conventional synthetic DMARDs" in finding.summary


def test_indication_by_reason_reference(knowledge):
    order = med_request()
    order["reasonReference"] = [{"reference": "Condition/ra"}]
    ctx = context(order, conditions=[{**RA, "clinicalStatus": {"coding": [{"code": "inactive"}]}}],
                  medications=[METHOTREXATE], observations=[RECENT_KIDNEY, RECENT_ANC])
    assert run(knowledge, ctx) == []


def test_dmard_by_rxnorm_code(knowledge):
    leflunomide = current_med("lef", concept({"system": RXNORM, "code": "27169"}), status="completed")
    assert run(knowledge, context(med_request(), **quiet(medications=[leflunomide]))) == []
