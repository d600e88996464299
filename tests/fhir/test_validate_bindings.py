"""``$validate`` checks codes in required bindings against the FHIR version's own value sets (R4 and R5).

A table of mutants of the wire types an EHR sends, each with one bad code where the binding is required, must be
refused (an error issue naming the element); the same resources unchanged, HL7's own R4 examples and every resource
the service serves stay valid; extensible and preferred bindings are not checked. Every response goes through the
validating client.
"""

from __future__ import annotations

import copy
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from fhirsvc.fhir.bindings import binding_errors
from fhirsvc.fhir.views import BASES_EXTENSION

EXAMPLES = Path(__file__).parent.parent / "cds" / "hl7_r4_examples"
SNOMED = "http://snomed.info/sct"
PATIENT = {"reference": "Patient/p1"}
QUANTITY = {"value": 100, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"

# Valid resources of the wire types, for both versions unless keyed by version: each mutant below changes one code.
R4_ORDER = {
    "resourceType": "MedicationRequest", "id": "mr", "status": "draft", "intent": "order", "priority": "routine",
    "subject": PATIENT, "medicationCodeableConcept": {"text": "anakinra 100 mg"},
    "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                           "doseAndRate": [{"doseQuantity": QUANTITY}]}],
}
R5_ORDER = {**{k: v for k, v in R4_ORDER.items() if k != "medicationCodeableConcept"},
            "medication": {"concept": {"text": "anakinra 100 mg"}}}
ALLERGY = {"resourceType": "AllergyIntolerance", "id": "a", "patient": PATIENT, "code": {"text": "latex"},
           "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
           "criticality": "high", "category": ["environment"]}
SERVICE = {"resourceType": "ServiceRequest", "id": "s", "status": "draft", "intent": "order", "subject": PATIENT}
VALID: dict[str, dict[str, Any]] = {
    "MedicationRequest": {"R4": R4_ORDER, "R5": R5_ORDER},
    "Observation": {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "creatinine"},
                    "valueQuantity": {**QUANTITY, "unit": "mg/dL", "code": "mg/dL"}},
    "AllergyIntolerance": {"R4": {**ALLERGY, "type": "allergy"}, "R5": ALLERGY},  # R5: type a CodeableConcept
    "Condition": {"resourceType": "Condition", "id": "c", "subject": PATIENT, "code": {"text": "RA"},
                  "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]}},
    "Patient": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-05-01",
                "telecom": [{"system": "phone", "value": "555", "use": "home"}],
                "name": [{"use": "official", "family": "Doe"}]},
    "Immunization": {"resourceType": "Immunization", "id": "i", "status": "completed", "vaccineCode": {"text": "MMR"},
                     "patient": PATIENT, "occurrenceDateTime": "2026-11-01"},
    "ServiceRequest": {"R4": {**SERVICE, "code": {"text": "TB test"}},
                       "R5": {**SERVICE, "code": {"concept": {"text": "TB test"}}}},
    "MedicationStatement": {
        "R4": {"resourceType": "MedicationStatement", "id": "ms", "status": "active", "subject": PATIENT,
               "medicationCodeableConcept": {"text": "methotrexate"}},
        "R5": {"resourceType": "MedicationStatement", "id": "ms", "status": "recorded", "subject": PATIENT,
               "medication": {"concept": {"text": "methotrexate"}}}},
    "Bundle": {version: {"resourceType": "Bundle", "id": "b", "type": "collection",
                         "entry": [{"fullUrl": "urn:uuid:0f1b2c3d-0000-4000-8000-000000000001", "resource": order}]}
               for version, order in (("R4", R4_ORDER), ("R5", R5_ORDER))},
}


def valid(rtype: str, version: str) -> dict:
    resource = VALID[rtype]
    return copy.deepcopy(resource.get(version, resource))


# (type, path to the code, bad value, versions): the path in the JSON, list indexes as numbers.
MUTANTS = [
    ("MedicationRequest", ["status"], "bogus-code", ("R4", "R5")),
    ("MedicationRequest", ["intent"], "prescription", ("R4", "R5")),
    ("MedicationRequest", ["priority"], "whenever", ("R4", "R5")),
    ("MedicationRequest", ["dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "comparator"], "~~", ("R4", "R5")),
    ("MedicationRequest", ["dosageInstruction", 0, "timing", "repeat", "periodUnit"], "fortnight", ("R4", "R5")),
    ("Observation", ["status"], "done", ("R4", "R5")),
    ("Observation", ["valueQuantity", "comparator"], "=<", ("R4", "R5")),
    ("AllergyIntolerance", ["clinicalStatus", "coding", 0, "code"], "current", ("R4",)),
    ("AllergyIntolerance", ["clinicalStatus", "coding", 0, "system"], SNOMED, ("R4",)),
    ("AllergyIntolerance", ["criticality"], "severe", ("R4", "R5")),
    ("AllergyIntolerance", ["category", 0], "pollen", ("R4", "R5")),
    ("AllergyIntolerance", ["type"], "sensitivity", ("R4",)),
    ("Condition", ["clinicalStatus", "coding", 0, "code"], "ongoing", ("R4",)),
    ("Patient", ["gender"], "F", ("R4", "R5")),
    ("Patient", ["telecom", 0, "system"], "mobile", ("R4", "R5")),
    ("Patient", ["name", 0, "use"], "legal", ("R4", "R5")),
    ("Immunization", ["status"], "given", ("R4", "R5")),
    ("ServiceRequest", ["status"], "pending", ("R4", "R5")),
    ("ServiceRequest", ["intent"], "request", ("R4", "R5")),
    ("MedicationStatement", ["status"], "taking", ("R4", "R5")),
    ("Bundle", ["type"], "bag", ("R4", "R5")),
    ("Bundle", ["entry", 0, "resource", "status"], "bogus-code", ("R4", "R5")),
]


def mutate(resource: dict, path: list, value: Any) -> dict:
    node = resource
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return resource


def fhirpath(rtype: str, path: list) -> str:
    return rtype + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def validate(fhir, version: str, resource: dict) -> dict:
    response = fhir.post(f"/fhir/{version}/{resource['resourceType']}/$validate", json=resource)
    assert response.status_code == HTTPStatus.OK
    return response.get_json()


def errors(outcome: dict) -> list[dict]:
    return [issue for issue in outcome["issue"] if issue["severity"] == "error"]


@pytest.mark.parametrize(("version", "rtype", "path", "bad"), [
    (version, rtype, path, bad) for rtype, path, bad, versions in MUTANTS for version in versions],
    ids=lambda v: v if isinstance(v, str) else ".".join(map(str, v)) if isinstance(v, list) else None)
def test_a_bad_code_in_a_required_binding_is_an_error(fhir, version, rtype, path, bad):
    outcome = validate(fhir, version, mutate(valid(rtype, version), path, bad))
    found = errors(outcome)
    assert found and all(issue["code"] == "code-invalid" for issue in found), outcome
    bound = path[:path.index("coding")] if "coding" in path else path  # a CodeableConcept is judged whole
    assert any(issue["expression"][0] == fhirpath(rtype, bound) for issue in found), outcome


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("rtype", sorted(VALID))
def test_the_same_resources_unchanged_are_valid(fhir, version, rtype):
    outcome = validate(fhir, version, valid(rtype, version))
    assert not errors(outcome), outcome


def test_text_alone_in_a_required_codeable_concept_is_an_error(fhir):
    allergy = mutate(valid("AllergyIntolerance", "R4"), ["clinicalStatus"], {"text": "active"})
    (issue,) = errors(validate(fhir, "R4", allergy))
    assert issue["expression"] == ["AllergyIntolerance.clinicalStatus"] and "text alone" in issue["diagnostics"]


def test_extensible_and_preferred_bindings_are_not_checked(fhir):
    order = valid("MedicationRequest", "R4")
    order["category"] = [{"coding": [{"system": "https://example.org/local", "code": "whatever"}]}]  # extensible
    order["language"] = "xx-nowhere"  # preferred
    assert not errors(validate(fhir, "R4", order))


def test_a_code_in_a_contained_resource_is_checked(fhir):
    order = valid("MedicationRequest", "R4")
    order["contained"] = [{"resourceType": "Medication", "id": "med", "status": "in-stock"}]
    (issue,) = errors(validate(fhir, "R4", order))
    assert issue["expression"] == ["MedicationRequest.contained[0].status"]


def hl7_examples() -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES.glob("*.json"))]


def test_hl7_r4_examples_are_valid_and_every_required_code_in_them_mutated_is_refused(fhir):
    """HL7's R4 examples (tests/cds/hl7_r4_examples) are valid; each code of theirs under a required binding, swapped
    for a code of no value set, is refused: every such mutant, found by walking each example."""
    mutants = 0
    for example in hl7_examples():
        assert not errors(validate(fhir, "R4", example)), example["id"]
        for path in coded_paths(example):
            mutated = mutate(copy.deepcopy(example), path, "not-a-code")
            assert list(binding_errors("R4", mutated)), (example["id"], path)
            mutants += 1
    assert mutants > 100
    sample = mutate(copy.deepcopy(hl7_examples()[1]), ["status"], "not-a-code")
    assert errors(validate(fhir, "R4", sample))


def coded_paths(resource: dict) -> list[list]:
    """The paths of the codes a MedicationRequest or Medication holds under a required binding in R4: the elements
    of these names (status, intent, priority; Quantity.comparator; Timing's units, days and events; the use of an
    Identifier, HumanName or ContactPoint), found anywhere in the resource."""
    required = {"status", "intent", "priority", "comparator", "periodUnit", "durationUnit", "dayOfWeek", "when", "use"}
    found: list[list] = []

    def walk(node: Any, path: list) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "when" and path[-1:] != ["repeat"]:  # Signature.when is an instant; Timing's is coded
                    walk(value, [*path, key])
                elif key in required and isinstance(value, str):
                    found.append([*path, key])
                elif key in required and isinstance(value, list) and all(isinstance(v, str) for v in value):
                    found.extend([*path, key, index] for index in range(len(value)))
                else:
                    walk(value, [*path, key])
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, [*path, index])
    walk(resource, [])
    return found


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_served_resource_holds_only_allowed_codes(open_app, version):
    base = open_app.extensions[BASES_EXTENSION][version]
    assert len(base.resources) > 50
    assert not [(key, error) for key, resource in base.resources.items()
                for error in binding_errors(version, resource)]
