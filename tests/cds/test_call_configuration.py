"""Per-call configuration as Da Vinci CRD does it (deviations page): the options in discovery, a call's
``extension["davinci-crd.configuration"]`` switching card families off, a bad value refused with 400."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from http import HTTPStatus

import pytest

from tests.cds.conftest import SERVICE, order_request
from tests.cds.test_scenarios import SCENARIOS, run_scenario
from tests.conftest import error_fields, error_message

MIXED = "044-monitoring-on-therapy-count-due"  # an info and a warning card
SENIOR = "035-age-65"  # the seniors' info card, whatever the date
CRITICAL = "016-live-vaccine-same-bundle"  # two critical cards


def scenario(name: str) -> tuple[dict, datetime]:
    body = json.loads((SCENARIOS / f"{name}.request.json").read_text(encoding="utf-8"))
    expected = json.loads((SCENARIOS / f"{name}.expected.json").read_text(encoding="utf-8"))
    return body, datetime.fromisoformat(expected["now"])


def configured(body: dict, settings: object) -> dict:
    return {**body, "extension": {"davinci-crd.configuration": settings}}


def indicators(cards: list[dict]) -> Counter:
    return Counter(card["indicator"] for card in cards)


def test_discovery_lists_the_options_in_the_crd_shape(cds):
    for service in cds.get("/cds-services").get_json()["services"]:
        options = service["extension"]["davinci-crd.configuration-options"]
        assert {option["code"] for option in options} == {"info-cards", "warning-cards"}
        for option in options:  # CRD dev-4: code, type, name, description, and a default
            assert set(option) == {"code", "type", "name", "description", "default"}
            assert option["type"] == "boolean" and option["default"] is True
        # CRD dev-8: codes, names and descriptions unique within a service
        for key in ("code", "name", "description"):
            assert len({option[key] for option in options}) == len(options)


def test_switching_info_cards_off_drops_them_and_keeps_the_rest(cds_app):
    body, now = scenario(MIXED)
    everything = indicators(run_scenario(cds_app, body, now))
    assert everything["info"] and everything["warning"]
    without_info = indicators(run_scenario(cds_app, configured(body, {"info-cards": False}), now))
    assert without_info == Counter({"warning": everything["warning"]})
    without_warnings = indicators(run_scenario(cds_app, configured(body, {"warning-cards": False}), now))
    assert without_warnings == Counter({"info": everything["info"]})
    # true is the default: the same cards as without the extension
    assert indicators(run_scenario(cds_app, configured(body, {"info-cards": True}), now)) == everything


def test_critical_cards_cannot_be_switched_off(cds_app):
    body, now = scenario(CRITICAL)
    cards = run_scenario(cds_app, configured(body, {"info-cards": False, "warning-cards": False}), now)
    assert indicators(cards) == Counter({"critical": 2})


def test_an_option_the_service_does_not_offer_is_ignored(cds_app):
    """CRD dev-16/dev-17: a client may send configuration the service does not support; it is ignored."""
    body, now = scenario(MIXED)
    everything = indicators(run_scenario(cds_app, body, now))
    assert indicators(run_scenario(cds_app, configured(body, {"coverage-info": False, "max-cards": 2}), now)) \
        == everything


@pytest.mark.parametrize(("settings", "named"), [
    ({"info-cards": "false"}, "'info-cards' must be a boolean"),
    ({"warning-cards": 0}, "'warning-cards' must be a boolean"),
    ({"info-cards": None}, "'info-cards' must be a boolean"),
    (["info-cards"], "must be a JSON object"),
    ("info-cards=false", "must be a JSON object"),
    ({f"option-{n}": True for n in range(65)}, "at most 64 options"),
])
def test_a_bad_configuration_is_a_400_naming_it(cds, settings, named):
    response = cds.post(SERVICE, data=json.dumps(configured(order_request(), settings)),
                        content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    error = response.get_json()
    assert named in error_message(error)
    assert "extension.davinci-crd.configuration" in error_fields(error)


def test_the_route_applies_the_configuration(cds):
    """Through the HTTP route: a valid configuration is accepted (200) and a card family switched off is absent."""
    body, _ = scenario(SENIOR)
    plain = cds.post(SERVICE, data=json.dumps(body), content_type="application/json")
    assert plain.status_code == HTTPStatus.OK
    assert indicators(plain.get_json()["cards"])["info"]
    quiet = cds.post(SERVICE, data=json.dumps(configured(body, {"info-cards": False})),
                     content_type="application/json")
    assert quiet.status_code == HTTPStatus.OK
    assert "info" not in indicators(quiet.get_json()["cards"])
