"""Shared fixtures: the app on the shipped knowledge, its test client, and the knowledge itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirsvc import create_app
from fhirsvc.knowledge import Knowledge, get_knowledge

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "fixtures" / "knowledge"
SHARED_DIR = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def app():
    """The app on the shipped knowledge only (an FHIRSVC_KNOWLEDGE_PATH in the environment is ignored)."""
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": ""})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def knowledge(app) -> Knowledge:
    return get_knowledge(app)
