"""Broken knowledge is rejected with a message naming the file, the element and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirsvc import create_app
from fhirsvc.errors import KnowledgeError
from fhirsvc.knowledge import load_knowledge
from tests.conftest import KNOWLEDGE_DIR

BROKEN = Path(__file__).parent / "broken"

# case directory -> (file that must be named, element, distinctive part of the message)
CASES = {
    "unknown-element": ("Medication-test-drug.json", "Medication.strenght", "unknown element"),
    "unknown-nested-element": ("Medication-test-drug.json", "Medication.code.coding[0].cod", "unknown element"),
    "dangling-reference": ("Medication-test-drug.json", "Medication.definition.reference",
                           "reference MedicationKnowledge/no-such-drug does not resolve"),
    "dangling-canonical": ("Medication-test-drug.json", "Medication.code.extension[0].valueCanonical",
                           "canonical https://fhirsvc.org/fhir/ValueSet/no-such-value-set does not resolve"),
    "duplicate-id": ("Medication-test-drug.json", "Medication.id", "duplicate id Medication/test-drug"),
    "wrong-type": ("Medication-test-drug.json", "Medication.code", 'must be a JSON object (got "test drug")'),
    "wrong-type-array": ("Medication-test-drug.json", "Medication.ingredient", "must be a JSON array"),
    "unknown-resource-type": ("Medicine-test-drug.json", "resourceType", "'Medicine' is not an R5 resource type"),
    "missing-id": ("Medication-test-drug.json", "Medication.id", "every knowledge resource needs an id"),
    "not-json": ("Medication-test-drug.json", "-", "not JSON: Expecting property name"),
    "invalid-ndc": ("Medication-test-drug.json", "Medication.code.coding[0].code", "'66658-23A-07' is not an NDC"),
    "ambiguous-ndc": ("Medication-test-drug.json", "Medication.code.coding[0].code",
                      "NDC '6665823407' (10 digits, no hyphens) can be read three ways"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_knowledge_is_rejected_with_file_element_and_message(case):
    file_name, element, message = CASES[case]
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge([KNOWLEDGE_DIR, BROKEN / case])
    matching = [p for p in raised.value.problems if Path(p.file).name == file_name and p.path == element]
    assert matching, f"no problem at {file_name}: {element}; got {raised.value.problems}"
    assert any(message in p.message for p in matching), matching
    assert f"{file_name}: {element}: " in str(raised.value)


def test_every_broken_case_has_an_expectation():
    assert {p.name for p in BROKEN.iterdir() if p.is_dir()} == set(CASES)


def test_bad_extra_knowledge_stops_app_start_up():
    with pytest.raises(KnowledgeError, match=r"Medication\.strenght: unknown element"):
        create_app({"KNOWLEDGE_PATH": str(BROKEN / "unknown-element")})


def test_extra_knowledge_directory_is_loaded(tmp_path):
    (tmp_path / "Medication-other.json").write_text(
        '{"resourceType": "Medication", "id": "other", "code": {"text": "other drug"}}')
    knowledge = load_knowledge([KNOWLEDGE_DIR, tmp_path])
    assert knowledge.get("Medication", "other")["code"]["text"] == "other drug"
    assert knowledge.by_name["other drug"] == (("Medication", "other"),)


def test_missing_directory_is_a_problem(tmp_path):
    with pytest.raises(KnowledgeError, match="no such file or directory"):
        load_knowledge([tmp_path / "absent"])


def test_knowledge_is_read_only(knowledge):
    medication = knowledge.get("Medication", "kineret")
    with pytest.raises(TypeError):
        medication["status"] = "inactive"
    with pytest.raises(AttributeError):
        medication["ingredient"].append({})
    with pytest.raises(TypeError):
        knowledge.resources[("Medication", "x")] = {}
