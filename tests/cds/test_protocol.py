"""The CDS Hooks protocol: discovery, request validation, the conformance payloads, errors, feedback, logs."""

from __future__ import annotations

import copy
import json
import logging
from http import HTTPStatus

import pytest

from fhirsvc.evaluation.services import HOOKS
from tests.cds.card_schema import assert_valid_outcome, assert_valid_response
from tests.cds.conftest import (
    LEGACY_SERVICE,
    SERVICE,
    conformance,
    conformance_files,
    empty_prefetch,
    order_request,
    service_path,
)
from tests.conftest import error_fields, error_message

ORDER_HOOK_REQUESTS = [p.name for p in conformance_files()
                       if ("request" in p.name) and json.loads(p.read_text()).get("hook") in ("order-select",
                                                                                               "order-sign")]
CONTEXT_ONLY = [p.name for p in conformance_files() if p.name.endswith(".context.spec.json")]


def post(cds, body, **kwargs):
    """POST to the service of the body's hook (the order-sign service when the body names no order hook)."""
    hook = body.get("hook") if isinstance(body, dict) else None
    return cds.post(service_path(hook) if hook in HOOKS else SERVICE, data=json.dumps(body),
                    content_type=kwargs.pop("content_type", "application/json"), **kwargs)


def test_discovery_lists_one_service_per_hook_with_the_contract_prefetch(cds):
    response = cds.get("/cds-services")
    assert response.status_code == HTTPStatus.OK
    everything = response.get_json()["services"]
    services = [s for s in everything if s["hook"] != "patient-view"]
    assert sorted(s["hook"] for s in services) == ["order-select", "order-sign"]
    assert {s["id"]: s["hook"] for s in services} == {"medication-safety-order-select": "order-select",
                                                      "medication-safety-order-sign": "order-sign"}
    (view,) = [s for s in everything if s["hook"] == "patient-view"]
    assert view["id"] == "medication-safety-patient-view"
    assert set(view["prefetch"]) == {"patient", "conditions", "medications", "statements", "observations"}
    assert {k: services[0]["prefetch"][k] for k in view["prefetch"]} == view["prefetch"]
    for service in services:
        assert set(service["prefetch"]) == {"patient", "conditions", "allergies", "medications", "statements",
                                            "observations"}
        assert service["prefetch"]["statements"] == "MedicationStatement?patient={{context.patientId}}"
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "http://loinc.org|29463-7" in service["prefetch"]["observations"]
        assert service["description"] and service["title"] and service["usageRequirements"]


def test_every_discovered_service_id_is_unique_and_answers_its_own_hook(cds):
    """Clients such as the CDS Hooks sandbox key discovered services by id: a shared id loses a hook."""
    ids = [s["id"] for s in cds.get("/cds-services").get_json()["services"]]
    assert len(ids) == len(set(ids))
    for service in cds.get("/cds-services").get_json()["services"]:
        body = order_request(hook=service["hook"], prefetch=empty_prefetch())
        response = cds.post(f"/cds-services/{service['id']}", json=body)
        assert response.status_code == HTTPStatus.OK, response.get_json()
        assert_valid_response(response.get_json())


@pytest.mark.parametrize("hook", HOOKS)
def test_a_service_refuses_the_other_hook(cds, hook):
    other = next(h for h in HOOKS if h != hook)
    response = cds.post(service_path(hook), json=order_request(hook=other, prefetch=empty_prefetch()))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_fields(response.get_json()) == {"hook": [f"must be one of {hook}"]}


@pytest.mark.parametrize("hook", HOOKS)
def test_the_deprecated_shared_id_still_answers_both_hooks_with_the_same_cards(cds, hook):
    body = order_request(hook=hook, prefetch=empty_prefetch())
    legacy = cds.post(LEGACY_SERVICE, json=body)
    own = cds.post(service_path(hook), json=body)
    assert legacy.status_code == own.status_code == HTTPStatus.OK
    assert legacy.get_json() == own.get_json() and legacy.get_json()["cards"]


def test_feedback_and_its_statistics_are_kept_per_service_id(cds):
    cards = cds.post(service_path("order-select"), json=order_request(hook="order-select",
                                                                      prefetch=empty_prefetch())).get_json()["cards"]
    item = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    assert cds.post(service_path("order-select") + "/feedback", json={"feedback": [item]}).status_code == 200
    select = cds.get(service_path("order-select") + "/feedback/stats").get_json()
    sign = cds.get(service_path("order-sign") + "/feedback/stats").get_json()
    assert (select["service"], select["total"], select["unknownCards"]) == ("medication-safety-order-select", 1, 0)
    assert select["byTopic"][0]["topic"] == cards[0]["source"]["topic"]["code"]
    # through the service, the stored outcome is counted under the rule id its card carried
    assert [(r["rule"], r["overridden"]) for r in select["byRule"]] == [(cards[0]["extension"]["fhirsvc.rule"], 1)]
    assert (sign["service"], sign["total"], sign["byTopic"]) == ("medication-safety-order-sign", 0, [])


@pytest.mark.parametrize("name", ORDER_HOOK_REQUESTS)
def test_every_conformance_request_is_accepted(cds, name):
    body = conformance(name)
    body["prefetch"] = empty_prefetch()
    response = post(cds, body)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    assert_valid_response(response.get_json())


@pytest.mark.parametrize("name", CONTEXT_ONLY)
def test_every_conformance_context_is_accepted(cds, name):
    document = conformance(name)
    context = document.get("context", document)
    hook = "order-select" if name.startswith("order-select") else "order-sign"
    context.setdefault("userId", "Practitioner/example")
    context.setdefault("patientId", "example")
    body = {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": context,
            "prefetch": empty_prefetch()}
    response = post(cds, body)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    assert_valid_response(response.get_json())


@pytest.mark.parametrize("name", ORDER_HOOK_REQUESTS)
def test_conformance_request_without_reachable_data_is_412_only_when_an_order_matters(cds, name):
    """Without prefetch or a usable fhirServer: 412 for an anakinra order (its checks need patient data that
    cannot be had); the spec's own examples order other drugs, which the service does not judge: no card and
    no error."""
    body = conformance(name)
    body.pop("prefetch", None)
    response = post(cds, body)
    if name.startswith("anakinra."):
        assert response.status_code == HTTPStatus.PRECONDITION_FAILED
        assert "no patient data could be obtained" in error_message(response.get_json())
    else:
        assert response.status_code == HTTPStatus.OK, response.get_json()
        assert response.get_json() == {"cards": []}


def test_the_incoming_request_is_not_mutated(cds):
    body = conformance("order-select.r4.full-request.assembled.json")
    body["prefetch"] = empty_prefetch()
    before = copy.deepcopy(body)
    assert post(cds, body).status_code == HTTPStatus.OK
    assert body == before


def _without(path: str, hook: str = "order-sign") -> dict:
    body = order_request(hook)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    del node[last]
    return body


BAD_REQUESTS = [
    ("missing-hook", _without("hook"), "hook"),
    ("missing-hookInstance", _without("hookInstance"), "hookInstance"),
    ("missing-context", _without("context"), "context"),
    ("missing-patientId", _without("context.patientId"), "patientId"),
    ("missing-userId", _without("context.userId"), "userId"),
    ("missing-draftOrders", _without("context.draftOrders"), "draftOrders"),
    ("draftOrders-not-a-bundle", order_request(context={"userId": "u", "patientId": "p",
                                                        "draftOrders": {"resourceType": "Patient"}}), "draftOrders"),
    ("order-select-without-selections", _without("context.selections", "order-select"), "selections"),
    ("authorization-without-server", order_request(fhirAuthorization={
        "access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "user/Patient.read",
        "subject": "fhirsvc"}), "fhirServer"),
    ("authorization-incomplete", order_request(fhirServer="https://ehr.example.org/fhir",
                                               fhirAuthorization={"access_token": "t"}), "token_type"),
    ("fhirServer-not-a-url", order_request(fhirServer="not a url"), "fhirServer"),
    ("hook-not-declared", order_request(hook="patient-view"), "hook"),
    ("body-not-an-object", ["hook"], "_schema"),
    ("prefetch-not-an-object", order_request(prefetch=["x"]), "prefetch"),
]


@pytest.mark.parametrize(("body", "field"), [(b, f) for _, b, f in BAD_REQUESTS], ids=[i for i, _, _ in BAD_REQUESTS])
def test_bad_requests_are_400_naming_the_field(cds, body, field):
    response = post(cds, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    error = response.get_json()
    assert_valid_outcome(error)
    assert error["issue"][0]["code"] == "invalid"
    assert field in json.dumps(error_fields(error))
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(("entry", "says"), [
    pytest.param({"resource": "MedicationRequest/mr-1"}, "entry[1].resource must be a FHIR resource, not a JSON string",
                 id="resource-string"),
    pytest.param({"resource": {"id": "x"}}, "entry[1].resource must be a FHIR resource, not an object without a "
                 "resourceType", id="resource-without-type"),
    pytest.param("MedicationRequest/mr-1", "entry[1] must be an object, not a JSON string", id="entry-string"),
])
def test_a_draft_order_that_is_not_a_resource_is_400_naming_the_entry(cds, entry, says):
    """A draft order the service cannot read is refused, never skipped into "no cards"."""
    body = order_request()
    body["context"]["draftOrders"]["entry"].append(entry)
    response = post(cds, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    named = {path: messages for path, messages in error_fields(response.get_json()).items()
             if path.startswith("context.draftOrders")}
    assert says in json.dumps(named), named


def test_other_errors(cds):
    assert post(cds, order_request(), content_type="text/plain").status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert post(cds, order_request(), content_type="application/json; charset=utf-8").status_code == HTTPStatus.OK
    assert cds.post("/cds-services/no-such-service", json=order_request()).status_code == HTTPStatus.NOT_FOUND
    assert cds.post(SERVICE, data="{not json", content_type="application/json").status_code == HTTPStatus.BAD_REQUEST
    huge = cds.post(SERVICE, data="[" + "1," * (3 * 1024 * 1024) + "1]", content_type="application/json")
    assert huge.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert huge.get_json()["issue"][0]["code"] == "too-costly"
    assert cds.get(SERVICE).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_extension_is_accepted_and_ignored(cds):
    body = order_request(extension={"com.example.flag": True})
    assert post(cds, body).status_code == HTTPStatus.OK


def test_cors_preflight_on_cds_routes(cds):
    for path in ("/cds-services", SERVICE, SERVICE + "/feedback"):
        response = cds.options(path, headers={"Origin": "https://sandbox.cds-hooks.org",
                                              "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization, content-type"})
        assert response.status_code == HTTPStatus.OK
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "authorization" in response.headers["Access-Control-Allow-Headers"]


def test_one_structured_log_line_per_call_without_patient_data(cds, caplog):
    body = order_request()
    with caplog.at_level(logging.INFO, logger="fhirsvc.cds.calls"):
        post(cds, body)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fhirsvc.cds.calls"]
    assert len(lines) == 1
    assert lines[0]["hookInstance"] == body["hookInstance"] and lines[0]["status"] == 200
    assert set(lines[0]) == {"service", "status", "hookInstance", "hook", "cards", "ms"}
    assert "p1" not in json.dumps(lines[0])


def test_feedback_is_validated_stored_idempotently_and_counted(cds):
    cards = post(cds, order_request()).get_json()["cards"]
    item = {"card": cards[0]["uuid"] if cards else "c1", "outcome": "overridden",
            "overrideReason": {"reason": {"system": "https://fhirsvc.org/fhir/CodeSystem/cds-override-reasons",
                                          "code": "will-monitor"}},
            "outcomeTimestamp": "2026-11-24T10:05:31Z"}
    first = cds.post(SERVICE + "/feedback", json={"feedback": [item]})
    again = cds.post(SERVICE + "/feedback", json={"feedback": [item]})
    assert first.status_code == again.status_code == HTTPStatus.OK
    assert first.get_json()["stored"] == 1 and again.get_json()["stored"] == 0
    stats = cds.get(SERVICE + "/feedback/stats").get_json()
    assert stats["total"] == 1
    bad = cds.post(SERVICE + "/feedback", json={"feedback": [{"card": "c1", "outcome": "accepted",
                                                              "outcomeTimestamp": "2026-11-24T10:05:31Z"}]})
    assert bad.status_code == HTTPStatus.BAD_REQUEST and "acceptedSuggestions" in json.dumps(bad.get_json())
