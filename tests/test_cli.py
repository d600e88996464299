"""``fhirsvc validate``: the shipped knowledge is clean; each kind of defect is reported with its file."""

from __future__ import annotations

import json

import pytest

from fhirsvc.cli import main
from tests.knowledge.test_loader import BROKEN


@pytest.fixture(autouse=True)
def _no_extra_knowledge(monkeypatch):
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_PATH", raising=False)
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)


def test_shipped_knowledge_validates_clean(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out
    assert "ERROR" not in out


def test_structural_defect_fails_with_file_element_and_message(capsys):
    assert main(["validate", str(BROKEN / "unknown-element")]) == 1
    out = capsys.readouterr().out
    assert "ERROR: " in out and "Medication-test-drug.json: Medication.strenght: unknown element" in out


def test_defect_that_only_the_independent_validator_sees_fails(tmp_path, capsys):
    resource = {"resourceType": "Medication", "id": "test-drug", "status": "active",
                "ingredient": [{"item": {"concept": {"text": "x"}}, "isActive": "yes"}]}
    (tmp_path / "Medication-test-drug.json").write_text(json.dumps(resource))
    assert main(["validate", str(tmp_path)]) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    assert errors and all("Medication-test-drug.json" in line for line in errors)
    assert any("isActive" in line for line in errors)
