"""A FHIR answer is written from the start-up serialization of the served resources in it (``fhir/negotiation.py``):
byte for byte what ``json.dumps`` writes of the same body, wherever the resources sit in it."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from fhirsvc.fhir import negotiation
from fhirsvc.fhir.base import compact_json
from fhirsvc.fhir.views import BASES_EXTENSION


def dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def base(open_app):
    return open_app.extensions[BASES_EXTENSION]["R4"]


def test_compact_json_is_what_json_dumps_writes():
    value = {"a": [1, 2.5, 1e-05, -0.0, True, None], "ü": "naïve \u2028 \" \\ \n\x00", "n": {"t": ()}}
    assert compact_json(value).encode() == dumps(value)


def test_a_body_of_served_resources_at_any_depth_is_written_as_json_dumps_writes_it(base):
    first, second = base.of_type("MedicationKnowledge"), base.of_type("ValueSet")
    resource, value_set = next(iter(first)), next(iter(second))
    body = {"resourceType": "Bundle", "type": "searchset", "total": 2, "link": [{"relation": "self", "url": "é"}],
            "entry": [{"fullUrl": "x", "resource": resource, "search": {"mode": "match"}},
                      {"resource": {"resourceType": "Parameters", "parameter": ({"resource": value_set},)}}],
            "extra": [[resource], 0.67]}
    assert negotiation._spliced(body, base.texts) == dumps(body)
    assert negotiation._spliced(resource, base.texts) is base.texts[id(resource)]  # alone: its text, not a copy


def test_a_body_holding_the_marker_s_own_text_is_still_written_exactly(base):
    resource = next(iter(base.of_type("Medication")))
    body = {"note": negotiation._MARKER, "entry": [{"resource": resource}]}
    assert negotiation._spliced(body, base.texts) == dumps(body)


def test_a_search_answer_holds_the_served_resource_s_text(fhir, base):
    response = fhir.get("/fhir/R4/MedicationKnowledge?code=L04AC03&_count=5")
    assert response.status_code == HTTPStatus.OK
    bundle = response.get_json()
    served = base.get("MedicationKnowledge", bundle["entry"][0]["resource"]["id"])
    assert base.texts[id(served)] in response.get_data()
    assert response.get_data() == dumps(bundle)
