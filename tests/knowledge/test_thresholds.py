"""The rules' fixed thresholds (``rule-threshold`` on a registry action, ``knowledge.rules.threshold``): the checks
use the registry's numbers, a drug without a registry falls back to another registry's, a missing or malformed one
stops the knowledge from loading, the rule list shows them, and no site configuration changes them."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from fhirsvc.canonical import EXT_RULE_THRESHOLD
from fhirsvc.errors import KnowledgeError
from fhirsvc.evaluation.rules import catalogue
from fhirsvc.knowledge import Knowledge, load_knowledge
from fhirsvc.knowledge.rules import THRESHOLDS, threshold
from fhirsvc.knowledge.site import parse_site_config
from tests.checks.conftest import (
    RECENT_ANC,
    RECENT_KIDNEY,
    concept,
    context,
    med_request,
    observation,
    only,
    patient,
    quiet,
    run,
)
from tests.checks.test_second_drug import EXAMPLE_DRUG, EXAMPLUMAB, section
from tests.conftest import KNOWLEDGE_DIR

REGISTRY = "PlanDefinition-anakinra-order-checks.json"
PREGNANT = concept({"system": "http://loinc.org", "code": "LA15173-0", "display": "Pregnant"})
# Each threshold moved in a copy of the knowledge: the shipped value, and the one the copy declares.
MOVED = {"seniors-age": (65, 70), "fever-celsius": (38.0, 39.0), "neutrophil-count": (1.5, 1.0),
         "pregnancy-status-max-age": (42, 4)}


def _registry(folder: Path) -> dict:
    return json.loads((folder / REGISTRY).read_text(encoding="utf-8"))


def _extensions(registry: dict) -> dict[str, dict]:
    """The rule-threshold extensions of a registry by code (the dicts themselves, to be changed in place)."""
    found = {}
    for action in registry["action"]:
        for extension in action.get("extension") or ():
            if extension["url"] == EXT_RULE_THRESHOLD:
                parts = {p["url"]: p for p in extension["extension"]}
                found[parts["code"]["valueCode"]] = extension
    return found


def _value(extension: dict) -> dict:
    return next(p for p in extension["extension"] if p["url"] == "value")["valueQuantity"]


def _copy(tmp_path: Path, change) -> Path:
    """A copy of the shipped knowledge whose registry ``change(registry)`` edits."""
    folder = shutil.copytree(KNOWLEDGE_DIR, tmp_path / "knowledge")
    registry = _registry(folder)
    change(registry)
    (folder / REGISTRY).write_text(json.dumps(registry, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder


def _move_all(registry: dict) -> None:
    for code, extension in _extensions(registry).items():
        _value(extension)["value"] = MOVED[code][1]


@pytest.fixture(scope="module")
def moved(tmp_path_factory) -> Knowledge:
    return load_knowledge([_copy(tmp_path_factory.mktemp("moved"), _move_all)])


def test_the_shipped_registry_declares_each_threshold_on_its_rule_with_its_source(knowledge):
    registry = _registry(KNOWLEDGE_DIR)
    declared = _extensions(registry)
    assert set(declared) == set(THRESHOLDS) == set(MOVED)
    for code, (shipped, _) in MOVED.items():
        found = threshold(knowledge, "anakinra", code)
        assert (found.value, type(found.value)) == (shipped, type(shipped))
        assert found.unit == THRESHOLDS[code][1] and found.source
    assert "docs/cds-checks.md" in threshold(knowledge, "anakinra", "fever-celsius").source
    assert "SECTION 3 of 4 \u203a For Seniors" in threshold(knowledge, "anakinra", "seniors-age").source
    assert "This service's reading, not the contract's" in threshold(knowledge, "anakinra",
                                                                     "pregnancy-status-max-age").source


def _seniors(years: int) -> dict:
    return {"pat": patient(years), **quiet()}


def _fever(celsius: float) -> dict:
    return quiet(observations=[observation("8310-5", celsius, "Cel", hours=6, oid="temp"), RECENT_KIDNEY,
                               RECENT_ANC])


def _anc(count: float) -> dict:
    return quiet(observations=[observation("751-8", count, "10*9/L", 3, oid="anc"), RECENT_KIDNEY])


def _pregnancy_status(days: int) -> dict:
    return quiet(observations=[observation("82810-3", None, None, days, oid="preg", value_concept=PREGNANT),
                               RECENT_KIDNEY, RECENT_ANC])


@pytest.mark.parametrize(("rule", "between", "beyond", "fact", "words"), [
    pytest.param("anakinra-seniors", _seniors(67), _seniors(72), ("threshold_years", 70), "70", id="seniors-age"),
    pytest.param("anakinra-active-infection", _fever(38.5), _fever(39.2), ("threshold_celsius", 39.0), "39 \u00b0C",
                 id="fever-celsius"),
    pytest.param("anakinra-neutropenia", _anc(1.2), _anc(0.8), ("threshold_10e9_per_l", 1.0), "below 1 \u00d7",
                 id="neutrophil-count"),
    pytest.param("anakinra-pregnancy", _pregnancy_status(60), _pregnancy_status(20), None, None,
                 id="pregnancy-status-max-age"),
])
def test_the_checks_use_the_registrys_thresholds(knowledge, moved, rule, between, beyond, fact, words):
    """A value between the shipped threshold and the moved one gives the card with the shipped knowledge and none
    with the moved one; beyond both, the moved knowledge's card states its number."""
    order = med_request()
    assert len(only(run(knowledge, context(order, **between)), rule)) == 1
    assert only(run(moved, context(order, **between)), rule) == []
    (finding,) = only(run(moved, context(order, **beyond)), rule)
    if fact is not None:
        assert finding.facts[fact[0]] == fact[1]
        assert words in finding.summary + finding.detail


SENIORS_WARNING = {
    "resourceType": "ClinicalUseDefinition", "id": "examplumab-warning-seniors",
    "extension": section("Examplumab monograph \u203a For Seniors"), "type": "warning",
    "warning": {"description": "Older patients may get more infections.", "code": {"text": "Older patients"}}}


def _second_drug(folder: Path) -> Path:
    """A made-up drug without a rule registry, with a seniors warning (knowledge files only)."""
    folder.mkdir()
    drug = copy.deepcopy(EXAMPLE_DRUG)
    medication = next(r for r in drug if r["resourceType"] == "MedicationKnowledge")
    medication["clinicalUseIssue"].append({"reference": f"ClinicalUseDefinition/{SENIORS_WARNING['id']}"})
    for resource in [*drug, SENIORS_WARNING]:
        path = folder / f"{resource['resourceType']}-{resource['id']}.json"
        path.write_text(json.dumps(resource, indent=2), encoding="utf-8")
    return folder


def test_a_drug_without_a_registry_reads_the_threshold_another_registry_declares(tmp_path):
    second = _second_drug(tmp_path / "second")
    shipped = load_knowledge([KNOWLEDGE_DIR, second])
    moved = load_knowledge([_copy(tmp_path, _move_all), second])
    assert threshold(shipped, "examplumab", "seniors-age").value == 65
    assert threshold(moved, "examplumab", "seniors-age").value == 70
    order = med_request("ex-1", EXAMPLUMAB)
    (finding,) = only(run(shipped, context(order, pat=patient(67))), "examplumab-geriatric")
    assert finding.facts["threshold_years"] == 65
    assert only(run(moved, context(order, pat=patient(67))), "examplumab-geriatric") == []


def _remove(registry: dict, code: str) -> dict:
    """Take a threshold's extension off its action; the extension."""
    extension = _extensions(registry)[code]
    for action in registry["action"]:
        action["extension"] = [e for e in action.get("extension") or () if e is not extension]
    return extension


def _drop(code: str):
    return lambda registry: _remove(registry, code)


def _set(code: str, part: str, key: str, value) -> object:
    def change(registry: dict) -> None:
        found = next(p for p in _extensions(registry)[code]["extension"] if p["url"] == part)
        target = found["valueQuantity"] if part == "value" else found
        target[key] = value
    return change


def _move_to_another_rule(registry: dict) -> None:
    extension = _remove(registry, "seniors-age")
    next(a for a in registry["action"] if a["id"] == "anakinra-children")["extension"].append(extension)


@pytest.mark.parametrize(("change", "message"), [
    pytest.param(_drop("fever-celsius"), "no rule registry declares the threshold 'fever-celsius' (on the action of "
                 "rule 12, in UCUM 'Cel')", id="missing"),
    pytest.param(_set("neutrophil-count", "comparator", "valueCode", "="), "comparator '=': must be one of",
                 id="comparator"),
    pytest.param(_set("fever-celsius", "value", "code", "[degF]"), "the unit must be UCUM 'Cel'", id="unit"),
    pytest.param(_set("seniors-age", "source", "valueString", " "), "source: where the number comes from",
                 id="no-source"),
    pytest.param(_set("seniors-age", "code", "valueCode", "seniors-age-years"),
                 "code 'seniors-age-years': no check reads such a threshold", id="unknown-code"),
    pytest.param(_move_to_another_rule, "the threshold 'seniors-age' belongs to the action of rule 11, not of 10",
                 id="another-rule"),
])
def test_a_missing_or_malformed_threshold_stops_the_knowledge_from_loading(tmp_path, change, message):
    folder = _copy(tmp_path, change)
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge([folder])
    assert message in str(raised.value)
    if "declares" not in message:  # a malformed one names its file and its rule's action
        assert f"{REGISTRY}: PlanDefinition.action[anakinra-" in str(raised.value)


def test_the_rule_list_shows_each_rules_thresholds(knowledge, moved):
    for known, index in ((knowledge, 0), (moved, 1)):
        listed = {r["id"]: r["thresholds"] for r in catalogue(known)}
        assert {rule_id for rule_id, found in listed.items() if found} == {
            "anakinra-seniors", "anakinra-active-infection", "anakinra-neutropenia", "anakinra-pregnancy"}
        (fever,) = listed["anakinra-active-infection"]
        assert (fever["code"], fever["comparator"], fever["value"], fever["unit"]) == (
            "fever-celsius", ">=", MOVED["fever-celsius"][index], "Cel")
        assert fever["source"] == threshold(known, "anakinra", "fever-celsius").source
        assert [t["value"] for t in listed["anakinra-seniors"]] == [MOVED["seniors-age"][index]]


def test_a_site_configuration_cannot_change_a_threshold(knowledge):
    problems: list[str] = []
    parse_site_config({"version": "v1", "rules": {"anakinra-active-infection": {"fever-celsius": 39},
                                                  "anakinra-seniors": {"seniors-age": 70}}}, knowledge, problems)
    assert problems == [
        "rules.anakinra-active-infection.fever-celsius: no such setting of this rule (it accepts enabled, indicator, "
        "reason, fever-window-hours)",
        "rules.anakinra-seniors.seniors-age: no such setting of this rule (it accepts enabled, indicator, reason)"]
