"""The work of one call is bounded: at most MAX_ORDERS draft orders and MAX_BUNDLE_RESOURCES resources per
Bundle (draftOrders, each prefetch value, what is read from fhirServer for one key). More sent by the caller is
answered 413 with the CDS JSON error naming the limit; more read from fhirServer makes the key unavailable."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from fhirsvc import create_app
from fhirsvc.evaluation.offline import UnreadableInput, evaluate_offline
from fhirsvc.evaluation.orders import MAX_BUNDLE_RESOURCES, MAX_ORDERS
from tests.cds.card_schema import assert_valid_outcome, assert_valid_response
from tests.cds.conftest import SERVICE, empty_prefetch, order_request
from tests.conftest import error_message


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
    assert_valid_outcome(body)
    assert len(body["issue"]) == 1 and body["issue"][0]["code"] == "too-costly"
    assert "MAX_ORDERS" in error_message(body) and f"more than {MAX_ORDERS} draft orders" in error_message(body)


def test_a_draft_bundle_of_more_resources_than_allowed_is_a_413(cds):
    body = order_request()
    body["context"]["draftOrders"]["entry"] += [{"resource": {"resourceType": "Medication", "id": f"m{i}"}}
                                                for i in range(MAX_BUNDLE_RESOURCES)]
    response = cds.post(SERVICE, json=body)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "MAX_BUNDLE_RESOURCES" in error_message(response.get_json())


def test_a_prefetch_value_of_more_resources_than_allowed_is_a_413(cds):
    prefetch = {**empty_prefetch(), "conditions": searchset(MAX_BUNDLE_RESOURCES + 1)}
    response = cds.post(SERVICE, json=order_request(prefetch=prefetch))
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    message = error_message(response.get_json())
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


HUGE_TYPES = ("Condition", "AllergyIntolerance", "MedicationRequest", "Observation")


def test_what_one_call_reads_from_the_fhir_server_is_bounded_in_bytes(ehr, tmp_path):
    """A hostile allow-listed server answers every search with 1 MB pages, each with a next link. With a budget
    of 3 MB for the call, the four keys read concurrently stop once it is spent: at most the pages the budget
    holds and one more under way per key are requested (without it: ten pages per key), every key is
    unavailable and the call still answers, saying what it could not check."""
    ehr.reset()
    ehr.huge_bytes = 1024 * 1024
    for rtype in HUGE_TYPES:
        ehr.modes[rtype] = "huge"
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "PUBLIC_BASE_URL": "https://cds.example.org", "FHIR_SERVER_ALLOWLIST": ehr.base,
                      "FETCH_MAX_CALL_BYTES": 3 * 1024 * 1024, "FETCH_DEADLINE": 30.0, "FETCH_READ_TIMEOUT": 10.0})
    body = order_request(fhirServer=ehr.base)
    body["prefetch"] = {"patient": body["prefetch"]["patient"]}
    response = app.test_client().post(SERVICE, json=body)
    assert response.status_code == HTTPStatus.OK
    assert_valid_response(response.get_json())
    summaries = " ".join(card["summary"] for card in response.get_json()["cards"])
    for what in ("allergy list", "medication list", "condition list"):
        assert f"{what} unavailable" in summaries or what in summaries, summaries
    pages = [path for path, _ in ehr.requests if path.split("?")[0].rsplit("/", 1)[-1] in HUGE_TYPES]
    assert len(pages) <= 3 + len(HUGE_TYPES), pages
    ehr.reset()


def test_the_budget_is_for_one_call(ehr, tmp_path):
    """A budget that holds one call's answers (some 1,000 bytes here) holds them call after call: it is not
    spent for good, and the cards are those of an ample budget."""
    ehr.reset()
    config = {"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.db"),
              "PUBLIC_BASE_URL": "https://cds.example.org", "FHIR_SERVER_ALLOWLIST": ehr.base}
    body = order_request(fhirServer=ehr.base)
    body["prefetch"] = {"patient": body["prefetch"]["patient"]}

    def summaries(app) -> list[str]:
        response = app.test_client().post(SERVICE, json=body)
        assert response.status_code == HTTPStatus.OK
        return sorted(card["summary"] for card in response.get_json()["cards"])

    ample = summaries(create_app(config))
    assert not [s for s in ample if "unavailable" in s]
    small = create_app({**config, "FETCH_MAX_CALL_BYTES": 2000})
    for _ in range(3):
        assert summaries(small) == ample


def test_fhirsvc_check_refuses_more_orders_than_allowed_as_unreadable_input(knowledge):
    """``fhirsvc check`` reads a Bundle through the same pipeline: past a limit it is input it cannot check
    (exit 2), never a traceback."""
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": o} for o in orders(MAX_ORDERS + 1)]}
    with pytest.raises(UnreadableInput, match="MAX_ORDERS"):
        evaluate_offline(bundle, knowledge)
