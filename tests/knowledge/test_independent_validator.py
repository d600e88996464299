"""The independent R5 validator finds each planted defect, at the right element, and passes valid files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fhirsvc.knowledge import independent
from fhirsvc.knowledge.independent import ValidatorNotInstalled, validate_files

CASES = Path(__file__).parent / "independent_cases"
KNOWLEDGE_DIR = Path(__file__).resolve().parents[2] / "fhirsvc" / "knowledge" / "data"

# case file -> (element path, a distinctive part of the message)
EXPECTED = {
    "boolean-as-string": ("Medication.ingredient[0].isActive", "expected boolean, got string"),
    "decimal-as-string": (
        "MedicationKnowledge.definitional.ingredient[0].strengthRatio.numerator.value",
        "expected decimal, got string",
    ),
    "string-instead-of-array": ("MedicationKnowledge.name", "expected array, got string"),
    "unknown-element": ("MedicationKnowledge.brandName", "unknown element 'brandName'"),
    "empty-object": ("MedicationKnowledge.definitional.doseForm", "ele-1"),
    "empty-string": ("MedicationKnowledge.code.coding[0].display", "empty string"),
    "bad-date": ("ValueSet.date", "invalid dateTime format"),
    "bad-status-code": (
        "MedicationKnowledge.status",
        "'bogus' is not in the required value set http://hl7.org/fhir/ValueSet/medicationknowledge-status",
    ),
    "bad-use-type-code": (
        "ClinicalUseDefinition.type",
        "'bogus' is not in the required value set http://hl7.org/fhir/ValueSet/clinical-use-definition-type",
    ),
    "missing-type": ("ClinicalUseDefinition.type", "missing required element type (min 1)"),
    "choice-given-twice": (
        "MedicationKnowledge.definitional.ingredient[0].strength[x]",
        "given more than once: strengthQuantity, strengthRatio",
    ),
    "cud-1-two-uses": ("ClinicalUseDefinition", "constraint cud-1 failed"),
    "vsd-1-include-without-system": ("ValueSet.compose.include[0]", "constraint vsd-1 failed"),
    "qty-3-code-without-system": (
        "MedicationKnowledge.definitional.ingredient[0].strengthRatio.numerator",
        "constraint qty-3 failed",
    ),
    "reference-target-not-allowed": (
        "ClinicalUseDefinition.subject[0].reference",
        "a reference to MedicationKnowledge is not allowed here",
    ),
}
VALID = sorted(p.stem for p in CASES.glob("valid-*.json"))


@pytest.fixture(scope="module")
def installed() -> None:
    """Skip, saying how to install, when the validator's definitions or packages are missing."""
    try:
        validate_files([])
    except ValidatorNotInstalled as exc:
        pytest.skip(str(exc))


def errors(case: str) -> list[tuple[str, str]]:
    """The (path, message) of each error the validator reports for one case file."""
    return [(p.path, p.message) for p in validate_files([CASES / f"{case}.json"]) if p.severity == "error"]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_planted_defect_is_reported_at_its_element(installed: None, case: str) -> None:
    path, fragment = EXPECTED[case]
    found = errors(case)
    assert any(p == path and fragment in m for p, m in found), f"expected {path}: ...{fragment}... in {found}"


@pytest.mark.parametrize("case", VALID)
def test_valid_file_has_no_problems(installed: None, case: str) -> None:
    assert validate_files([CASES / f"{case}.json"]) == []


def test_every_case_file_has_an_expectation() -> None:
    assert {p.stem for p in CASES.glob("*.json")} == set(EXPECTED) | set(VALID)


def test_problems_name_the_file_and_all_files_are_checked_in_one_call(installed: None) -> None:
    files = sorted(CASES.glob("*.json"))
    problems = validate_files(files)
    assert {Path(p.file).stem for p in problems if p.severity == "error"} == set(EXPECTED)


def test_shipped_knowledge_is_validated_quickly(installed: None) -> None:
    files = sorted(KNOWLEDGE_DIR.glob("*.json"))
    start = time.monotonic()
    validate_files(files)
    assert time.monotonic() - start < 10


def test_missing_definitions_raise_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(independent, "PACKAGE_DIR", tmp_path)
    with pytest.raises(ValidatorNotInstalled, match="make validator"):
        validate_files([CASES / "valid-medication.json"])
