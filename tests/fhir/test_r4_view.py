"""The R4 view: valid R4 for two independent judges, the right doses, working links, and nothing lost."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fhirkit
import pytest
from fhirclient.models.fhirabstractbase import FHIRValidationError

from fhirsvc.fhir.r4 import DATATYPE_MARKER, R4_TYPES, XVER, build_r4_view, xver
from fhirsvc.knowledge import load_knowledge
from fhirsvc.knowledge.frozen import thaw
from tests.conftest import KNOWLEDGE_DIR

SNOMED, LOINC = "http://snomed.info/sct", "http://loinc.org"
NOT_IN_R4 = {"ClinicalUseDefinition", "PackagedProductDefinition"}


@pytest.fixture(scope="module")
def view(knowledge):
    return build_r4_view(knowledge)


@pytest.fixture(scope="module")
def mk(view):
    return view[("MedicationKnowledge", "anakinra")]


def r4_errors(resource: dict) -> list[str]:
    """What fhirkit-rs (strict R4 JSON) and fhirclient's strict R4 models find wrong with a resource."""
    errors = [f"fhirkit {i.path}: {i.message}" for i in fhirkit.validate(resource) if i.severity == "error"]
    rtype = resource["resourceType"]
    try:
        getattr(importlib.import_module(f"fhirclient.models.{rtype.lower()}"), rtype)(resource, strict=True)
    except FHIRValidationError as exc:
        errors.append(f"fhirclient: {exc}")
    return errors


def nodes(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) of a JSON tree, list indexes left out."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            yield from nodes(item, path)


def leaves(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (path, string/number/boolean) of a JSON tree, except resourceType (the type is what converts)."""
    for path, item in nodes(value):
        if isinstance(item, (str, int, float)) and path.rpartition(".")[2] != "resourceType":
            yield path, item


def leaf_key(value: Any) -> tuple[str, Any]:
    """A leaf comparable across JSON types: True is not 1, 1 is 1.0."""
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, (int, float)):
        return "number", float(value)
    return "string", value


def extensions_by_url(element: dict, url: str) -> list[dict]:
    return [ext for ext in element.get("extension", ()) if ext["url"] == url]


def sub(extension: dict, name: str) -> list[dict]:
    """The sub-extensions of a complex extension with this (relative) url."""
    return extensions_by_url(extension, name)


def guideline(mk: dict, dosing_id: str) -> dict:
    """The administrationGuidelines entry made from the R5 dosingGuideline with this id."""
    url = f"{XVER}MedicationKnowledge.indicationGuideline.dosingGuideline"
    (found,) = [g for g in mk["administrationGuidelines"] if any(e.get("id") == dosing_id
                                                                  for e in extensions_by_url(g, url))]
    return found


def dosages(entry: dict, dosage_type: str) -> list[dict]:
    return [d for group in entry["dosage"] if group["type"].get("text") == dosage_type for d in group["dosage"]]


# --- served types and validity ------------------------------------------------------------------------------


def test_the_view_serves_only_r4_types(knowledge, view):
    served = {rtype for rtype, _ in view}
    expected = {"MedicationKnowledge", "Medication", "ValueSet", "CodeSystem", "DocumentReference", "Composition",
                "PlanDefinition", "ActivityDefinition", "StructureDefinition", "DetectedIssue"}
    expected |= {rtype for rtype in ("SearchParameter", "OperationDefinition", "ConceptMap")
                 if knowledge.of_type(rtype)}
    assert served == expected
    assert served <= R4_TYPES
    assert not R4_TYPES & NOT_IN_R4
    assert set(fhirkit.RESOURCE_TYPES) >= R4_TYPES


def test_every_r4_resource_validates_with_fhirkit_and_fhirclient(view):
    problems = {f"{rtype}/{rid}": errors for (rtype, rid), resource in view.items() if (errors := r4_errors(resource))}
    assert not problems, json.dumps(problems, indent=1)


def test_ids_are_kept_and_there_is_no_meta(knowledge, view):
    for (rtype, rid), resource in knowledge.resources.items():
        if rtype == "ClinicalUseDefinition" and resource["type"] != "indication":
            assert ("DetectedIssue", rid) in view
        elif rtype in R4_TYPES:
            assert (rtype, rid) in view
    for (rtype, rid), resource in view.items():
        assert (resource["resourceType"], resource["id"]) == (rtype, rid)
        assert "meta" not in resource


def test_extensions_and_elements_are_well_formed(view):
    """ext-1 (a value or sub-extensions, not both, and a url) and ele-1 (no empty element) everywhere."""
    for key, resource in view.items():
        for path, value in nodes(resource):
            assert value not in ({}, [], ""), f"{key} {path} is empty"
            if path.rpartition(".")[2] == "extension" and isinstance(value, list):
                for extension in value:
                    values = [name for name in extension if name.startswith("value")]
                    assert extension.get("url"), f"{key} {path}: no url"
                    assert (len(values) == 1) != ("extension" in extension), f"{key} {path}: {extension['url']}"


def test_references_resolve_within_the_view_and_r5_only_targets_are_named_not_referenced(view):
    for key, resource in view.items():
        for path, value in nodes(resource):
            if path.endswith(".reference") and isinstance(value, str) and "/" in value:
                rtype, _, rid = value.partition("/")
                assert rtype not in NOT_IN_R4 and (rtype, rid) in view, f"{key} {path} {value}"


def test_packs_and_indications_are_carried_in_extensions_with_their_r5_name(mk):
    """The R5-only targets travel inlined in the cross-version extension; the Reference only names them."""
    (other,) = extensions_by_url(mk, f"{XVER}MedicationKnowledge.packaging")
    assert [e["valueReference"] for e in sub(other, "packagedProduct")] == [
        {"display": "PackagedProductDefinition/kineret-pack-28"}]
    indication = f"{XVER}MedicationKnowledge.indicationGuideline.indication"
    named = {r["valueReference"]["display"] for g in mk["administrationGuidelines"]
             for e in extensions_by_url(g, indication) for r in sub(e, "reference")}
    assert named == {f"ClinicalUseDefinition/anakinra-indication-{i}" for i in ("ra", "nomid", "dira")}


# --- MedicationKnowledge ------------------------------------------------------------------------------------


def test_rheumatoid_arthritis_adult_dose_is_100_mg_daily_with_one_max_dose_ratio(mk):
    entry = guideline(mk, "ra-adult")
    assert any(c["code"] == "69896004" and c["system"] == SNOMED
               for c in entry["indicationCodeableConcept"]["coding"])
    (dosage,) = dosages(entry, "standard")
    assert dosage["doseAndRate"][0]["doseQuantity"] == {"value": 100, "unit": "mg",
                                                        "system": "http://unitsofmeasure.org", "code": "mg"}
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert isinstance(dosage["maxDosePerPeriod"], dict)
    assert dosage["maxDosePerPeriod"]["numerator"]["value"] == 100
    assert dosage["route"]["coding"][0]["code"] == "34206005"
    (age,) = entry["patientCharacteristics"]
    assert age["characteristicCodeableConcept"]["coding"][0]["code"] == "30525-0"
    assert age["value"] == [">= 18 years"]


def test_nomid_dose_is_1_to_2_mg_per_kg_with_a_single_8_mg_per_kg_per_day_maximum(mk):
    entry = guideline(mk, "nomid-weight-based")
    assert "NOMID" in entry["indicationCodeableConcept"]["text"]
    (starting,) = dosages(entry, "starting")
    dose = starting["doseAndRate"][0]["doseRange"]
    assert (dose["low"]["value"], dose["high"]["value"], dose["high"]["code"]) == (1, 2, "mg/kg")
    maximum = starting["maxDosePerPeriod"]
    assert isinstance(maximum, dict)
    assert (maximum["numerator"]["value"], maximum["numerator"]["code"]) == (8, "mg/kg")
    assert (maximum["denominator"]["value"], maximum["denominator"]["code"]) == (1, "d")
    (split,) = dosages(entry, "split")
    assert split["timing"]["repeat"]["frequency"] == 2
    weight, age = entry["patientCharacteristics"]
    assert weight["characteristicCodeableConcept"]["coding"][0]["code"] == "29463-7"
    assert "value" not in weight
    assert age["value"] == ["0-17 years"]


def test_renal_guidelines_give_the_threshold_as_text_and_keep_it_structured(mk):
    for dosing_id in ("ra-renal-kidney-function", "nomid-renal-kidney-function"):
        entry = guideline(mk, dosing_id)
        (characteristic,) = entry["patientCharacteristics"]
        codes = {c["code"] for c in characteristic["characteristicCodeableConcept"]["coding"]}
        assert "35591-7" in codes
        assert characteristic["value"] == ["< 30 mL/min"]
        assert all(d["timing"]["repeat"]["period"] == 2 for group in entry["dosage"] for d in group["dosage"])
        (structured,) = extensions_by_url(entry, f"{XVER}MedicationKnowledge.indicationGuideline.dosingGuideline")
        (kept,) = sub(structured, "patientCharacteristic")
        (value,) = sub(kept, "value")
        assert value["valueQuantity"]["comparator"] == "<"
        assert value["valueQuantity"]["value"] == 30
    condition = guideline(mk, "ra-renal-condition")
    assert condition["patientCharacteristics"][0]["value"] == [
        "Severe kidney disease (CKD stage 4 or 5, end-stage renal disease)"]


def test_every_dosing_guideline_is_one_administration_guideline_with_its_id_and_intent(knowledge, mk):
    r5 = knowledge.get("MedicationKnowledge", "anakinra")
    r5_ids = [d["id"] for g in r5["indicationGuideline"] for d in g["dosingGuideline"]]
    assert [guideline(mk, dosing_id) for dosing_id in r5_ids]  # each found exactly once
    (structured,) = extensions_by_url(guideline(mk, "ra-adult"),
                                      f"{XVER}MedicationKnowledge.indicationGuideline.dosingGuideline")
    assert sub(structured, "treatmentIntent")[0]["valueCodeableConcept"]["text"].startswith("reduce the signs")


def test_an_indication_without_dosing_guideline_is_a_guideline_of_its_own(mk):
    url = f"{XVER}MedicationKnowledge.indicationGuideline.indication"
    dira = [g for g in mk["administrationGuidelines"]
            if any(sub(e, "reference")[0]["valueReference"]["display"].endswith("anakinra-indication-dira")
                   for e in extensions_by_url(g, url))]
    (entry,) = dira
    assert "dosage" not in entry
    assert "Interleukin-1" in entry["indicationCodeableConcept"]["text"]


def test_contraindications_reference_detected_issues_in_the_view(knowledge, view, mk):
    expected = [ref["reference"].partition("/")[2]
                for ref in knowledge.get("MedicationKnowledge", "anakinra")["clinicalUseIssue"]
                if knowledge.resolve(ref["reference"])["type"] in ("contraindication", "interaction")]
    assert [ref["reference"] for ref in mk["contraindication"]] == [f"DetectedIssue/{rid}" for rid in expected]
    severities = {view[("DetectedIssue", rid)]["severity"] for rid in expected if "contraindication" in rid}
    assert severities == {"high"}
    for rid in expected:
        issue = view[tuple(f"DetectedIssue/{rid}".split("/"))]
        assert issue["status"] == "final"
        assert issue["detail"]
        assert [ref["reference"] for ref in issue["implicated"]] == ["Medication/kineret"]


def test_interactions_are_moderate_with_their_management_as_mitigation(view):
    issue = view[("DetectedIssue", "anakinra-interaction-live-vaccines")]
    assert issue["severity"] == "moderate"
    assert issue["code"]["coding"][0] == {"system": "http://hl7.org/fhir/clinical-use-definition-type",
                                          "code": "interaction", "display": "Interaction"}
    assert "Live vaccines" in issue["detail"]
    assert issue["mitigation"][0]["action"]["text"].startswith("Don't receive a live vaccine")
    (interaction,) = extensions_by_url(issue, f"{XVER}ClinicalUseDefinition.interaction")
    (washout,) = extensions_by_url(interaction, "https://fhirsvc.org/fhir/StructureDefinition/washout-period")
    assert washout["valueDuration"]["value"] == 3


def test_warnings_and_undesirable_effects_are_linked_as_clinical_use_issues(knowledge, view, mk):
    linked = {ext["valueReference"]["reference"]
              for ext in extensions_by_url(mk, f"{XVER}MedicationKnowledge.clinicalUseIssue")}
    expected = {f"DetectedIssue/{use['id']}" for use in knowledge.of_type("ClinicalUseDefinition")
                if use["type"] in ("warning", "undesirable-effect")}
    assert linked == expected
    assert view[("DetectedIssue", "anakinra-effect-allergic-reactions")]["severity"] == "high"  # classified serious
    assert view[("DetectedIssue", "anakinra-effect-headache")]["severity"] == "low"
    assert "severity" not in view[("DetectedIssue", "anakinra-warning-drowsiness")]


def test_packaging_is_the_first_pack_and_the_other_pack_and_ndcs_travel_in_extensions(mk):
    assert mk["packaging"]["type"]["text"] == "carton"
    assert mk["packaging"]["quantity"]["value"] == 7
    ndcs = [e["valueIdentifier"]["value"] for e in extensions_by_url(
        mk["packaging"], f"{XVER}PackagedProductDefinition.identifier")]
    assert ndcs == ["66658-234-07"]
    (other,) = extensions_by_url(mk, f"{XVER}MedicationKnowledge.packaging")
    assert [e["valueIdentifier"]["value"] for e in sub(other, f"{XVER}PackagedProductDefinition.identifier")] == [
        "66658-234-28"]


def test_r5_only_medication_knowledge_elements_are_cross_version_extensions(mk):
    assert mk["synonym"] == ["anakinra", "Kineret"]
    assert mk["ingredient"][0]["isActive"] is True
    assert mk["ingredient"][0]["strength"]["denominator"]["value"] == 0.67
    urls = {ext["url"] for ext in mk["extension"]}
    assert {f"{XVER}MedicationKnowledge.storageGuideline", f"{XVER}MedicationKnowledge.intendedJurisdiction"} <= urls
    (cost,) = mk["cost"]
    assert cost["cost"]["extension"][0]["url"] == f"{XVER}MedicationKnowledge.cost.cost"
    (storage, _travel) = extensions_by_url(mk, f"{XVER}MedicationKnowledge.storageGuideline")
    celsius = [s for s in sub(storage, "environmentalSetting")
               if sub(s, "type")[0]["valueCodeableConcept"]["text"] == "temperature (Celsius)"]
    assert sub(celsius[0], "value")[0]["valueRange"]["high"]["value"] == 7.7


# --- other resources ----------------------------------------------------------------------------------------


def test_medication_uses_r4_names(view):
    medication = view[("Medication", "kineret")]
    assert medication["form"]["coding"][0]["code"] == "385219001"
    assert "itemCodeableConcept" in medication["ingredient"][0]
    assert medication["ingredient"][0]["strength"]["numerator"]["value"] == 100
    urls = {ext["url"] for ext in medication["extension"]}
    assert {f"{XVER}Medication.totalVolume", f"{XVER}Medication.definition"} <= urls


def test_document_reference_composition_and_plan_definition_use_r4_shapes(view):
    document = view[("DocumentReference", "anakinra-monograph-2015")]
    assert "subject" not in document
    assert document["context"]["related"] == [{"reference": "Medication/kineret"}]
    assert extensions_by_url(document, f"{XVER}DocumentReference.attester")
    composition = view[("Composition", "anakinra-patient-information")]
    assert "relatesTo" not in composition
    (relates,) = extensions_by_url(composition, f"{XVER}Composition.relatesTo")
    assert relates["valueRelatedArtifact"]["type"] == "derived-from"
    plan = view[("PlanDefinition", "anakinra-monitoring")]
    related = [r for action in plan["action"] for r in action.get("relatedAction", ())]
    assert related and all("actionId" in r and "targetId" not in r for r in related)
    assert all(isinstance(action.get("code", []), list) for action in plan["action"])
    assert all("resourceReference" not in artifact for artifact in plan["relatedArtifact"])


def test_structure_definitions_are_for_r4_and_r5_only_contexts_become_extension_contexts(view):
    for (rtype, _), resource in view.items():
        if rtype == "StructureDefinition":
            assert resource["fhirVersion"] == "4.0.1"
    washout = view[("StructureDefinition", "washout-period")]
    assert washout["context"] == [{"type": "extension",
                                   "expression": f"{XVER}ClinicalUseDefinition.interaction"}]


# --- nothing is silently dropped ----------------------------------------------------------------------------

# R5 leaves that the R4 rendering does not repeat verbatim, why, and how they are carried instead.
ALLOWED: dict[tuple[str, str], tuple[str, Callable[[Any, Counter, list[str]], bool]]] = {
    ("StructureDefinition", "fhirVersion"): (
        "the R4 rendering states the FHIR version it is written for (4.0.1); the R5 base serves the 5.0.0 one",
        lambda value, found, strings: value == "5.0.0"),
    ("StructureDefinition", "context.type"): (
        "a context on an R5-only element becomes an 'extension' context naming its cross-version extension",
        lambda value, found, strings: value == "element" and ("string", "extension") in found),
    ("StructureDefinition", "context.expression"): (
        "an R5-only element path is carried inside the URL of its cross-version extension",
        lambda value, found, strings: f"{XVER}{value}" in strings),
    ("ClinicalUseDefinition", "id"): (
        "an indication is folded into the MedicationKnowledge, which names it by reference",
        lambda value, found, strings: f"ClinicalUseDefinition/{value}" in strings),
    ("PackagedProductDefinition", "id"): (
        "a pack is folded into the MedicationKnowledge, which names it by reference",
        lambda value, found, strings: f"PackagedProductDefinition/{value}" in strings),
}


def r4_rendering(key: tuple[str, str], resource: Any, view: dict) -> list[dict]:
    """Where the view carries an R5 resource: its R4 twin, its DetectedIssue, or the MK it is folded into."""
    rtype, rid = key
    if rtype == "ClinicalUseDefinition" and resource["type"] != "indication":
        return [view[("DetectedIssue", rid)]]
    if rtype in NOT_IN_R4:
        return [r for (t, _), r in view.items() if t == "MedicationKnowledge"]
    return [view[key]] if key in view else []


def test_every_r5_leaf_value_appears_in_its_r4_rendering(knowledge, view):
    """Each R5 string, number and boolean is in the R4 rendering, at least as often (so a dropped repeat shows)."""
    missing = []
    for key, resource in sorted(knowledge.resources.items()):
        rendering = r4_rendering(key, resource, view)
        assert rendering, f"{key} has no R4 rendering"
        found = Counter(leaf_key(value) for r4 in rendering for _, value in leaves(r4))
        strings = [value for r4 in rendering for _, value in leaves(r4) if isinstance(value, str)]
        needed: Counter = Counter()
        for path, value in leaves(thaw(resource)):
            if isinstance(value, str) and leaf_key(value) not in found:
                value = value.replace("ClinicalUseDefinition/", "DetectedIssue/", 1)  # the CUD's R4 rendering
            needed[leaf_key(value)] += 1
            allowed = ALLOWED.get((key[0], path))
            if needed[leaf_key(value)] > found[leaf_key(value)] and not (allowed and allowed[1](value, found, strings)):
                missing.append(f"{key[0]}/{key[1]} {path} = {value!r}")
    assert not missing, "\n".join(missing)


# --- purity -------------------------------------------------------------------------------------------------


def test_building_twice_gives_equal_views_and_leaves_the_knowledge_unchanged(knowledge):
    def snapshot() -> str:
        return json.dumps({f"{rtype}/{rid}": r for (rtype, rid), r in knowledge.resources.items()}, sort_keys=True)

    before = snapshot()
    first = build_r4_view(knowledge)
    first[("MedicationKnowledge", "anakinra")]["administrationGuidelines"][0]["extension"].clear()
    second, third = build_r4_view(knowledge), build_r4_view(knowledge)
    assert second == third
    assert second != first  # the change to the first view reached neither the knowledge nor a later build
    assert snapshot() == before


# --- the generic cross-version conversion -------------------------------------------------------------------


def test_xver_turns_a_choice_into_its_base_name_and_an_r4_type_into_value_x():
    (extension,) = xver("MedicationKnowledge.cost.costCodeableConcept", {"text": "supplies"})
    assert extension == {"url": f"{XVER}MedicationKnowledge.cost.cost", "valueCodeableConcept": {"text": "supplies"}}


def test_xver_nests_backbone_elements_and_codeable_references_and_keeps_ids():
    (extension,) = xver("ClinicalUseDefinition.contraindication", {
        "id": "c1",
        "extension": [{"url": "https://example.org/x", "valueString": "kept"}],
        "diseaseSymptomProcedure": {"concept": {"text": "allergy"}},
        "comorbidity": [{"concept": {"text": "a"}}, {"reference": {"reference": "ObservationDefinition/o"}}],
    })
    assert extension["url"] == f"{XVER}ClinicalUseDefinition.contraindication"
    assert extension["id"] == "c1"
    assert extension["extension"][0] == {"url": "https://example.org/x", "valueString": "kept"}
    (disease,) = sub(extension, "diseaseSymptomProcedure")
    assert disease["extension"] == [{"url": DATATYPE_MARKER, "valueString": "CodeableReference"},
                                    {"url": "concept", "valueCodeableConcept": {"text": "allergy"}}]
    assert [e["extension"][1]["url"] for e in sub(extension, "comorbidity")] == ["concept", "reference"]


def test_xver_converts_r5_dosages_inside_values():
    ratio = {"numerator": {"value": 8, "code": "mg/kg"}, "denominator": {"value": 1, "code": "d"}}
    other = {"numerator": {"value": 400, "code": "mg"}, "denominator": {"value": 1, "code": "wk"}}
    (extension,) = xver("MedicationKnowledge.indicationGuideline.dosingGuideline.dosage.dosage", {
        "text": "as needed", "maxDosePerPeriod": [ratio, other],
        "asNeeded": True, "asNeededFor": [{"text": "flare"}, {"text": "fever"}]})
    dosage = extension["valueDosage"]
    assert dosage["maxDosePerPeriod"] == ratio
    assert dosage["asNeededCodeableConcept"] == {"text": "flare"}
    assert [e["url"] for e in dosage["extension"]] == [f"{XVER}Dosage.maxDosePerPeriod", f"{XVER}Dosage.asNeededFor"]
    assert not r4_errors({"resourceType": "MedicationKnowledge", "id": "m", "extension": [extension]})


# --- knowledge beyond the shipped files ---------------------------------------------------------------------


def test_search_parameters_of_r4_types_are_converted_and_those_of_r5_only_types_are_not_served(tmp_path):
    base = {"resourceType": "SearchParameter", "status": "active", "description": "test", "type": "token",
            "processingMode": "normal"}
    extra = {
        "mk-doseform": {**base, "code": "doseform-test", "base": ["MedicationKnowledge"],
                        "expression": "MedicationKnowledge.definitional.doseForm"},
        "cud-type": {**base, "code": "type-test", "base": ["ClinicalUseDefinition"],
                     "expression": "ClinicalUseDefinition.type"},
    }
    for rid, resource in extra.items():
        resource.update(id=rid, url=f"https://fhirsvc.org/fhir/SearchParameter/{rid}", name=rid.replace("-", ""))
        (tmp_path / f"SearchParameter-{rid}.json").write_text(json.dumps(resource))
    view = build_r4_view(load_knowledge([Path(KNOWLEDGE_DIR), tmp_path]))
    assert ("SearchParameter", "cud-type") not in view
    converted = view[("SearchParameter", "mk-doseform")]
    assert converted["expression"] == "MedicationKnowledge.doseForm"
    assert converted["xpathUsage"] == "normal"
    assert converted["_expression"]["extension"][0]["valueString"] == "MedicationKnowledge.definitional.doseForm"
    assert not r4_errors(converted)
