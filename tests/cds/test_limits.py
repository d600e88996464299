"""The work of one call is bounded: at most MAX_ORDERS draft orders and MAX_BUNDLE_RESOURCES resources per
Bundle (draftOrders, each prefetch value, what is read from fhirServer for one key). More sent by the caller is
answered 413 with the CDS JSON error naming the limit; more read from fhirServer makes the key unavailable."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from fhirsvc import create_app
from fhirsvc.cds.orders import MAX_BUNDLE_RESOURCES, MAX_ORDERS
from tests.cds.card_schema import assert_valid_response
from tests.cds.conftest import SERVICE, empty_prefetch, order_request


def orders(count: int) -> list[dict]:
    return [{"resourceType": "MedicationRequest", "id": f"mr-{i}", "status": "draft", "intent": "order",
             "medicationCodeableConcept": {"text": "Kineret 100 mg/0.67 mL prefilled syringe" if i % 2 else
                                           "adalimumab 40 MG/0.4ML Prefilled Syringe [Humira]"},
             "subject": {"reference": "Patient/p1"}} for i in range(count)]


def searchset(count: int, rtype: str = "Condition") -> dict:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": {"resourceType": rtype, "id": f"c{i}"}} for i in range(count)]}


def test_as_many_orders_as_allowed_are_judged(cds):
    response = cds.post(SERVICE, json=order_request(orders=orders(MAX_ORDERS)))
    assert response.status_code == HTTPStatus.OK
    assert_valid_response(response.get_json())
    judged = {card["suggestions"][0]["actions"][0]["resourceId"] for card in response.get_json()["cards"]
              if card.get("suggestions") and card["suggestions"][0]["actions"][0].get("resourceId")}
    assert f"MedicationRequest/mr-{MAX_ORDERS - 1}" in judged


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_more_orders_than_allowed_is_a_413_naming_the_limit(cds, hook):
    response = cds.post(f"/cds-services/medication-safety-{hook}",
                        json=order_request(hook, orders=orders(MAX_ORDERS + 1)))
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert "MAX_ORDERS" in body["message"] and f"more than {MAX_ORDERS} orders" in body["message"]


def test_a_draft_bundle_of_more_resources_than_allowed_is_a_413(cds):
    body = order_request()
    body["context"]["draftOrders"]["entry"] += [{"resource": {"resourceType": "Medication", "id": f"m{i}"}}
                                                for i in range(MAX_BUNDLE_RESOURCES)]
    response = cds.post(SERVICE, json=body)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "MAX_BUNDLE_RESOURCES" in response.get_json()["message"]


def test_a_prefetch_value_of_more_resources_than_allowed_is_a_413(cds):
    prefetch = {**empty_prefetch(), "conditions": searchset(MAX_BUNDLE_RESOURCES + 1)}
    response = cds.post(SERVICE, json=order_request(prefetch=prefetch))
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    message = response.get_json()["message"]
    assert "prefetch conditions" in message and "MAX_BUNDLE_RESOURCES" in message
    prefetch["conditions"] = searchset(MAX_BUNDLE_RESOURCES)
    assert cds.post(SERVICE, json=order_request(prefetch=prefetch)).status_code == HTTPStatus.OK


def test_more_resources_than_allowed_from_the_fhir_server_make_the_key_unavailable(ehr, tmp_path):
    """Two pages of 3,000 conditions: the second page passes the limit, the conditions are unavailable and the
    checks that need them say so; the call still answers."""
    ehr.reset()
    ehr.modes["Condition"] = "many"
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "PUBLIC_BASE_URL": "https://cds.example.org", "FHIR_SERVER_ALLOWLIST": ehr.base})
    body = order_request(fhirServer=ehr.base)
    del body["prefetch"]["conditions"]
    response = app.test_client().post(SERVICE, json=body)
    assert response.status_code == HTTPStatus.OK
    unable = [c for c in response.get_json()["cards"] if c["summary"].startswith("Unable to check")]
    assert unable, response.get_json()["cards"]
    assert sum(1 for path, _ in ehr.requests if path.startswith("/fhir/Condition")) == 2
