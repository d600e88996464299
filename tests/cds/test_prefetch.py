"""Assembling the patient context: prefetch cases, and fetching from a FHIR server on loopback that
behaves well, badly, or is not allow-listed (tests/cds/test_urlpolicy.py tries the URL tricks)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from requests.adapters import HTTPAdapter

from fhirsvc.checks.context import DATA_KEYS
from fhirsvc.evaluation.environment import Call, Environment, FetchSettings
from fhirsvc.evaluation.prefetch import PreconditionFailed, assemble_context
from fhirsvc.evaluation.references import MedicationPool
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


def call(request_data, settings, orders=(), templates=TEMPLATES) -> Call:
    env = Environment(None, "", settings, HTTPAdapter())  # type: ignore[arg-type]  # assembling reads no knowledge
    return Call(request_data, templates, env, NOW, list(orders))


def assemble(ehr, prefetch=None, allow=True, deadline=1.5, orders=(), token="secret-token", templates=TEMPLATES,
             keys=DATA_KEYS):
    request_data = {"hook": "order-sign", "context": {"patientId": "p1", "userId": "u1"}, "fhirServer": ehr.base}
    if token:
        request_data["fhirAuthorization"] = {"access_token": token}
    if prefetch is not None:
        request_data["prefetch"] = prefetch
    settings = FetchSettings(allowlist=UrlPolicy([ehr.base] if allow else []), connect_timeout=0.5,
                             read_timeout=1.0, deadline=deadline)
    return assemble_context(call(request_data, settings, orders, templates), keys=keys)


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


# --- the optional statements key: the medication list's other half ----------------------------------------------

WITH_STATEMENTS = {**TEMPLATES, "statements": "MedicationStatement?patient={{context.patientId}}"}
SENT = {"patient": {"resourceType": "Patient", "id": "p1"}, "conditions": None, "allergies": None,
        "medications": bundle({"resourceType": "MedicationRequest", "id": "mr-1", "status": "active"}),
        "observations": None}


def r5_statement(sid: str, status: str = "recorded", end: str | None = None) -> dict:
    return {"resourceType": "MedicationStatement", "id": sid, "status": status,
            "medication": {"concept": {"text": "Enbrel (etanercept)"}},
            "effectivePeriod": {"start": "2026-01-01", **({"end": end} if end else {})}}


def test_sent_statements_join_the_medication_list_an_r5_recorded_one_as_current_or_past(ehr):
    statements = bundle(r5_statement("current"), r5_statement("ended", end="2026-06-30"),
                        r5_statement("future-end", end="2027-06-30"), r5_statement("gone", "entered-in-error"))
    context = assemble(ehr, prefetch={**SENT, "statements": statements}, templates=WITH_STATEMENTS)
    assert context.unavailable == {}
    assert [(m["id"], m["status"]) for m in context.medications] == [
        ("mr-1", "active"), ("current", "active"), ("ended", "completed"), ("future-end", "active"),
        ("gone", "entered-in-error")]
    assert ehr.requests == []


def test_absent_statements_are_read_from_the_fhir_server_when_it_may_be_read(ehr):
    context = assemble(ehr, prefetch=SENT, templates=WITH_STATEMENTS)
    assert context.unavailable == {}
    assert [m["id"] for m in context.medications] == ["mr-1", "medicationstatement-1"]
    assert [path for path, _ in ehr.requests] == ["/fhir/MedicationStatement?patient=p1"]


@pytest.mark.parametrize("server", ["none", "not-allow-listed"])
def test_absent_statements_that_cannot_be_read_are_not_sent_not_a_failure(ehr, server):
    request_data = {"hook": "order-sign", "context": {"patientId": "p1", "userId": "u1"}, "prefetch": SENT}
    if server == "not-allow-listed":
        request_data["fhirServer"] = ehr.base
    settings = FetchSettings(allowlist=UrlPolicy([]))
    context = assemble_context(call(request_data, settings, templates=WITH_STATEMENTS))
    assert context.unavailable == {} and [m["id"] for m in context.medications] == ["mr-1"]
    assert ehr.requests == []


@pytest.fixture
def started_threads(monkeypatch):
    """The names of the threads the test's own thread starts while it runs (``Thread.start`` still starts them;
    the stand-in EHR's threads are started by its server's)."""
    started: list[str] = []
    real_start = threading.Thread.start
    caller = threading.current_thread()

    def start(thread):
        if threading.current_thread() is caller:
            started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


@pytest.mark.parametrize("server", ["none", "not-allow-listed"])
def test_keys_that_send_no_request_start_no_thread(ehr, server, started_threads):
    """Every key sent but an optional one that cannot be read: answered at once, no thread pool started for it."""
    request_data = {"hook": "order-sign", "context": {"patientId": "p1", "userId": "u1"}, "prefetch": SENT}
    if server == "not-allow-listed":
        request_data["fhirServer"] = ehr.base
    context = assemble_context(call(request_data, FetchSettings(allowlist=UrlPolicy([])), templates=WITH_STATEMENTS))
    assert [m["id"] for m in context.medications] == ["mr-1"]
    assert started_threads == []


def test_a_key_fetched_from_the_server_is_read_in_a_thread(ehr, started_threads):
    assemble(ehr, prefetch=SENT, templates=WITH_STATEMENTS)
    assert len(started_threads) == 1


def test_failed_statements_make_the_medication_list_unavailable_and_nothing_else(ehr):
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
    sent = assemble(ehr, prefetch={**SENT, "statements": outcome}, templates=WITH_STATEMENTS)
    assert set(sent.unavailable) == {"medications"} and sent.unavailable["medications"].startswith("statements: ")
    ehr.modes["MedicationStatement"] = "500"
    fetched = assemble(ehr, prefetch=SENT, templates=WITH_STATEMENTS)
    assert set(fetched.unavailable) == {"medications"} and "HTTP 500" in fetched.unavailable["medications"]


def test_statements_are_read_only_when_the_medication_list_is(ehr):
    context = assemble(ehr, prefetch={"patient": SENT["patient"]}, templates=WITH_STATEMENTS, keys=("patient",))
    assert context.unavailable == {} and context.medications == ()
    assert ehr.requests == []


def medication(mid: str | None, text: str) -> dict:
    return {"resourceType": "Medication", **({"id": mid} if mid else {}), "code": {"text": text}}


def referring(oid: str, reference: str, r5: bool = False, **extra) -> dict:
    named = {"medication": {"reference": {"reference": reference}}} if r5 else \
        {"medicationReference": {"reference": reference}}
    return {"resourceType": "MedicationRequest", "id": oid, "status": "draft", **named, **extra}


def test_every_form_of_medication_reference_is_resolved_in_the_contract_order(ehr):
    """contained (per order), the same Bundle by fullUrl or Type/id, prefetch, the FHIR server, in that order."""
    urn = "urn:uuid:9a1f0c2e-0000-4000-8000-000000000001"
    orders = [
        referring("a", "#m", contained=[medication("m", "contained in a")]),
        referring("b", "#m", contained=[medication("m", "contained in b")]),
        referring("c", urn),
        referring("d", "https://pharmacy.example.org/fhir/Medication/77"),
        referring("e", "Medication/both"),
        referring("f", "Medication/sent"),
        referring("g", "Medication/k1", r5=True),
        referring("h", "Medication/in-bundle/_history/2"),
        referring("i", "urn:uuid:not-anywhere"),
    ]
    draft_entries = [*({"resource": o} for o in orders),
                     {"fullUrl": urn, "resource": medication("x", "by urn")},
                     {"fullUrl": "https://pharmacy.example.org/fhir/Medication/77",
                      "resource": medication(None, "url")},
                     {"resource": medication("both", "from the Bundle")},
                     {"resource": medication("in-bundle", "a version")}]
    prefetch = {**{key: None for key in DATA_KEYS},
                "medications": bundle(medication("both", "from prefetch"), medication("sent", "from prefetch"))}
    request_data = {"hook": "order-sign", "fhirServer": ehr.base, "prefetch": prefetch,
                    "context": {"patientId": "p1", "userId": "u1",
                                "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                                "entry": draft_entries}}}
    settings = FetchSettings(allowlist=UrlPolicy([ehr.base]), connect_timeout=0.5, read_timeout=1.0, deadline=1.5)
    context = assemble_context(call(request_data, settings, orders))
    texts = {key: med["code"]["text"] for key, med in context.referenced_medications.items()}
    assert texts == {
        "MedicationRequest/a#m": "contained in a", "MedicationRequest/b#m": "contained in b", urn: "by urn",
        "https://pharmacy.example.org/fhir/Medication/77": "url", "Medication/both": "from the Bundle",
        "Medication/sent": "from prefetch", "Medication/k1": "Kineret",
        "Medication/in-bundle/_history/2": "a version"}
    assert [path for path, _ in ehr.requests] == ["/fhir/Medication/k1?"]  # only what nothing else held


def test_the_callers_medication_pools_are_the_ones_searched(ehr):
    """A caller that has read the call's medication pools (``relevance.judged_context``) hands them over; they are
    searched as they are, not read again from the request."""
    order = referring("a", "Medication/held")
    request_data = {"hook": "order-sign", "prefetch": SENT, "context": {"patientId": "p1", "userId": "u1"}}
    settings = FetchSettings(allowlist=UrlPolicy([]))
    assert assemble_context(call(request_data, settings, [order])).referenced_medications == {}
    pools = [MedicationPool.of_resources([medication("held", "from the caller's pools")])]
    context = assemble_context(call(request_data, settings, [order]), pools=pools)
    assert {key: med["code"]["text"] for key, med in context.referenced_medications.items()} == {
        "Medication/held": "from the caller's pools"}
