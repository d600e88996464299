"""The patient-view service over HTTP: discovery, the call, its errors, and its cards."""

from __future__ import annotations

import json
from http import HTTPStatus

from tests.cds.card_schema import assert_valid_response
from tests.conftest import ROOT

VIEW = "/cds-services/medication-safety-patient-view"
SCENARIOS = ROOT / "fixtures" / "scenarios"


def scenario(name: str) -> dict:
    return json.loads(next(SCENARIOS.glob(f"{name}-*.request.json")).read_text(encoding="utf-8"))


def post(cds, body, path=VIEW):
    return cds.post(path, data=json.dumps(body), content_type="application/json")


def test_the_call_answers_cards_with_the_card_rules(cds):
    response = post(cds, scenario("211"))  # a live vaccine ordered while on therapy
    assert response.status_code == HTTPStatus.OK
    body = response.get_json()
    assert_valid_response(body)
    (card,) = body["cards"]
    assert card["indicator"] == "critical" and card["source"]["topic"]["code"] == "DRG"
    assert card["overrideReasons"] and len(card["summary"]) < 140
    assert card["links"][0]["url"].endswith("/monographs/anakinra#live-vaccines")
    assert post(cds, scenario("211")).get_json()["cards"][0]["uuid"] == card["uuid"]


def test_a_due_count_suggests_the_service_request(cds):
    (card,) = post(cds, scenario("202")).get_json()["cards"]
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "create" and action["resource"]["resourceType"] == "ServiceRequest"
    assert action["resource"]["subject"] == {"reference": "Patient/pt-202"}
    assert "last 2026-10-23" in card["summary"] and "every month" in card["summary"]
    assert "overrideReasons" not in card  # info


def test_order_hooks_are_not_served_by_the_patient_view_service(cds):
    body = scenario("001-clean")
    response = post(cds, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "patient-view" in json.dumps(response.get_json()["fields"])
    assert post(cds, scenario("202"), "/cds-services/medication-safety").status_code == HTTPStatus.BAD_REQUEST


def test_a_context_without_patient_is_a_400(cds):
    body = scenario("202")
    del body["context"]["patientId"]
    response = post(cds, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "patientId" in response.get_json()["fields"]["context"]


def test_no_patient_data_at_all_is_a_412(cds):
    body = scenario("202")
    del body["prefetch"]
    response = post(cds, body)
    assert response.status_code == HTTPStatus.PRECONDITION_FAILED
    assert "no patient data" in response.get_json()["message"]


def test_feedback_on_the_patient_view_service(cds):
    (card,) = post(cds, scenario("202")).get_json()["cards"]
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-24T12:01:00Z",
                              "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}]}
    response = cds.post(f"{VIEW}/feedback", json=feedback)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    stats = cds.get(f"{VIEW}/feedback/stats").get_json()
    assert "LAB" in json.dumps(stats)
