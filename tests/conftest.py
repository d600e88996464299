"""Shared fixtures: the app on the shipped knowledge, its test client, and the knowledge itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fhirsvc import create_app
from fhirsvc.knowledge import Knowledge, get_knowledge

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "fixtures" / "knowledge"
SHARED_DIR = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _feedback_store_outside_the_checkout(tmp_path_factory):
    """Apps built in tests keep CDS feedback (and the knowledge validation cache) in temporary files, not in
    the checkout's var/."""
    os.environ["FHIRSVC_FEEDBACK_DB"] = str(tmp_path_factory.mktemp("feedback") / "default.sqlite3")
    os.environ["FHIRSVC_VALIDATION_CACHE"] = str(tmp_path_factory.mktemp("validation") / "validated.txt")


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The app on the shipped knowledge only (an FHIRSVC_KNOWLEDGE_PATH in the environment is ignored)."""
    feedback = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "FEEDBACK_DB": str(feedback)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def knowledge(app) -> Knowledge:
    return get_knowledge(app)
