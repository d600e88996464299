"""Fixtures of the monograph page tests: the shipped knowledge's page, and a second, made-up drug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhirsvc import create_app
from fhirsvc.knowledge import Knowledge, get_knowledge
from fhirsvc.monograph.model import Page, build_page
from tests.monograph.second_drug import resources


@pytest.fixture(scope="session")
def page(knowledge: Knowledge) -> Page:
    built = build_page(knowledge, "anakinra")
    assert built is not None
    return built


@pytest.fixture(scope="session")
def two_drug_app(tmp_path_factory):
    """The app on the shipped knowledge plus a made-up second drug (knowledge files only, no code)."""
    directory: Path = tmp_path_factory.mktemp("second-drug")
    for resource in resources():
        path = directory / f"{resource['resourceType']}-{resource['id']}.json"
        path.write_text(json.dumps(resource, indent=2), encoding="utf-8")
    feedback = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": str(directory), "FEEDBACK_DB": str(feedback)})


@pytest.fixture(scope="session")
def two_drug_knowledge(two_drug_app) -> Knowledge:
    return get_knowledge(two_drug_app)
