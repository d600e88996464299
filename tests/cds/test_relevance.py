"""Relevance first (fhirsvc/evaluation/relevance.py): the EHR's FHIR server is asked only for what the judged orders
need. A real FHIR server on loopback (``CountingEhr``: searches and reads over the patient's resources, as a
FHIR server answers them) counts every request it gets.

- An order the service does not judge: no request at all, no card, with or without prefetch or fhirServer.
- A live vaccine alone: only the medication list (the reverse checks #19-#21 need nothing else).
- An anakinra order: the five keys of the contract, one request each.
- HL7's own R4 MedicationRequest examples (tests/cds/hl7_r4_examples/, see its README) through both hooks,
  with and without prefetch: no 5xx, no card, no request.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from http import HTTPStatus
from pathlib import Path

import pytest
from flask import Flask, jsonify, request

from fhirsvc import create_app
from tests.cds.card_schema import assert_valid_response
from tests.cds.conftest import empty_prefetch, order_request, service_path
from tests.conftest import error_message, serving

EXAMPLES = Path(__file__).parent / "hl7_r4_examples"
NDC = "http://hl7.org/fhir/sid/ndc"
CVX = "http://hl7.org/fhir/sid/cvx"
ACTIVE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
PATIENT = [
    {"resourceType": "Patient", "id": "p1", "birthDate": "1970-05-01", "gender": "female"},
    {"resourceType": "Condition", "id": "ra", "subject": {"reference": "Patient/p1"}, "clinicalStatus": ACTIVE,
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "69896004", "display": "Rheumatoid arthritis"}]}},
    {"resourceType": "MedicationRequest", "id": "kineret-current", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-10-01",
     "medicationCodeableConcept": {"coding": [{"system": NDC, "code": "66658-0234-28"}]}},
    {"resourceType": "Observation", "id": "weight", "status": "final", "subject": {"reference": "Patient/p1"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}, "effectiveDateTime": "2026-11-01",
     "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}},
    # Medications an order may reference: not part of any search, read by id only
    {"resourceType": "Medication", "id": "kineret", "code": {"coding": [{"system": NDC, "code": "66658-234"}]}},
    json.loads((EXAMPLES / "Medication-med0316.json").read_text(encoding="utf-8")),
]


class CountingEhr:
    """A FHIR R4 server on 127.0.0.1 over ``PATIENT``: ``GET [type]?patient=...`` answers a searchset Bundle of
    that type's resources (Medication excepted), ``GET [type]/[id]`` the resource or 404. Every request is
    recorded (path and query)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()
        app = Flask("counting-ehr")

        @app.get("/fhir/<rtype>")
        def search(rtype):
            self._record()
            found = [r for r in PATIENT if r["resourceType"] == rtype and rtype != "Medication"]
            return jsonify({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                            "entry": [{"resource": r, "search": {"mode": "match"}} for r in found]})

        @app.get("/fhir/<rtype>/<rid>")
        def read(rtype, rid):
            self._record()
            found = next((r for r in PATIENT if r["resourceType"] == rtype and r["id"] == rid), None)
            if found is None:
                return jsonify({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "not-found"}]}), 404
            return jsonify(found)

        self.app = app

    def _record(self) -> None:
        with self.lock:
            self.requests.append(request.full_path.rstrip("?"))

    def types(self) -> list[str]:
        return sorted(path.split("/")[2].split("?")[0] for path in self.requests)


@pytest.fixture(scope="module")
def ehr():
    server = CountingEhr()
    with serving(server.app) as url:
        server.base = f"{url}/fhir"
        yield server


@pytest.fixture(scope="module")
def service(ehr, tmp_path_factory):
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "PUBLIC_BASE_URL": "https://cds.example.org",
                      "FEEDBACK_DB": str(tmp_path_factory.mktemp("relevance") / "feedback.sqlite3"),
                      "FHIR_SERVER_ALLOWLIST": ehr.base})
    return app.test_client()


@pytest.fixture(autouse=True)
def _reset(ehr):
    ehr.requests.clear()


def call(service, body) -> tuple[int, dict]:
    response = service.post(service_path(body["hook"]), data=json.dumps(body), content_type="application/json")
    return response.status_code, response.get_json()


def fetching(ehr, hook: str = "order-sign", orders=None, others=()) -> dict:
    """A request without prefetch naming the counting server as fhirServer."""
    body = order_request(hook=hook, orders=orders, fhirServer=ehr.base)
    body.pop("prefetch")
    body["context"]["draftOrders"]["entry"] += [{"resource": r} for r in others]
    return body


def order(oid: str, concept: dict | None = None, **fields) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": oid, "status": "draft", "intent": "order",
                "subject": {"reference": "Patient/p1"}, **fields}
    if concept is not None:
        resource["medicationCodeableConcept"] = concept
    return resource


UNRELATED = order("mr-other", {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1313112",
                                           "display": "Phenytoin 25mg/ml oral suspension"}]})
LIVE_VACCINE = order("mr-mmr", {"coding": [{"system": CVX, "code": "03", "display": "MMR"}]})
KINERET_300 = order("mr-kineret", {"coding": [{"system": NDC, "code": "66658-0234-07"}]}, dosageInstruction=[
    {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
     "doseAndRate": [{"doseQuantity": {"value": 300, "unit": "mg"}}]}])


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_an_unrelated_order_costs_the_ehr_nothing(service, ehr, hook):
    status, answer = call(service, fetching(ehr, hook, [UNRELATED]))
    assert (status, answer) == (HTTPStatus.OK, {"cards": []})
    assert ehr.requests == []


def test_an_unrelated_order_without_prefetch_or_fhir_server_is_no_error(service, ehr):
    body = fetching(ehr, orders=[UNRELATED])
    del body["fhirServer"]
    assert call(service, body) == (HTTPStatus.OK, {"cards": []})


def test_a_live_vaccine_alone_needs_only_the_medication_list(service, ehr):
    status, answer = call(service, fetching(ehr, orders=[LIVE_VACCINE]))
    assert status == HTTPStatus.OK, answer
    assert ehr.types() == ["MedicationRequest", "MedicationStatement"]  # the medication list, both its keys
    assert any(r.startswith("/fhir/MedicationRequest?patient=p1") for r in ehr.requests)
    # the current Kineret order in the EHR (by its 11-digit NDC) makes the vaccine critical (#19)
    assert [(c["source"]["topic"]["code"], c["indicator"]) for c in answer["cards"]] == [("DRG", "critical")]


def test_a_live_vaccine_without_its_data_is_412(service, ehr):
    body = fetching(ehr, orders=[LIVE_VACCINE])
    del body["fhirServer"]
    status, answer = call(service, body)
    assert status == HTTPStatus.PRECONDITION_FAILED
    assert "medications" in error_message(answer) and "observations" not in error_message(answer)


def test_an_anakinra_order_reads_the_six_keys_once_each(service, ehr):
    status, answer = call(service, fetching(ehr, orders=[KINERET_300]))
    assert status == HTTPStatus.OK, answer
    assert ehr.types() == ["AllergyIntolerance", "Condition", "MedicationRequest", "MedicationStatement",
                           "Observation", "Patient"]
    assert ("DOSEH", "warning") in {(c["source"]["topic"]["code"], c["indicator"]) for c in answer["cards"]}


def test_an_unrelated_order_with_prefetch_reads_nothing(service, ehr):
    body = order_request(orders=[UNRELATED], fhirServer=ehr.base, prefetch={
        "medications": {"resourceType": "Bundle", "type": "searchset", "link": [
            {"relation": "next", "url": f"{ehr.base}/MedicationRequest?patient=p1&page=2"}]}})
    assert call(service, body) == (HTTPStatus.OK, {"cards": []})
    assert ehr.requests == []  # not even the next page of a prefetched Bundle


def test_a_medication_reference_is_read_from_the_server_only_when_still_needed(service, ehr):
    by_reference = order("mr-ref", medicationReference={"reference": "Medication/med0316"})
    assert call(service, fetching(ehr, orders=[by_reference])) == (HTTPStatus.OK, {"cards": []})
    assert ehr.requests == ["/fhir/Medication/med0316"]  # chlorthalidone: nothing more

    ehr.requests.clear()
    in_bundle = json.loads((EXAMPLES / "Medication-med0316.json").read_text(encoding="utf-8"))
    assert call(service, fetching(ehr, orders=[by_reference], others=[in_bundle])) == (HTTPStatus.OK, {"cards": []})
    assert ehr.requests == []  # resolved from the draft Bundle

    ehr.requests.clear()
    kineret = order("mr-kin", medicationReference={"reference": "Medication/kineret"},
                    dosageInstruction=KINERET_300["dosageInstruction"])
    status, answer = call(service, fetching(ehr, orders=[kineret]))
    assert status == HTTPStatus.OK, answer
    assert ehr.requests[0] == "/fhir/Medication/kineret"  # then it matters: the six keys
    assert ehr.types() == ["AllergyIntolerance", "Condition", "Medication", "MedicationRequest",
                           "MedicationStatement", "Observation", "Patient"]
    assert ("DOSEH", "warning") in {(c["source"]["topic"]["code"], c["indicator"]) for c in answer["cards"]}


def test_an_order_that_looks_like_an_ndc_but_matches_nothing_is_logged(service, ehr, caplog):
    orders = [order("mr-a", {"coding": [{"system": NDC, "code": "12345-6789-01"}]}),
              order("mr-b", {"coding": [{"system": NDC, "code": "1234567890"}]}),
              order("mr-c", {"coding": [{"system": NDC, "code": "66658-234-AB"}]}),
              order("mr-d", {"coding": [{"code": "66658-234-07"}]})]
    with caplog.at_level(logging.INFO, logger="fhirsvc.checks.engine"):
        assert call(service, fetching(ehr, orders=orders)) == (HTTPStatus.OK, {"cards": []})
    lines = [r.getMessage() for r in caplog.records if r.name == "fhirsvc.checks.engine"]
    assert len(lines) == 4, lines
    for code in ("'12345-6789-01' (form 5-4-2)", "'1234567890' (form 10-digit)", "'66658-234-AB' (form -)",
                 "'66658-234-07' (form 5-3-2)"):
        assert any(code in line for line in lines), (code, lines)
    assert not any("p1" in line or "Patient" in line for line in lines)
    assert ehr.requests == []


def test_a_recognised_ndc_is_not_logged(service, ehr, caplog):
    with caplog.at_level(logging.INFO, logger="fhirsvc.checks.engine"):
        call(service, fetching(ehr, orders=[KINERET_300]))
    assert not [r for r in caplog.records if "unrecognised NDC" in r.getMessage()]


# --- HL7's R4 MedicationRequest examples ---------------------------------------------------------------------

def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("MedicationRequest-*.json"))


def test_the_examples_are_hl7s_as_published():
    sums = dict(line.split()[::-1] for line in (EXAMPLES / "SHA256SUMS").read_text().splitlines())
    files = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert files == sorted(sums) and len(_examples()) == 40
    for name in files:
        assert hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest() == sums[name], name


@pytest.mark.parametrize("draft", [False, True], ids=["as-published", "as-draft"])
@pytest.mark.parametrize("prefetch", [False, True], ids=["fhir-server", "prefetch"])
@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_hl7_examples_cost_nothing_and_give_no_card(service, ehr, hook, prefetch, draft):
    medication = json.loads((EXAMPLES / "Medication-med0316.json").read_text(encoding="utf-8"))
    for path in _examples():
        example = json.loads(path.read_text(encoding="utf-8"))
        sent = copy.deepcopy(example)
        if draft:
            sent["status"] = "draft"
        body = fetching(ehr, hook, [sent], others=[medication])
        if prefetch:
            body["prefetch"] = empty_prefetch()
        status, answer = call(service, body)
        assert status == HTTPStatus.OK, (path.name, answer)
        assert_valid_response(answer)
        assert answer == {"cards": []}, path.name
        assert ehr.requests == [], path.name
