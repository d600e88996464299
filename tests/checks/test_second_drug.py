"""Data-driven: a second, made-up drug added as knowledge files only (a temporary knowledge directory
loaded after the shipped one) gets the right findings with no code change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhirsvc.knowledge import load_knowledge
from tests.checks.conftest import (
    RA,
    allergy,
    concept,
    context,
    current_med,
    dosage,
    med_request,
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
    for resource in EXAMPLE_DRUG:
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
    assert rules(found) == (["high-dose"] if fires else [])
    if fires:
        finding = found[0]
        assert (finding.drug, finding.topic, finding.indicator) == ("examplumab", "DOSEH", "warning")
        assert "40 mg/day" in finding.summary and finding.section == "Dosage"


def test_recognised_by_name_in_text(two_drugs):
    order = med_request(medication=concept(text="Exampla 100 mg"), dosages=[dosage(100, "mg")])
    assert one(run(two_drugs, context(order)), "high-dose").drug == "examplumab"


def test_allergy_contraindication_from_its_knowledge(two_drugs):
    found = run(two_drugs, context(med_request(medication=EXAMPLUMAB, dosages=[dosage(40, "mg")]),
                                   allergies=[allergy(text="Exampla"), allergy(text="latex", aid="alg-2")]))
    finding = one(found, "allergy-contraindication")
    assert (finding.drug, finding.topic, finding.indicator, finding.section) == ("examplumab", "ALGY", "critical",
                                                                                 "Allergies")
    assert rules(found) == ["allergy-contraindication"]  # no latex card: its knowledge has no latex warning


def test_interaction_from_its_knowledge(two_drugs):
    found = run(two_drugs, context(med_request(medication=EXAMPLUMAB, dosages=[dosage(40, "mg")]),
                                   medications=[current_med("st", STATIN)]))
    finding = one(found, "interaction:examplumab-interaction-examplastatins")
    assert (finding.drug, finding.topic, finding.indicator) == ("examplumab", "DRG", "warning")
    assert "examplastatin" in finding.summary


def test_reverse_interaction_from_its_knowledge(two_drugs):
    order = med_request("st-new", concept(text="Statexa 10 mg"), dosages=[dosage(10, "mg")])
    found = run(two_drugs, context(order, medications=[current_med("ex", EXAMPLUMAB)]))
    finding = one(found, "interaction-reverse:examplumab-interaction-examplastatins")
    assert (finding.drug, finding.topic, finding.indicator, finding.order_id) == ("examplumab", "DRG", "warning",
                                                                                  "st-new")


def test_the_shipped_drug_is_unchanged_beside_it(two_drugs):
    order = med_request(dosages=[dosage(101, "mg")])
    found = run(two_drugs, context(order, conditions=[RA], observations=[]))
    assert "high-dose" in rules(found) and all(f.drug == "anakinra" for f in found)
