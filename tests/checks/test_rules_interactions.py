"""Allergy (#1, #2), interaction (#3, #4), duplicate (#5) and reverse-direction (#19-#21) checks."""

from __future__ import annotations

import pytest

from fhirsvc.terminology import CVX, RXNORM, SNOMED
from tests.checks.conftest import (
    ANAKINRA_RXNORM,
    METHOTREXATE,
    allergy,
    concept,
    condition,
    context,
    current_med,
    date_ago,
    med_request,
    one,
    quiet,
    rules,
    run,
    stopped_med,
    when,
)

ANAKINRA = concept(ANAKINRA_RXNORM)
HUMIRA = concept({"system": RXNORM, "code": "1602171",
                  "display": "adalimumab 40 MG/0.4ML Prefilled Syringe [Humira]"})
ENBREL_TEXT = concept(text="Enbrel 50 mg/mL")


def vaccine(kind: str, rid: str = "vac-1", code: str = "03", status: str | None = None) -> dict:
    coded = concept({"system": CVX, "code": code})
    if kind == "MedicationRequest":
        return med_request(rid, coded, status=status or "draft", dosages=[])
    if kind == "ServiceRequest":
        return {"resourceType": "ServiceRequest", "id": rid, "status": status or "draft", "intent": "order",
                "code": coded}
    return {"resourceType": "Immunization", "id": rid, "status": status or "completed", "vaccineCode": coded}


# --- #1 contraindicating allergy --------------------------------------------------------------------------

@pytest.mark.parametrize(("record", "fires"), [
    pytest.param(allergy(text="E. coli"), True, id="e-coli-text"),
    pytest.param(allergy(text="Escherichia coli derived proteins"), True, id="escherichia-coli-text"),
    pytest.param(allergy({"system": SNOMED, "code": "112283007"}), True, id="e-coli-snomed"),
    pytest.param(allergy(text="Kineret"), True, id="brand"),
    pytest.param(allergy(ANAKINRA_RXNORM), True, id="anakinra-rxnorm"),
    pytest.param(allergy(text="E. coli", verification="refuted"), False, id="refuted"),
    pytest.param(allergy(text="E. coli", verification="entered-in-error"), False, id="entered-in-error"),
    pytest.param(allergy(text="E. coli", clinical="resolved"), False, id="resolved"),
    pytest.param(allergy(text="penicillin"), False, id="other-allergy"),
])
def test_contraindicating_allergy(knowledge, record, fires):
    found = run(knowledge, context(med_request(), **quiet(), allergies=[record]))
    assert rules(found) == (["anakinra-allergy"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("ALGY", "critical", "allergies")
        (delete,) = finding.suggestions
        assert (delete.action, delete.resource_id) == ("delete", "MedicationRequest/rx-1")


def test_allergy_to_a_reaction_substance_counts(knowledge):
    record = allergy(text="antibiotic reaction")
    record["reaction"] = [{"substance": concept(text="E. coli-derived protein"),
                           "manifestation": [concept(text="rash")]}]
    assert rules(run(knowledge, context(med_request(), **quiet(), allergies=[record]))) == ["anakinra-allergy"]


# --- #2 latex ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "fires"), [
    pytest.param({"allergies": [allergy(text="Latex")]}, True, id="latex-text"),
    pytest.param({"allergies": [allergy({"system": SNOMED, "code": "111088007"})]}, True, id="latex-substance"),
    pytest.param({"allergies": [allergy(text="natural rubber")]}, True, id="natural-rubber"),
    pytest.param({"conditions": [condition("69896004"), condition("300916003")]}, True, id="latex-allergy-condition"),
    pytest.param({"allergies": [allergy(text="latex", clinical="inactive")]}, False, id="inactive"),
])
def test_latex_allergy(knowledge, kwargs, fires):
    found = run(knowledge, context(med_request(), **quiet(**kwargs)))
    assert rules(found) == (["anakinra-latex-allergy"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator) == ("ALGY", "warning")


# --- #3 TNF inhibitors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("medications", "drafts", "fires"), [
    pytest.param([current_med("tnf", HUMIRA)], [], True, id="active-humira"),
    pytest.param([current_med("tnf", ENBREL_TEXT, status="on-hold")], [], True, id="on-hold-enbrel-text"),
    pytest.param([stopped_med("tnf", HUMIRA, date_ago(10))], [], False, id="stopped"),
    pytest.param([current_med("tnf", HUMIRA, status="completed")], [], False, id="completed"),
    pytest.param([], [med_request("tnf", HUMIRA)], True, id="draft-order"),
    pytest.param([], [med_request("tnf", HUMIRA, status="cancelled")], False, id="cancelled-draft"),
])
def test_tnf_inhibitor(knowledge, medications, drafts, fires):
    ctx = context(med_request(), *drafts, judged=["rx-1"], **quiet(medications=[METHOTREXATE, *medications]))
    found = run(knowledge, ctx)
    assert rules(found) == (["anakinra-tnf-inhibitor"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("DRG", "warning", "interactions")
        assert finding.facts["interactant"] == "MedicationRequest/tnf"
        deletes = [s.resource_id for s in finding.suggestions]
        expected = ["MedicationRequest/tnf", "MedicationRequest/rx-1"] if drafts else ["MedicationRequest/rx-1"]
        assert deletes == expected


# --- #4 live vaccines -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("order", "fires"), [
    pytest.param(vaccine("MedicationRequest"), True, id="medication-request-cvx"),
    pytest.param(vaccine("ServiceRequest", code="21"), True, id="service-request"),
    pytest.param(vaccine("Immunization", code="149"), True, id="immunization"),
    pytest.param(vaccine("Immunization", status="not-done"), False, id="immunization-not-done"),
    pytest.param(vaccine("Immunization", status="entered-in-error"), False, id="immunization-entered-in-error"),
    pytest.param(vaccine("Immunization", code="141"), False, id="inactivated-vaccine"),
])
def test_live_vaccine_in_the_draft(knowledge, order, fires):
    found = run(knowledge, context(med_request(), order, judged=["rx-1"], **quiet()))
    assert rules(found) == (["anakinra-live-vaccine"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.topic, finding.indicator, finding.anchor) == ("DRG", "critical", "live-vaccines")
        assert finding.suggestions[0].resource_id == f"{order['resourceType']}/vac-1"


def test_a_past_live_vaccine_in_the_medication_list_is_not_a_draft(knowledge):
    old = current_med("old-vac", concept({"system": CVX, "code": "03"}), status="active")
    assert run(knowledge, context(med_request(), **quiet(medications=[METHOTREXATE, old]))) == []


# --- #5 duplicates ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("medications", "drafts", "fires"), [
    pytest.param([current_med("k-1", ANAKINRA)], [], True, id="active"),
    pytest.param([current_med("k-1", concept(text="Kineret"), status="on-hold")], [], True, id="on-hold-text"),
    pytest.param([stopped_med("k-1", ANAKINRA, date_ago(30))], [], False, id="stopped"),
    pytest.param([current_med("rx-1", ANAKINRA)], [], False, id="same-order-saved"),
    pytest.param([], [med_request("rx-2", concept(text="anakinra 100 mg"))], True, id="second-draft"),
])
def test_duplicate_therapy(knowledge, medications, drafts, fires):
    ctx = context(med_request(), *drafts, judged=["rx-1"], **quiet(medications=[METHOTREXATE, *medications]))
    found = run(knowledge, ctx)
    assert [r for r in rules(found) if r != "anakinra-blood-count-monitoring"] == (
        ["anakinra-duplicate-therapy"] if fires else [])
    if fires:
        finding = next(f for f in found if f.rule == "anakinra-duplicate-therapy")
        assert (finding.topic, finding.indicator) == ("DUPTHPY", "warning")
        assert finding.suggestions[0].resource_id == "MedicationRequest/rx-1"


# --- #19-#21 reverse direction ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["MedicationRequest", "ServiceRequest", "Immunization"])
def test_live_vaccine_while_taking_the_drug_is_critical(knowledge, kind):
    order = vaccine(kind)
    ctx = context(order, **quiet(medications=[current_med("k-1", ANAKINRA)]))
    finding = one(run(knowledge, ctx), "anakinra-live-vaccine-on-therapy")
    assert (finding.topic, finding.indicator, finding.drug, finding.order_id) == ("DRG", "critical", "anakinra",
                                                                                   "vac-1")
    assert finding.suggestions[0].resource_id == f"{kind}/vac-1"
    assert "measles, mumps" in finding.summary


def test_live_vaccine_with_the_drug_in_the_same_draft(knowledge):
    ctx = context(vaccine("Immunization"), med_request("k-draft"), judged=["vac-1"], **quiet())
    assert rules(run(knowledge, ctx)) == ["anakinra-live-vaccine-on-therapy"]


def test_live_vaccine_on_hold_drug_counts(knowledge):
    ctx = context(vaccine("ServiceRequest"), **quiet(medications=[current_med("k-1", ANAKINRA, status="on-hold")]))
    assert rules(run(knowledge, ctx)) == ["anakinra-live-vaccine-on-therapy"]


@pytest.mark.parametrize(("days", "fires"), [(1, True), (89, True), (91, True), (92, False), (200, False)])
def test_live_vaccine_after_stopping(knowledge, days, fires):
    stopped = stopped_med("k-old", ANAKINRA, when(days))
    found = run(knowledge, context(vaccine("Immunization"), **quiet(medications=[stopped])))
    assert rules(found) == (["anakinra-live-vaccine-washout"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator, found[0].unable) == ("DRG", "warning", False)
        assert found[0].facts["days_since_end"] == days


def test_live_vaccine_after_stopping_reads_the_validity_period(knowledge):
    stopped = stopped_med("k-old", ANAKINRA, when(60), status="completed", via="validity")
    assert rules(run(knowledge, context(vaccine("MedicationRequest"), **quiet(medications=[stopped])))) == \
        ["anakinra-live-vaccine-washout"]


def test_unknown_end_date_says_unable_to_check(knowledge):
    stopped = stopped_med("k-old", ANAKINRA, None)
    finding = one(run(knowledge, context(vaccine("Immunization"), **quiet(medications=[stopped]))),
                  "anakinra-live-vaccine-washout")
    assert (finding.topic, finding.indicator, finding.unable) == ("DRG", "warning", True)
    assert finding.summary.startswith("Unable to check")


def test_live_vaccine_without_the_drug_gives_nothing(knowledge):
    assert run(knowledge, context(vaccine("Immunization"), **quiet())) == []


@pytest.mark.parametrize(("medication", "fires"), [
    pytest.param(current_med("k-1", ANAKINRA), True, id="active"),
    pytest.param(current_med("k-1", ANAKINRA, status="on-hold"), True, id="on-hold"),
    pytest.param(stopped_med("k-1", ANAKINRA, date_ago(5)), False, id="stopped"),
])
def test_tnf_inhibitor_while_taking_the_drug(knowledge, medication, fires):
    order = med_request("tnf-1", HUMIRA)
    found = run(knowledge, context(order, **quiet(medications=[medication])))
    assert rules(found) == (["anakinra-tnf-inhibitor-on-therapy"] if fires else [])
    if fires:
        assert (found[0].topic, found[0].indicator) == ("DRG", "warning")
        assert found[0].suggestions[0].resource_id == "MedicationRequest/tnf-1"
