"""A test client that validates every FHIR response body for the FHIR version it declares."""

from __future__ import annotations

import importlib

import fhirkit
import pytest
from fhirclient.models.fhirabstractbase import FHIRValidationError

from fhirsvc import create_app
from fhirsvc.fhirversion import r5_class
from fhirsvc.knowledge.independent import validate_resource


def assert_valid_r5(body: dict) -> None:
    """fhir.resources R5 and the independent R5 validator find no error."""
    r5_class(body["resourceType"]).model_validate(body)
    errors = [str(p) for p in validate_resource(body) if p.severity == "error"]
    assert not errors, errors


def assert_valid_r4(body: dict) -> None:
    """fhirkit-rs (strict R4 JSON) and SMART fhirclient's strict R4 models accept the body."""
    issues = [f"{i.path}: {i.message}" for i in fhirkit.validate(body) if i.severity == "error"]
    assert not issues, issues
    module = importlib.import_module(f"fhirclient.models.{body['resourceType'].lower()}")
    try:
        getattr(module, body["resourceType"])(body, strict=True)
    except FHIRValidationError as exc:
        raise AssertionError(f"fhirclient rejects the body: {exc}") from exc


class ValidatingClient:
    """Flask's test client; each ``application/fhir+json`` answer is validated for its fhirVersion."""

    def __init__(self, client):
        self.client = client

    def open(self, *args, **kwargs):
        response = self.client.open(*args, **kwargs)
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("application/fhir+json"):
            body = response.get_json()
            (assert_valid_r5 if "fhirVersion=5.0" in content_type else assert_valid_r4)(body)
        return response

    def get(self, *args, **kwargs):
        return self.open(*args, method="GET", **kwargs)

    def post(self, *args, **kwargs):
        return self.open(*args, method="POST", **kwargs)


@pytest.fixture(scope="session")
def open_app(tmp_path_factory):
    """The app on the shipped knowledge with authentication off: $validate and $check-orders without a token
    (tests/fhir/test_operation_auth.py calls them with one)."""
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off",
                       "FEEDBACK_DB": str(tmp_path_factory.mktemp("feedback") / "feedback.sqlite3")})


@pytest.fixture
def fhir(open_app) -> ValidatingClient:
    return ValidatingClient(open_app.test_client())
