"""The validation cache skips the R5 model validation of files whose exact text passed it before, and nothing
else: a changed (broken) file is validated again and still stops start-up with file, element and message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fhirsvc import create_app
from fhirsvc.errors import KnowledgeError
from fhirsvc.knowledge import load_knowledge, loader
from tests.conftest import KNOWLEDGE_DIR

BROKEN = Path(__file__).parent / "broken"


@pytest.fixture
def extra(tmp_path) -> Path:
    """A copy of a good extra knowledge file, to be changed by the test."""
    directory = tmp_path / "extra"
    directory.mkdir()
    (directory / "Medication-test-drug.json").write_text(json.dumps(
        {"resourceType": "Medication", "id": "test-drug", "code": {"text": "test drug"}}))
    return directory


def no_model_validation(monkeypatch) -> None:
    """From now on, any model validation fails the test."""
    class Refuse:
        @staticmethod
        def model_validate(resource):
            raise AssertionError(f"{resource['resourceType']}/{resource['id']} validated again")

    monkeypatch.setattr(loader, "r5_class", lambda rtype: Refuse)


def test_a_second_load_skips_the_model_validation_and_gives_the_same_knowledge(tmp_path, extra, monkeypatch):
    cache = tmp_path / "validated.txt"
    first = load_knowledge([KNOWLEDGE_DIR, extra], cache)
    assert len(cache.read_text().split()) == len(first.resources)
    no_model_validation(monkeypatch)
    second = load_knowledge([KNOWLEDGE_DIR, extra], cache)
    assert second.version == first.version
    assert second.resources == first.resources


def test_a_changed_file_is_validated_again_and_stops_start_up(tmp_path, extra):
    cache = tmp_path / "validated.txt"
    load_knowledge([KNOWLEDGE_DIR, extra], cache)
    shutil.copy(BROKEN / "unknown-element" / "Medication-test-drug.json", extra / "Medication-test-drug.json")
    with pytest.raises(KnowledgeError, match=r"Medication-test-drug\.json: Medication\.strenght: unknown element"):
        load_knowledge([KNOWLEDGE_DIR, extra], cache)
    with pytest.raises(KnowledgeError, match=r"Medication\.strenght: unknown element"):
        create_app({"KNOWLEDGE_PATH": str(extra), "VALIDATION_CACHE": str(cache)})


def test_a_file_that_failed_is_not_remembered(tmp_path):
    cache = tmp_path / "validated.txt"
    for _ in range(2):
        with pytest.raises(KnowledgeError, match="unknown element"):
            load_knowledge([KNOWLEDGE_DIR, BROKEN / "unknown-element"], cache)


def test_the_cache_is_keyed_by_the_models_release(tmp_path, extra, monkeypatch):
    cache = tmp_path / "validated.txt"
    load_knowledge([KNOWLEDGE_DIR, extra], cache)
    monkeypatch.setattr(loader, "_MODELS", "fhir.resources==another")
    validated = []
    real = loader.r5_class
    monkeypatch.setattr(loader, "r5_class", lambda rtype: validated.append(rtype) or real(rtype))
    load_knowledge([KNOWLEDGE_DIR, extra], cache)
    assert "Medication" in validated


def test_an_unusable_cache_file_only_means_no_cache(tmp_path, extra):
    cache = tmp_path / "a-directory"
    cache.mkdir()
    assert load_knowledge([KNOWLEDGE_DIR, extra], cache).get("Medication", "test-drug") is not None


def test_the_app_uses_the_configured_cache(tmp_path, extra):
    cache = tmp_path / "validated.txt"
    create_app({"KNOWLEDGE_PATH": str(extra), "VALIDATION_CACHE": str(cache)})
    assert cache.exists()
    create_app({"KNOWLEDGE_PATH": str(extra), "VALIDATION_CACHE": "", "FEEDBACK_DB": str(tmp_path / "f.sqlite3")})
