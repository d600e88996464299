"""The patient-view service over HTTP: discovery, the call, its errors, and its cards."""

from __future__ import annotations

import json
from http import HTTPStatus

from tests.cds.card_schema import assert_valid_response
from tests.conftest import ROOT, error_fields, error_message

VIEW = "/cds-services/medication-safety-patient-view"
SCENARIOS = ROOT / "fixtures" / "scenarios"


def scenario(name: str) -> dict:
    return json.loads(next(SCENARIOS.glob(f"{name}-*.request.json")).read_text(encoding="utf-8"))


def newest_count(body: dict) -> dict:
    return next(e["resource"] for e in body["prefetch"]["observations"]["entry"]
                if e["resource"]["id"].startswith("anc"))


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
    assert "patient-view" in json.dumps(error_fields(response.get_json()))
    assert post(cds, scenario("202"), "/cds-services/medication-safety").status_code == HTTPStatus.BAD_REQUEST


def test_a_context_without_patient_is_a_400(cds):
    body = scenario("202")
    del body["context"]["patientId"]
    response = post(cds, body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "context.patientId" in error_fields(response.get_json())


def test_no_patient_data_at_all_is_a_412(cds):
    body = scenario("202")
    del body["prefetch"]
    response = post(cds, body)
    assert response.status_code == HTTPStatus.PRECONDITION_FAILED
    assert "no patient data" in error_message(response.get_json())


def test_feedback_on_the_patient_view_service(cds):
    (card,) = post(cds, scenario("202")).get_json()["cards"]
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-24T12:01:00Z",
                              "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}]}
    response = cds.post(f"{VIEW}/feedback", json=feedback)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    stats = cds.get(f"{VIEW}/feedback/stats").get_json()
    assert "LAB" in json.dumps(stats)


def test_a_count_in_percent_is_not_a_done_test(cds):
    """On therapy 40 days, the only count is 58 %: the monthly count is due, as order-sign reads the same data."""
    (card,) = post(cds, scenario("218")).get_json()["cards"]
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("LAB", "info")
    assert "no usable count" in card["summary"] and "58 %" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["type"] == "create"
    body = scenario("218")
    anc = newest_count(body)
    anc["valueQuantity"] = {"value": 3.1, "unit": "10*9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"}
    assert post(cds, body).get_json()["cards"] == []  # the same count as an absolute count: done


def test_low_neutrophils_on_therapy_is_a_warning(cds):
    (card,) = post(cds, scenario("219")).get_json()["cards"]
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("LAB", "warning")
    assert card["summary"].startswith("Low neutrophil count 1 \u00d7 10\u2079/L (2026-11-20)")
    assert card["overrideReasons"]


def test_the_schedule_counts_from_the_start_of_the_course_not_the_renewal(cds):
    """Therapy began 200 days ago and was renewed 20 days ago: the quarterly phase, counted from 2026-05-08."""
    body = scenario("220")
    anc = newest_count(body)
    anc["effectiveDateTime"] = "2026-08-20T09:00:00Z"  # 96 days old: overdue in the quarterly phase too
    (card,) = post(cds, body).get_json()["cards"]
    assert "this course of anakinra started on 2026-05-08" in card["detail"]
    assert "every 3 months" in card["summary"]
    assert post(cds, scenario("220")).get_json()["cards"] == []  # 65 days old: not due every 3 months
    (card,) = post(cds, scenario("221")).get_json()["cards"]  # 40 days between the orders: a new course
    assert "this course of anakinra started on 2026-11-04" in card["detail"] and "every month" in card["summary"]


def test_an_unknown_medication_list_is_one_card_and_nothing_else(cds):
    body = scenario("215")
    body["prefetch"]["conditions"]["entry"].append({"resource": {
        "resourceType": "Condition", "id": "pn", "clinicalStatus": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "233604007", "display": "Pneumonia"}]}}})
    (card,) = post(cds, body).get_json()["cards"]  # an infection on the problem list, therapy unknown: not said
    assert card["summary"] == "Unable to check anakinra monitoring: medication list unavailable, therapy unknown"
    assert "whether the patient is on anakinra could not be determined" in card["detail"]
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("COND", "warning")


def test_neutropenia_on_therapy_reads_the_newest_readable_count(cds):
    """A newer count in % after the low absolute one: the low count still warns (no card about the % one)."""
    body = scenario("219")
    low = newest_count(body)
    percent = {**low, "id": "anc-percent", "effectiveDateTime": "2026-11-22T09:00:00Z",
               "valueQuantity": {"value": 58, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}
    body["prefetch"]["observations"]["entry"].insert(0, {"resource": percent})
    (card,) = post(cds, body).get_json()["cards"]
    assert card["indicator"] == "warning" and "1 \u00d7 10\u2079/L (2026-11-20)" in card["summary"]


def test_a_statement_continues_the_course_of_an_order(cds):
    """Current therapy reported as a MedicationStatement, the day after an order that began 200 days ago ended."""
    (card,) = post(cds, scenario("225")).get_json()["cards"]
    assert "this course of anakinra started on 2026-05-08" in card["detail"]
    assert "every 3 months" in card["summary"]
