"""Data-driven: a second, made-up drug added as knowledge files only (a temporary knowledge directory
loaded after the shipped one) gets the right findings with no code change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhirsvc.checks.monitoring import run_patient_view
from fhirsvc.knowledge import load_knowledge
from tests.checks.conftest import (
    RA,
    allergy,
    concept,
    context,
    current_med,
    date_ago,
    dosage,
    med_request,
    observation,
    one,
    rules,
    run,
)
from tests.conftest import KNOWLEDGE_DIR

LOCAL = "urn:example:codes"
BASE = "https://example.org/fhir/"
VALUE_SET_EXT = "https://fhirsvc.org/fhir/StructureDefinition/value-set"
SECTION_EXT = "https://fhirsvc.org/fhir/StructureDefinition/source-section"


def value_set(vid: str, title: str, concepts: list[tuple[str, str, list[str]]]) -> dict:
    return {"resourceType": "ValueSet", "id": vid, "url": f"{BASE}ValueSet/{vid}", "version": "1.0.0",
            "name": vid.title().replace("-", ""), "title": title, "status": "active",
            "compose": {"include": [{"system": LOCAL, "concept": [
                {"code": code, "display": display, **({"designation": [{"value": n} for n in names]} if names else {})}
                for code, display, names in concepts]}]}}


def section(text: str) -> list[dict]:
    return [{"url": SECTION_EXT, "valueString": text}]


def code(value: str, display: str, vs: str | None = None) -> dict:
    return {**({"extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{BASE}ValueSet/{vs}"}]} if vs else {}),
            "coding": [{"system": LOCAL, "code": value, "display": display}], "text": display}


def days(value: float) -> dict:
    return {"value": value, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}


EXAMPLE_MONITORING = [  # made up: a liver test every 2 weeks for 8 weeks, then monthly to 6 months; a lung test first
    value_set("examplumab-liver-test", "Liver test (made-up)", [("LT-1", "liver enzymes", [])]),
    value_set("examplumab-lung-test", "Lung test (made-up)", [("LU-1", "lung function", [])]),
    {"resourceType": "ActivityDefinition", "id": "examplumab-liver-panel", "extension": section("Monitoring"),
     "url": f"{BASE}ActivityDefinition/examplumab-liver-panel", "status": "active", "kind": "ServiceRequest",
     "intent": "proposal", "code": code("LP-1", "Liver panel")},
    {"resourceType": "PlanDefinition", "id": "examplumab-monitoring", "extension": section("Monitoring"),
     "url": f"{BASE}PlanDefinition/examplumab-monitoring", "status": "active",
     "description": "Liver tests every 2 weeks for 8 weeks, then monthly up to 6 months. A lung test first.",
     "relatedArtifact": [{"type": "documentation",
                          "resourceReference": {"reference": "MedicationKnowledge/examplumab"}}],
     "action": [
         {"id": "start", "title": "Start examplumab"},
         {"id": "liver-early", "title": "Liver test every 2 weeks", "extension": section("Monitoring > Liver"),
          "code": code("LT-1", "Liver test", "examplumab-liver-test"),
          "relatedAction": [{"targetId": "start", "relationship": "after-start"}],
          "timingTiming": {"repeat": {"count": 4, "frequency": 1, "period": 2, "periodUnit": "wk"}},
          "definitionCanonical": f"{BASE}ActivityDefinition/examplumab-liver-panel"},
         {"id": "liver-late", "title": "Liver test monthly", "extension": section("Monitoring > Liver"),
          "code": code("LT-1", "Liver test", "examplumab-liver-test"),
          "relatedAction": [{"targetId": "start", "relationship": "after-start"}],
          "timingTiming": {"repeat": {"boundsRange": {"low": days(56), "high": days(183)}, "frequency": 1,
                                      "period": 1, "periodUnit": "mo"}},
          "definitionCanonical": f"{BASE}ActivityDefinition/examplumab-liver-panel"},
         {"id": "lung-first", "title": "Lung test before starting", "extension": section("Monitoring > Lungs"),
          "code": code("LU-1", "Lung test", "examplumab-lung-test"),
          "relatedAction": [{"targetId": "start", "relationship": "before-start"}]}]},
]

EXAMPLE_DRUG = [
    value_set("examplumab-products", "Examplumab products",
              [("EX-1", "examplumab", ["Exampla"]), ("EX-2", "examplumab 20 mg/mL vial", ["Exampla"])]),
    value_set("examplastatins", "Examplastatins (made-up class)",
              [("ST-1", "examplastatin", ["Statexa"]), ("ST-2", "otherstatin", [])]),
    {"resourceType": "ClinicalUseDefinition", "id": "examplumab-interaction-examplastatins",
     "extension": section("Interactions"), "type": "interaction",
     "interaction": {"interactant": [{"itemCodeableConcept": {
         "extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{BASE}ValueSet/examplastatins"}],
         "text": "Examplastatins"}}],
         "management": [{"text": "Do not combine examplumab with examplastatins."}]}},
    {"resourceType": "ClinicalUseDefinition", "id": "examplumab-contraindication-allergy",
     "extension": section("Allergies"), "type": "contraindication",
     "contraindication": {"diseaseSymptomProcedure": {"concept": {
         "extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{BASE}ValueSet/examplumab-products"}],
         "text": "Allergy to examplumab"}}}},
    {"resourceType": "MedicationKnowledge", "id": "examplumab", "extension": section("Examplumab monograph"),
     "code": {"extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{BASE}ValueSet/examplumab-products"}],
              "coding": [{"system": LOCAL, "code": "EX-1", "display": "examplumab"}], "text": "examplumab"},
     "status": "active", "name": ["examplumab", "Exampla"],
     "clinicalUseIssue": [{"reference": "ClinicalUseDefinition/examplumab-interaction-examplastatins"},
                          {"reference": "ClinicalUseDefinition/examplumab-contraindication-allergy"}],
     "indicationGuideline": [{"dosingGuideline": [{
         "id": "daily-standard", "extension": section("Dosage"),
         "dosage": [{"type": {"text": "standard"}, "dosage": [{
             "text": "40 mg once a day.",
             "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
             "doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg", "system": "http://unitsofmeasure.org",
                                               "code": "mg"}}],
             "maxDosePerPeriod": [{"numerator": {"value": 40, "unit": "mg", "system": "http://unitsofmeasure.org",
                                                 "code": "mg"},
                                   "denominator": {"value": 1, "unit": "day", "system": "http://unitsofmeasure.org",
                                                   "code": "d"}}]}]}]}]}],
     "definitional": {"ingredient": [{"item": {"concept": {"text": "examplumab"}}, "strengthRatio": {
         "numerator": {"value": 20, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
         "denominator": {"value": 1, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}}]}},
]


@pytest.fixture(scope="module")
def two_drugs(tmp_path_factory) -> object:
    directory: Path = tmp_path_factory.mktemp("second-drug")
    for resource in [*EXAMPLE_DRUG, *EXAMPLE_MONITORING]:
        path = directory / f"{resource['resourceType']}-{resource['id']}.json"
        path.write_text(json.dumps(resource, indent=2), encoding="utf-8")
    return load_knowledge([KNOWLEDGE_DIR, directory])


EXAMPLUMAB = concept({"system": LOCAL, "code": "EX-1"})
STATIN = concept({"system": LOCAL, "code": "ST-1", "display": "examplastatin 10 mg tablet"})


def test_the_second_drug_is_loaded_beside_the_shipped_one(two_drugs):
    assert {mk["id"] for mk in two_drugs.of_type("MedicationKnowledge")} == {"anakinra", "examplumab"}


@pytest.mark.parametrize(("dose", "fires"), [(dosage(40, "mg"), False), (dosage(41, "mg"), True),
                                             (dosage(2, "mL"), False), (dosage(2.05, "mL"), True)],
                         ids=["40-mg", "41-mg", "2-mL", "2.05-mL"])
def test_maximum_daily_dose_from_its_knowledge(two_drugs, dose, fires):
    found = run(two_drugs, context(med_request(medication=EXAMPLUMAB, dosages=[dose])))
    assert rules(found) == (["examplumab-high-dose"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.drug, finding.topic, finding.indicator) == ("examplumab", "DOSEH", "warning")
        assert "40 mg/day" in finding.summary and finding.section == "Dosage"


def test_recognised_by_name_in_text(two_drugs):
    order = med_request(medication=concept(text="Exampla 100 mg"), dosages=[dosage(100, "mg")])
    assert one(run(two_drugs, context(order)), "examplumab-high-dose").drug == "examplumab"


def test_allergy_contraindication_from_its_knowledge(two_drugs):
    found = run(two_drugs, context(med_request(medication=EXAMPLUMAB, dosages=[dosage(40, "mg")]),
                                   allergies=[allergy(text="Exampla"), allergy(text="latex", aid="alg-2")]))
    finding = one(found, "examplumab-allergy-contraindication")
    assert (finding.drug, finding.topic, finding.indicator, finding.section) == ("examplumab", "ALGY", "critical",
                                                                                 "Allergies")
    assert rules(found) == ["examplumab-allergy-contraindication"]  # no latex card: its knowledge has no latex warning


def test_interaction_from_its_knowledge(two_drugs):
    found = run(two_drugs, context(med_request(medication=EXAMPLUMAB, dosages=[dosage(40, "mg")]),
                                   medications=[current_med("st", STATIN)]))
    finding = one(found, "examplumab-interaction:examplumab-interaction-examplastatins")
    assert (finding.drug, finding.topic, finding.indicator) == ("examplumab", "DRG", "warning")
    assert "examplastatin" in finding.summary


def test_reverse_interaction_from_its_knowledge(two_drugs):
    order = med_request("st-new", concept(text="Statexa 10 mg"), dosages=[dosage(10, "mg")])
    found = run(two_drugs, context(order, medications=[current_med("ex", EXAMPLUMAB)]))
    finding = one(found, "examplumab-interaction-reverse:examplumab-interaction-examplastatins")
    assert (finding.drug, finding.topic, finding.indicator, finding.order_id) == ("examplumab", "DRG", "warning",
                                                                                  "st-new")


def test_the_shipped_drug_is_unchanged_beside_it(two_drugs):
    order = med_request(dosages=[dosage(101, "mg")])
    found = run(two_drugs, context(order, conditions=[RA], observations=[]))
    assert "anakinra-max-daily-dose" in rules(found) and all(f.drug == "anakinra" for f in found)


def on_examplumab(knowledge, started_days_ago: int, *tests: dict) -> list:
    """patient-view for a patient on examplumab since ``started_days_ago`` days, with these test results."""
    therapy = current_med("ex-cur", EXAMPLUMAB, authoredOn=date_ago(started_days_ago))
    return run_patient_view(context(medications=[therapy], observations=list(tests)), knowledge)


LUNG = observation("LU-1", 90, "%", days=60, system=LOCAL, oid="lung")


@pytest.mark.parametrize(("started", "liver_days_ago", "due", "interval"), [
    (30, 14, False, "every 2 weeks"), (30, 15, True, "every 2 weeks"),  # first 8 weeks: every 14 days
    (70, 31, False, "every month"), (70, 32, True, "every month"),  # then monthly (31 whole days)
    (200, 90, False, None),  # past 6 months: nothing
], ids=["2wk-14d", "2wk-15d", "monthly-31d", "monthly-32d", "past-schedule"])
def test_patient_view_reads_the_second_drugs_monitoring_plan(two_drugs, started, liver_days_ago, due, interval):
    liver = observation("LT-1", 30, "U/L", days=liver_days_ago, system=LOCAL, oid="liver")
    found = on_examplumab(two_drugs, started, liver, LUNG)
    assert rules(found) == (["examplumab-monitoring-overdue"] if due else [])
    if due:
        finding = found[0]
        assert (finding.drug, finding.topic, finding.indicator) == ("examplumab", "LAB", "info")
        assert interval in finding.summary and finding.section == "Monitoring > Liver"
        (suggestion,) = finding.suggestions
        assert suggestion.action == "create" and suggestion.resource["code"]["coding"][0]["code"] == "LP-1"
        assert suggestion.resource["subject"] == {"reference": "Patient/pat-1"}


def test_patient_view_baseline_of_the_second_drug_has_no_order_to_suggest(two_drugs):
    liver = observation("LT-1", 30, "U/L", days=3, system=LOCAL, oid="liver")
    found = on_examplumab(two_drugs, 30, liver)
    finding = one(found, "examplumab-monitoring-baseline")
    assert finding.drug == "examplumab" and "Lung test never measured" in finding.summary
    assert finding.suggestions == () and finding.section == "Monitoring > Lungs"


def test_patient_view_says_nothing_about_the_shipped_drug_for_a_patient_on_the_second(two_drugs):
    found = on_examplumab(two_drugs, 30)
    assert found and {f.drug for f in found} == {"examplumab"}
