"""Assembling the patient context: prefetch cases, and fetching from a FHIR server on loopback that
behaves well, badly, or is not allow-listed (tests/cds/test_urlpolicy.py tries the URL tricks)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from requests.adapters import HTTPAdapter

from fhirsvc.checks.context import DATA_KEYS
from fhirsvc.evaluation.environment import Call, Environment, FetchSettings
from fhirsvc.evaluation.prefetch import PreconditionFailed, assemble_context
from fhirsvc.evaluation.urlpolicy import UrlPolicy
from tests.cds.fake_ehr import bundle

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TEMPLATES = {"patient": "Patient/{{context.patientId}}", "conditions": "Condition?patient={{context.patientId}}",
             "allergies": "AllergyIntolerance?patient={{context.patientId}}",
             "medications": "MedicationRequest?patient={{context.patientId}}",
             "observations": "Observation?patient={{context.patientId}}&_sort=-date"}


@pytest.fixture(autouse=True)
def _reset(ehr):
    ehr.reset()


def call(request_data, settings, orders=()) -> Call:
    env = Environment(None, "", settings, HTTPAdapter())  # type: ignore[arg-type]  # assembling reads no knowledge
    return Call(request_data, TEMPLATES, env, NOW, list(orders))


def assemble(ehr, prefetch=None, allow=True, deadline=1.5, orders=(), token="secret-token"):
    request_data = {"hook": "order-sign", "context": {"patientId": "p1", "userId": "u1"}, "fhirServer": ehr.base}
    if token:
        request_data["fhirAuthorization"] = {"access_token": token}
    if prefetch is not None:
        request_data["prefetch"] = prefetch
    settings = FetchSettings(allowlist=UrlPolicy([ehr.base] if allow else []), connect_timeout=0.5,
                             read_timeout=1.0, deadline=deadline)
    return assemble_context(call(request_data, settings, orders))


def test_absent_keys_are_fetched_with_the_bearer_token_and_pages_followed(ehr):
    context = assemble(ehr)
    assert context.unavailable == {}
    assert context.patient["birthDate"] == "1950-01-01"
    assert [c["id"] for c in context.conditions] == ["condition-1", "condition-2"]
    assert {auth for _, auth in ehr.requests} == {"Bearer secret-token"}


def test_no_token_means_an_unauthenticated_fetch(ehr):
    assemble(ehr, token=None)
    assert {auth for _, auth in ehr.requests} == {None}


def test_a_server_that_is_not_allow_listed_is_never_contacted(ehr):
    with pytest.raises(PreconditionFailed, match="not allow-listed"):
        assemble(ehr, allow=False)
    assert ehr.requests == []


def test_prefetch_cases_null_operation_outcome_and_present(ehr):
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1"}, "conditions": None,
                "allergies": {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]},
                "medications": bundle(), "observations": bundle({"resourceType": "Observation", "id": "o1"})}
    context = assemble(ehr, prefetch=prefetch)
    assert ehr.requests == []
    assert set(context.unavailable) == {"allergies"} and "OperationOutcome" in context.unavailable["allergies"]
    assert context.conditions == () and context.medications == ()
    assert [o["id"] for o in context.observations] == ["o1"]


def test_a_paged_prefetch_bundle_is_followed_on_the_server(ehr):
    prefetch = {key: None for key in DATA_KEYS}
    prefetch["conditions"] = bundle({"resourceType": "Condition", "id": "c0"}, next_url=f"{ehr.base}/Condition?page=2")
    context = assemble(ehr, prefetch=prefetch)
    assert [c["id"] for c in context.conditions] == ["c0", "condition-2"]


FAULTS = ["500", "401", "garbage", "deep", "redirect", "loop", "slow"]


@pytest.mark.parametrize("mode", FAULTS)
def test_a_misbehaving_server_makes_the_key_unavailable_within_the_deadline(ehr, mode):
    ehr.modes["Condition"] = mode
    started = time.monotonic()
    context = assemble(ehr, deadline=1.5)
    assert "conditions" in context.unavailable and context.conditions == ()
    assert context.patient is not None
    assert time.monotonic() - started < 5, "the fetch deadline was not honoured"
    assert not any("169.254" in path for path, _ in ehr.requests)


def test_connection_refused_everywhere_is_412(ehr):
    request_data = {"hook": "order-sign", "context": {"patientId": "p1"}, "fhirServer": "http://127.0.0.1:9/fhir"}
    settings = FetchSettings(allowlist=UrlPolicy(["http://127.0.0.1:9/"]), connect_timeout=0.5, read_timeout=0.5,
                             deadline=1)
    with pytest.raises(PreconditionFailed, match="could not be reached"):
        assemble_context(call(request_data, settings))


def test_medication_references_are_resolved_from_contained_bundle_or_server(ehr):
    orders = [
        {"resourceType": "MedicationRequest", "id": "a", "medicationReference": {"reference": "#m"},
         "contained": [{"resourceType": "Medication", "id": "m", "code": {"text": "contained"}}]},
        {"resourceType": "MedicationRequest", "id": "b", "medicationReference": {"reference": "Medication/k1"}},
        {"resourceType": "MedicationRequest", "id": "c",
         "medicationReference": {"reference": "https://elsewhere.example/fhir/Medication/zz"}},
    ]
    prefetch = {key: None for key in DATA_KEYS}
    context = assemble(ehr, prefetch=prefetch, orders=orders)
    assert context.referenced_medications["MedicationRequest/a#m"]["code"]["text"] == "contained"
    assert context.referenced_medications["Medication/k1"]["code"]["text"] == "Kineret"
    assert "https://elsewhere.example/fhir/Medication/zz" not in context.referenced_medications
    assert [path for path, _ in ehr.requests] == ["/fhir/Medication/k1?"]
