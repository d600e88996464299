"""End to end against a real FHIR server on loopback (sekmet-fhir, a SQLite-backed R4 server from PyPI,
installed by `make ehr-server`): the same patient's data gives the same cards whether the EHR sends it
as prefetch or the service reads it from the server itself."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import requests

from bench.workload import free_port, served
from fhirsvc import create_app
from tests.cds.card_schema import assert_valid_response
from tests.cds.conftest import SERVICE, order_request
from tests.conftest import ROOT, error_message

SEKMET = ROOT / ".venv-ehr" / "bin" / "sekmet"
PATIENT_DATA = [
    {"resourceType": "Patient", "id": "p1", "birthDate": "1952-03-04", "gender": "female"},
    {"resourceType": "Condition", "id": "ra", "subject": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active"}]},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "69896004",
                          "display": "Rheumatoid arthritis"}]}},
    {"resourceType": "AllergyIntolerance", "id": "latex", "patient": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                    "code": "active"}]},
     "code": {"text": "Latex"}},
    {"resourceType": "MedicationRequest", "id": "humira", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-09-01",
     "medicationCodeableConcept": {"text": "adalimumab 40 MG/0.4ML Prefilled Syringe [Humira]"}},
    {"resourceType": "MedicationRequest", "id": "mtx", "status": "completed", "intent": "order",
     "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-01-10",
     "medicationCodeableConcept": {"text": "methotrexate 2.5 MG Oral Tablet"}},
    {"resourceType": "Observation", "id": "crcl", "status": "final", "subject": {"reference": "Patient/p1"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "2164-2"}]},
     "effectiveDateTime": "2026-11-01T09:00:00Z",
     "valueQuantity": {"value": 22, "unit": "mL/min", "system": "http://unitsofmeasure.org", "code": "mL/min"}},
    {"resourceType": "Observation", "id": "weight", "status": "final", "subject": {"reference": "Patient/p1"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
     "effectiveDateTime": "2026-11-01T09:00:00Z",
     "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}},
]
KEYS = {"Patient": "patient", "Condition": "conditions", "AllergyIntolerance": "allergies",
        "MedicationRequest": "medications", "Observation": "observations"}


@pytest.fixture(scope="module")
def ehr_server(tmp_path_factory):
    """sekmet-fhir on 127.0.0.1 holding PATIENT_DATA; its base URL."""
    if not SEKMET.exists():
        pytest.skip("the stand-in EHR FHIR server is not installed: run `make ehr-server` (make test does)")
    workdir: Path = tmp_path_factory.mktemp("ehr")
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "SEKMET_BASE_URL": base, "SEKMET_PORT": str(port), "SEKMET_DB": str(workdir / "ehr.db")}
    with served([str(SEKMET), "serve", "--host", "127.0.0.1", "--port", str(port)], f"{base}/metadata",
                workdir / "ehr.log", env, cwd=workdir, timeout=20):
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in PATIENT_DATA]}
        loaded = requests.post(base, json=transaction, headers={"Content-Type": "application/fhir+json"}, timeout=10)
        assert loaded.status_code == 200, loaded.text
        yield base


def _cards(app, body) -> list[dict]:
    response = app.test_client().post(SERVICE, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.get_json()
    assert_valid_response(response.get_json())
    return response.get_json()["cards"]


def test_cards_are_the_same_with_prefetch_and_from_the_fhir_server(ehr_server, tmp_path):
    app = create_app({"KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "FHIR_SERVER_ALLOWLIST": ehr_server, "PUBLIC_BASE_URL": "https://cds.example.org"})
    prefetch = {key: {"resourceType": "Bundle", "type": "searchset",
                      "entry": [{"resource": r} for r in PATIENT_DATA if KEYS[r["resourceType"]] == key]}
                for key in KEYS.values() if key != "patient"}
    prefetch["patient"] = PATIENT_DATA[0]
    with_prefetch = _cards(app, order_request(prefetch=prefetch))
    fetched = _cards(app, {k: v for k, v in order_request(fhirServer=ehr_server).items() if k != "prefetch"})
    assert with_prefetch == fetched
    topics = {(c["source"]["topic"]["code"], c["indicator"]) for c in fetched}
    assert {("DRG", "warning"), ("DOSECOND", "warning"), ("GEALRT", "info"), ("ALGY", "warning")} <= topics


def test_a_fhir_server_that_is_not_allow_listed_is_never_contacted(tmp_path):
    """A listening socket named as fhirServer but not allow-listed receives no connection at all."""
    app = create_app({"KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "FHIR_SERVER_ALLOWLIST": "https://some-other-ehr.example/fhir"})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = f"http://127.0.0.1:{listener.getsockname()[1]}/fhir"
        body = {k: v for k, v in order_request(fhirServer=server).items() if k != "prefetch"}
        response = app.test_client().post(SERVICE, data=json.dumps(body), content_type="application/json")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert response.status_code == 412
    assert "not allow-listed" in error_message(response.get_json())
