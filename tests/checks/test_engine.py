"""The engine: which orders are judged, isolation of failing checks, deterministic order, no patient data
in logs or card text, incoming resources never mutated."""

from __future__ import annotations

import copy
import logging

import pytest

from fhirsvc.checks.base import CHECKS, Check, Job, Run
from fhirsvc.checks.config import TOPICS
from fhirsvc.checks.engine import run_checks
from fhirsvc.terminology import CVX, RXNORM
from tests.checks.conftest import (
    ANAKINRA_RXNORM,
    NOW,
    allergy,
    anc_count,
    concept,
    condition,
    context,
    crcl,
    current_med,
    dosage,
    med_request,
    one,
    only,
    quiet,
    rules,
    run,
    weight,
)


def test_a_well_ordered_drug_gives_no_finding(knowledge):
    assert run(knowledge, context(med_request(), **quiet())) == []


def test_orders_for_unknown_drugs_give_nothing_and_are_logged_without_patient_data(knowledge, caplog):
    order = med_request("rx-9", concept({"system": RXNORM, "code": "197361", "display": "amlodipine 5 MG"}))
    with caplog.at_level(logging.INFO, logger="fhirsvc.checks.engine"):
        assert run(knowledge, context(order, **quiet())) == []
    assert "MedicationRequest/rx-9" in caplog.text
    assert "amlodipine" not in caplog.text and "Testperson" not in caplog.text


def test_order_select_judges_the_selection_only(knowledge):
    first, second = med_request("rx-1"), med_request("rx-2")
    found = run(knowledge, context(first, second, judged=["rx-2"], hook="order-select", **quiet()))
    assert {f.order_id for f in found} == {"rx-2"}
    duplicate = one(found, "anakinra-duplicate-therapy")
    assert duplicate.facts["duplicate"] == "MedicationRequest/rx-1"


def test_order_sign_judges_every_draft(knowledge):
    found = run(knowledge, context(med_request("rx-1"), med_request("rx-2"), **quiet()))
    assert [(f.rule, f.order_id) for f in found] == [("anakinra-duplicate-therapy", "rx-1"),
                                                     ("anakinra-duplicate-therapy", "rx-2")]


def test_a_failing_check_becomes_an_unable_finding_and_the_others_still_run(knowledge, caplog):
    def explode(job):
        raise ValueError("secret value 123 of patient Testperson")

    broken = Check("anakinra-kidney-dosing", (9,), "DOSECOND", "kidney-disease", "the dose for kidney function", False,
                   explode, 9.0)
    registry = [broken if c.rule == "renal-dosing" else c for c in CHECKS]
    order = med_request(dosages=[dosage(200, "mg")])
    with caplog.at_level(logging.ERROR, logger="fhirsvc.checks.engine"):
        found = run_checks(context(order, **quiet()), knowledge, registry)
    assert rules(found) == ["anakinra-max-daily-dose", "anakinra-kidney-dosing"]
    failed = one(found, "anakinra-kidney-dosing")
    assert (failed.topic, failed.indicator, failed.unable) == ("DOSECOND", "warning", True)
    assert failed.summary.startswith("Unable to check")
    assert failed.topic_display == TOPICS["DOSECOND"]
    assert "ValueError" in caplog.text and "explode" in caplog.text
    assert "secret" not in caplog.text and "Testperson" not in caplog.text


def test_a_finding_takes_its_rule_and_topic_from_its_check_unless_it_names_another(knowledge):
    def declared(job):
        return [job.finding("info", "Declared", "detail", "", "summary")]

    def other(job):
        return [job.finding("warning", "Other", "detail", "", "summary", rule="other-rule", topic="LAB")]

    def numbered(job):
        return [job.finding("info", "Numbered", "detail", "", "summary", rule="17", topic="COND")]

    registry = [Check("declared", (1,), "DOSE", "summary", "declared", False, declared, 1.0),
                Check("overriding", (2,), "DOSE", "summary", "overriding", False, other, 2.0),
                Check("numbering", (3,), "DOSE", "summary", "numbering", False, numbered, 3.0)]
    found = run_checks(context(med_request(), **quiet()), knowledge, registry)
    # a rule the drug's registry has is named by its registry id (#1, #17); another by drug and name
    assert [(f.rule, f.topic, f.topic_display, f.summary) for f in found] == [
        ("anakinra-allergy", "DOSE", TOPICS["DOSE"], "Declared"),
        ("anakinra-other-rule", "LAB", TOPICS["LAB"], "Other"),
        ("anakinra-indication", "COND", TOPICS["COND"], "Numbered")]


def test_a_finding_outside_a_running_check_must_name_its_rule_and_topic(knowledge):
    run_ = Run(context(med_request(), **quiet()), knowledge)
    job = Job(run_, med_request(), run_.drugs[0])
    with pytest.raises(ValueError, match="rule and a topic"):
        job.finding("info", "Summary", "detail", "", "summary")
    assert job.finding("info", "Summary", "detail", "", "summary", rule="r", topic="LAB").rule == "anakinra-r"


def test_findings_come_in_a_deterministic_order(knowledge):
    vaccine = {"resourceType": "Immunization", "id": "imm-1", "status": "completed",
               "vaccineCode": concept({"system": CVX, "code": "03"})}
    order = med_request(dosages=[dosage(150, "mg", route={"coding": [{"system": "http://snomed.info/sct",
                                                                       "code": "47625008"}]})])
    ctx = context(order, vaccine, allergies=[allergy(text="latex")], conditions=[condition("46177005")],
                  observations=[anc_count(1.0)])
    first, second = run(knowledge, ctx), run(knowledge, ctx)
    assert first == second
    assert rules(first) == ["anakinra-latex-allergy", "anakinra-live-vaccine", "anakinra-max-daily-dose",
                            "anakinra-kidney-dosing", "anakinra-neutropenia",
                            "anakinra-indication", "anakinra-route", "anakinra-live-vaccine-on-therapy"]
    assert [f.order_id for f in first][-1] == "imm-1"


def test_card_text_never_contains_the_patient_name(knowledge):
    ctx = context(med_request(dosages=[dosage(1, "tablet")]), current_med("tnf", concept(text="Humira")),
                  allergies=[allergy(text="E. coli protein")], observations=[weight(20, 200), crcl(10)],
                  conditions=[condition("M04.2", "http://hl7.org/fhir/sid/icd-10-cm")])
    found = run(knowledge, ctx)
    assert found
    for finding in found:
        text = finding.summary + finding.detail + str(finding.facts)
        assert "Testperson" not in text and "Ada" not in text
        assert len(finding.summary) < 140


def test_incoming_resources_are_never_mutated(knowledge):
    order = med_request(dosages=[dosage(100, "mg", code="QD")])
    ctx = context(order, conditions=[condition("433146000")])
    before = copy.deepcopy(ctx)
    found = run(knowledge, ctx)
    assert ctx == before
    update = one(found, "anakinra-kidney-dosing").suggestions[0]
    assert update.resource is not order and update.resource["id"] == order["id"]


def test_cancelled_and_not_done_orders_are_not_judged(knowledge):
    cancelled = med_request(status="cancelled", dosages=[dosage(500, "mg")])
    not_done = {"resourceType": "Immunization", "id": "imm", "status": "not-done",
                "vaccineCode": concept({"system": CVX, "code": "03"})}
    taking = quiet(medications=[current_med("k", concept(ANAKINRA_RXNORM))])
    assert run(knowledge, context(cancelled, not_done, **taking)) == []


def test_every_finding_is_well_formed(knowledge):
    ctx = context(med_request(dosages=[dosage(3, "syringe")]), **quiet(observations=[]))
    for finding in run(knowledge, ctx):
        assert finding.topic in TOPICS and finding.topic_display == TOPICS[finding.topic]
        assert finding.section and finding.anchor and finding.drug == "anakinra"
        assert finding.facts["order"] == "MedicationRequest/rx-1"
    assert only(run(knowledge, ctx), "anakinra-max-daily-dose")[0].facts["daily_dose_mg"] == 300
    assert NOW.year == 2026
