"""Medication recognition (table-driven): codes first, then whole-word names in displays and text;
medicationReference through the resolved Medications, ``contained`` or the reference's display; class
membership of vaccines and TNF inhibitors by code or name."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from fhirsvc.checks.config import VS_LIVE_VACCINES, VS_TNF_INHIBITORS
from fhirsvc.checks.reading.resources import is_object
from fhirsvc.checks.recognition import (
    in_value_set,
    medication_code,
    medication_concepts,
    medication_reference,
    recognize,
)
from fhirsvc.drugmodel.profile import drug_profiles
from fhirsvc.evaluation.references import resolve_medications
from fhirsvc.terminology import ATC, CVX, NDC, RXNORM, SNOMED
from tests.checks.conftest import concept, med_request


@pytest.fixture(scope="module")
def drugs(knowledge):
    return drug_profiles(knowledge)


def names(found):
    return [d.id for d in found]


KINERET_MED = {"resourceType": "Medication", "id": "ehr-med-0001",
               "code": concept({"system": NDC, "code": "66658-0234-07", "display": "KINERET 100 MG/0.67ML SOSY"})}
KINERET_MED_TEXT = {"resourceType": "Medication", "id": "m2", "code": concept(text="ANAKINRA 100 MG/0.67 ML SC SOSY")}


@pytest.mark.parametrize(("resource", "referenced", "expected"), [
    pytest.param(med_request(medication=concept({"system": RXNORM, "code": "72435"})), {}, ["anakinra"],
                 id="rxnorm-ingredient-code"),
    pytest.param(med_request(medication=concept({"system": NDC, "code": "66658-234-07"})), {}, ["anakinra"],
                 id="ndc-hyphenated"),
    pytest.param(med_request(medication=concept({"system": RXNORM, "code": "727713"})), {}, ["anakinra"],
                 id="rxnorm-clinical-drug-code-alone"),
    pytest.param(med_request(medication=concept({"system": RXNORM, "code": "727714"})), {}, ["anakinra"],
                 id="rxnorm-branded-drug-code-alone"),
    pytest.param(med_request(medication=concept({"system": NDC, "code": "66658023428"})), {}, ["anakinra"],
                 id="ndc-11-digit"),
    pytest.param(med_request(medication=concept({"system": SNOMED, "code": "385549000"})), {}, ["anakinra"],
                 id="snomed-substance"),
    pytest.param(med_request(medication=concept({"system": ATC, "code": "L04AC03"})), {}, ["anakinra"],
                 id="atc"),
    pytest.param(med_request(medication=concept(text="Kineret 100 mg/0.67 mL prefilled syringe")), {}, ["anakinra"],
                 id="brand-in-text"),
    pytest.param(med_request(medication=concept(text="ANAKINRA 100 MG/0.67 ML SC SOSY")), {}, ["anakinra"],
                 id="ingredient-in-text-upper-case"),
    pytest.param(med_request(medication=concept({"system": RXNORM, "code": "349325",
                                                  "display": "anakinra 150 MG/ML Prefilled Syringe [Kineret]"})),
                 {}, ["anakinra"], id="unknown-rxnorm-code-display-names-it"),
    pytest.param(med_request(reference="Medication/ehr-med-0001"), {"Medication/ehr-med-0001": KINERET_MED},
                 ["anakinra"], id="reference-resolved-display"),
    pytest.param(med_request(reference="Medication/m2"), {"Medication/m2": KINERET_MED_TEXT}, ["anakinra"],
                 id="reference-resolved-text"),
    pytest.param({**med_request(reference="#med"), "contained": [{**KINERET_MED_TEXT, "id": "med"}]}, {},
                 ["anakinra"], id="reference-contained"),
    pytest.param({**med_request(reference="Medication/unresolved"),
                  "medicationReference": {"reference": "Medication/unresolved", "display": "Kineret"}}, {},
                 ["anakinra"], id="reference-display-only"),
    pytest.param(med_request(medication=concept(text="anakinraX 100 mg")), {}, [], id="not-a-whole-word"),
    pytest.param(med_request(medication=concept({"system": RXNORM, "code": "6851", "display": "methotrexate"})),
                 {}, [], id="other-drug"),
    pytest.param(med_request(reference="Medication/unresolved"), {}, [], id="reference-unresolved"),
    pytest.param(med_request(medication=concept()), {}, [], id="empty"),
])
def test_recognize_the_knowledge_drug(drugs, resource, referenced, expected):
    """``referenced`` as the evaluation layer resolves it (contained ones included)."""
    referenced = resolve_medications([resource], [], known=referenced)
    assert names(recognize(medication_concepts(resource, referenced), drugs)) == expected


def test_codes_come_before_names(drugs):
    """A coding of a known drug decides, even if the text names another word that is a drug name."""
    order = med_request(medication=concept({"system": NDC, "code": "66658-234-07"}, text="instead of Humira"))
    assert names(recognize(medication_concepts(order), drugs)) == ["anakinra"]


VACCINE_ORDERS = [
    pytest.param(med_request("v", concept({"system": CVX, "code": "03"})), True, id="medication-request-cvx-03"),
    pytest.param(med_request("v", concept({"system": CVX, "code": "149"})), True, id="medication-request-cvx-149"),
    pytest.param(med_request("v", concept({"system": RXNORM, "code": "999999",
                                           "display": "Measles, Mumps and Rubella Virus Vaccine Live"})), True,
                 id="medication-request-rxnorm-display"),
    pytest.param({"resourceType": "ServiceRequest", "id": "v", "status": "draft",
                  "code": concept({"system": CVX, "code": "21"})}, True, id="service-request-varicella"),
    pytest.param({"resourceType": "Immunization", "id": "v", "status": "completed",
                  "vaccineCode": concept(text="FluMist Quadrivalent")}, True, id="immunization-flumist-text"),
    pytest.param({"resourceType": "Immunization", "id": "v", "status": "completed",
                  "vaccineCode": concept({"system": CVX, "code": "141"}, text="Influenza, injectable")}, False,
                 id="inactivated-flu-is-not-live"),
    pytest.param({"resourceType": "Immunization", "id": "v", "status": "completed",
                  "vaccineCode": concept({"system": CVX, "code": "187"}, text="zoster recombinant (Shingrix)")},
                 False, id="recombinant-zoster-is-not-live"),
]


@pytest.mark.parametrize(("resource", "live"), VACCINE_ORDERS)
def test_live_vaccine_membership(knowledge, resource, live):
    assert in_value_set(medication_concepts(resource), knowledge.value_set(VS_LIVE_VACCINES)) is live


@pytest.mark.parametrize(("medication", "tnf"), [
    pytest.param(concept({"system": RXNORM, "code": "327361"}), True, id="rxnorm-adalimumab"),
    pytest.param(concept({"system": RXNORM, "code": "1602171",
                          "display": "adalimumab 40 MG/0.4ML Prefilled Syringe [Humira]"}), True,
                 id="rxnorm-scd-display"),
    pytest.param(concept(text="Enbrel 50 mg/mL SureClick"), True, id="brand-text"),
    pytest.param(concept(text="adalimumab-atto (Amjevita)"), True, id="biosimilar"),
    pytest.param(concept({"system": ATC, "code": "L04AB06"}), True, id="atc-golimumab"),
    pytest.param(concept(text="certolizumab pegol"), True, id="certolizumab"),
    pytest.param(concept(text="tocilizumab"), False, id="not-a-tnf-inhibitor"),
])
def test_tnf_membership(knowledge, medication, tnf):
    assert in_value_set([medication], knowledge.value_set(VS_TNF_INHIBITORS)) is tnf


def frozen(value):
    """``value`` with every object a read-only Mapping that is not a dict (as the knowledge holds its resources)."""
    if isinstance(value, dict):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    return [frozen(item) for item in value] if isinstance(value, list) else value


@pytest.mark.parametrize("resource", [
    med_request(medication=concept({"system": RXNORM, "code": "72435"})),
    {"resourceType": "MedicationRequest", "id": "r5",
     "medication": {"reference": {"reference": "Medication/ehr-med-0001"}, "concept": concept(text="Kineret")}},
    {"resourceType": "MedicationRequest", "id": "r4", "medicationReference": {"reference": "Medication/ehr-med-0001",
                                                                              "display": "Kineret 100 mg"}},
    {"resourceType": "MedicationRequest", "id": "odd", "medicationReference": "Medication/1", "medication": [1]},
    {"resourceType": "MedicationRequest", "id": "none"},
], ids=["r4-concept", "r5-codeable-reference", "r4-reference", "not-objects", "no-medication"])
def test_a_read_only_mapping_names_the_same_medication_as_a_dict(resource):
    referenced = {"Medication/ehr-med-0001": KINERET_MED}
    assert medication_reference(frozen(resource)) == medication_reference(resource)
    assert medication_code(frozen(resource)) == medication_code(resource)
    assert medication_concepts(frozen(resource), frozen(referenced)) == medication_concepts(resource, referenced)


@pytest.mark.parametrize(("value", "expected"), [
    ({}, True), ({"a": 1}, True), (MappingProxyType({}), True), (None, False), ([], False), ("{}", False), (0, False)])
def test_is_object_is_a_json_object_whatever_mapping_holds_it(value, expected):
    assert is_object(value) is expected
