"""CDS fixtures: an app with authentication off and a feedback store in a temporary directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirsvc import create_app
from tests.cds.fake_ehr import FakeEhr
from tests.conftest import CONFORMANCE_DIR as CONFORMANCE


@pytest.fixture(scope="module")
def ehr() -> Iterator[FakeEhr]:
    """A fake FHIR server on loopback (tests/cds/fake_ehr.py) for the tests of one module."""
    server = FakeEhr()
    yield server
    server.close()


@pytest.fixture(scope="module")
def decoy() -> Iterator[FakeEhr]:
    """A second one, on another port: a server that must get no request."""
    server = FakeEhr()
    yield server
    server.close()


def service_path(hook: str = "order-sign") -> str:
    """The route of the service for ``hook`` (one id per hook)."""
    return f"/cds-services/medication-safety-{hook}"


SERVICE = service_path("order-sign")
LEGACY_SERVICE = "/cds-services/medication-safety"  # deprecated: answers both order hooks


@pytest.fixture
def cds_app(tmp_path):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off",
                       "FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"), "PUBLIC_BASE_URL": "https://cds.example.org"})


@pytest.fixture
def cds(cds_app):
    return cds_app.test_client()


def conformance(name: str) -> dict:
    return json.loads((CONFORMANCE / name).read_text(encoding="utf-8"))


def order_request(hook: str = "order-sign", orders: list | None = None, prefetch: dict | None = None,
                  **extra) -> dict:
    """The smallest valid order hook request; extend per test."""
    orders = orders if orders is not None else [{
        "resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"text": "Kineret 100 mg/0.67 mL prefilled syringe"},
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}]}]}]
    context = {"userId": "Practitioner/u1", "patientId": "p1",
               "draftOrders": {"resourceType": "Bundle", "type": "collection",
                               "entry": [{"resource": o} for o in orders]}}
    if hook == "order-select":
        context["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders[:1]]
    body = {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": context,
            "prefetch": prefetch if prefetch is not None else empty_prefetch()}
    body.update(extra)
    return body


def empty_prefetch() -> dict:
    return {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-05-01", "gender": "female"},
            "conditions": None, "allergies": None, "medications": None,
            "observations": {"resourceType": "Bundle", "type": "searchset", "total": 0}}


def conformance_files() -> list[Path]:
    return sorted(CONFORMANCE.glob("*.json"))


__all__ = ["SERVICE", "Path", "conformance", "empty_prefetch", "order_request"]
