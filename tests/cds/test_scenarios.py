"""Golden scenarios (fixtures/scenarios/): each saved CDS Hooks request through the real app, with the clock
fixed to the scenario's ``now``, compared with its expected topics and indicators.

The clock is fixed without touching production code: ``fhirsvc.cds.views.evaluate(service_id, body, now)``
is the service call minus the HTTP layer (validation, prefetch, checks, cards, feedback bookkeeping), and it
runs here inside ``app.test_request_context`` for the service's route. The comparison is on the multiset of
(topic code, indicator) pairs; where an expected card lists ``actions``, a card of that pair must carry
exactly those suggestion action types (in order). ``absent`` topics must not appear at all. A scenario
with ``"xfail": "reason"`` documents a known defect against the contract (strict: it must keep failing).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fhirsvc import create_app
from fhirsvc.cds.views import evaluate
from fhirsvc.cli import main
from fhirsvc.evaluation.offline import evaluate_offline
from fhirsvc.evaluation.services import service_id
from fhirsvc.knowledge import get_knowledge
from tests.cds.card_schema import assert_valid_response
from tests.cds.conftest import service_path
from tests.conftest import ROOT

SCENARIOS = ROOT / "fixtures" / "scenarios"


def _scenarios() -> list[Any]:
    params = []
    for request_file in sorted(SCENARIOS.glob("*.request.json")):
        name = request_file.name.removesuffix(".request.json")
        expected = json.loads(request_file.with_name(f"{name}.expected.json").read_text(encoding="utf-8"))
        marks = [pytest.mark.xfail(reason=expected["xfail"], strict=True)] if expected.get("xfail") else []
        params.append(pytest.param(request_file, expected, id=name, marks=marks))
    return params


PARAMS = _scenarios()


@pytest.fixture(scope="module")
def scenario_app(tmp_path_factory):
    return create_app({"KNOWLEDGE_PATH": "", "AUTH": "off",
                       "FEEDBACK_DB": str(tmp_path_factory.mktemp("scenarios") / "feedback.sqlite3"),
                       "PUBLIC_BASE_URL": "https://cds.example.org"})


def run_scenario(app, body: dict, now: datetime) -> list[dict]:
    """One service call as the route makes it, with the clock fixed."""
    with app.test_request_context(service_path(body["hook"]), method="POST", json=body):
        return evaluate(service_id(body["hook"]), body, now=now)


def pair(card: dict) -> tuple[str, str]:
    return card["source"]["topic"]["code"], card["indicator"]


def action_types(card: dict) -> list[str]:
    return [action["type"] for suggestion in card.get("suggestions", ()) for action in suggestion["actions"]]


def patient_names(body: dict) -> set[str]:
    """The patient's name parts as they could leak into card text (full name, family, given names)."""
    patient = (body.get("prefetch") or {}).get("patient") or {}
    names: set[str] = set()
    for name in patient.get("name") or ():
        given = [g for g in name.get("given") or () if g]
        names.update(n for n in (name.get("text"), name.get("family"), *given) if n)
        if given and name.get("family"):
            names.add(" ".join([*given, name["family"]]))
    return {n.lower() for n in names}


def test_the_scenarios_are_there():
    assert len(PARAMS) >= 40
    names = [p.id for p in PARAMS]
    assert len(set(names)) == len(names)
    numbers = [name.split("-", 1)[0] for name in names]
    assert len(set(numbers)) == len(numbers), "scenario numbers must be unique"
    requests = {f.name.removesuffix(".request.json") for f in SCENARIOS.glob("*.request.json")}
    expected = {f.name.removesuffix(".expected.json") for f in SCENARIOS.glob("*.expected.json")}
    assert requests == expected, f"unpaired files: {sorted(requests ^ expected)}"
    assert {f.name for f in SCENARIOS.glob("*.json")} == {f"{n}.{kind}.json" for n in requests
                                                          for kind in ("request", "expected")}


@pytest.mark.parametrize(("request_file", "expected"), PARAMS)
def test_scenario(scenario_app, request_file: Path, expected: dict):
    body = json.loads(request_file.read_text(encoding="utf-8"))
    pristine = copy.deepcopy(body)
    now = datetime.fromisoformat(expected["now"])
    assert now.tzinfo is not None, "a scenario's now must carry a time zone"

    cards = run_scenario(scenario_app, body, now)

    assert_valid_response({"cards": cards})
    assert body == pristine, "the request JSON was mutated"

    got = Counter(pair(c) for c in cards)
    want = Counter((c["topic"], c["indicator"]) for c in expected["cards"])
    assert got == want, "\n".join([f"expected {sorted(want.elements())}", f"got      {sorted(got.elements())}",
                                   *(f"  {pair(c)} {c['summary']}" for c in cards)])

    remaining = list(cards)
    for card in (c for c in expected["cards"] if "actions" in c):
        key = (card["topic"], card["indicator"])
        match = next((c for c in remaining if pair(c) == key and action_types(c) == card["actions"]), None)
        assert match is not None, (f"no {key} card with actions {card['actions']}: "
                                   f"{[(pair(c), action_types(c)) for c in cards if pair(c) == key]}")
        remaining.remove(match)

    topics = {pair(c)[0] for c in cards}
    assert not topics & set(expected.get("absent") or ()), f"absent topics present: {topics & set(expected['absent'])}"

    text = json.dumps(cards, ensure_ascii=False).lower()
    leaked = [name for name in patient_names(body) if name in text]
    assert not leaked, f"card text contains the patient's name: {leaked}"

    again = run_scenario(scenario_app, copy.deepcopy(pristine), now)
    assert [c["uuid"] for c in again] == [c["uuid"] for c in cards], "card uuids are not deterministic"
    assert [s["uuid"] for c in again for s in c.get("suggestions", ())] == \
        [s["uuid"] for c in cards for s in c.get("suggestions", ())], "suggestion uuids are not deterministic"
    assert len({c["uuid"] for c in cards}) == len(cards), "two cards share a uuid"


# The NDC scenarios: a Kineret order named only by an NDC, in each form pharmacy systems send it.
NDC_SCENARIOS = [pytest.param(p.values[0], p.values[1], id=p.id) for p in PARAMS if "-ndc-" in p.id]
EVERY_SCENARIO = [pytest.param(p.values[0], p.values[1], id=p.id) for p in PARAMS]  # without xfail marks


def test_there_is_a_scenario_for_every_ndc_form():
    codes = set()
    for param in NDC_SCENARIOS:
        body = json.loads(param.values[0].read_text(encoding="utf-8"))
        for entry in body["context"]["draftOrders"]["entry"]:
            codes.update(c["code"] for c in entry["resource"]["medicationCodeableConcept"]["coding"])
    assert {"66658-234-07", "66658-0234-07", "6665823407", "66658-234", "66658-0234-28", "66658023407"} <= codes


@pytest.mark.parametrize(("request_file", "expected"), NDC_SCENARIOS)
def test_ndc_scenario_through_order_select(scenario_app, request_file: Path, expected: dict):
    """The same order selected in order-select gets the same cards as in order-sign."""
    body = json.loads(request_file.read_text(encoding="utf-8"))
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    body["hook"] = "order-select"
    body["context"]["selections"] = [f"{order['resourceType']}/{order['id']}"]
    cards = run_scenario(scenario_app, body, datetime.fromisoformat(expected["now"]))
    assert_valid_response({"cards": cards})
    assert Counter(pair(c) for c in cards) == Counter((c["topic"], c["indicator"]) for c in expected["cards"])


@pytest.mark.parametrize(("request_file", "expected"), EVERY_SCENARIO)
def test_scenario_through_fhirsvc_check(scenario_app, request_file: Path, expected: dict):
    """``fhirsvc check`` (the offline evaluation) gives the service's findings for every scenario."""
    body = json.loads(request_file.read_text(encoding="utf-8"))
    now = datetime.fromisoformat(expected["now"])
    served = run_scenario(scenario_app, copy.deepcopy(body), now)
    offline = evaluate_offline(body, get_knowledge(scenario_app), now=now)
    assert [(pair(c), c["summary"]) for c in offline.cards] == [(pair(c), c["summary"]) for c in served]


@pytest.mark.parametrize(("request_file", "expected"), NDC_SCENARIOS)
def test_ndc_scenario_with_the_fhirsvc_check_command(request_file: Path, expected: dict, capsys, monkeypatch):
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_PATH", raising=False)
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)
    status = main(["check", "--json", "--now", expected["now"], str(request_file)])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert Counter((f["topic"], f["indicator"]) for f in out["findings"]) == \
        Counter((c["topic"], c["indicator"]) for c in expected["cards"])


# The scenarios of records as real EHRs send them (references, statements, units, names): the order-select form
# of each order scenario gives the order-sign cards, and the cards say what was found in the prescriber's words.
RECORD_SCENARIOS = [pytest.param(p.values[0], p.values[1], id=p.id) for p in PARAMS
                    if p.id.split("-", 1)[0] in {str(n) for n in range(301, 320)}]


def test_the_record_scenarios_are_there():
    assert len(RECORD_SCENARIOS) >= 12


@pytest.mark.parametrize(("request_file", "expected"), RECORD_SCENARIOS)
def test_record_scenario_through_order_select(scenario_app, request_file: Path, expected: dict):
    body = json.loads(request_file.read_text(encoding="utf-8"))
    orders = [e["resource"] for e in body["context"]["draftOrders"]["entry"]
              if e["resource"]["resourceType"] != "Medication"]
    body["hook"] = "order-select"
    body["context"]["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders]
    cards = run_scenario(scenario_app, body, datetime.fromisoformat(expected["now"]))
    assert_valid_response({"cards": cards})
    assert Counter(pair(c) for c in cards) == Counter((c["topic"], c["indicator"]) for c in expected["cards"])


def scenario_cards(app, name: str) -> list[dict]:
    request_file = SCENARIOS / f"{name}.request.json"
    expected = json.loads(request_file.with_name(f"{name}.expected.json").read_text(encoding="utf-8"))
    return run_scenario(app, json.loads(request_file.read_text(encoding="utf-8")),
                        datetime.fromisoformat(expected["now"]))


def test_flumist_quadrivalent_is_named_the_quadrivalent_vaccine(scenario_app):
    (card,) = scenario_cards(scenario_app, "309-flumist-quadrivalent-by-name")
    assert "a live vaccine (Influenza, live, quadrivalent, intranasal)" in card["detail"]
    assert "trivalent" not in card["detail"]


def test_an_annotated_unit_is_named_in_words(scenario_app):
    (card,) = scenario_cards(scenario_app, "312-dose-ucum-annotation-pill")
    assert "'pill'" in card["summary"] and "1 pill" in card["detail"]
    assert "{pill}" not in json.dumps(card)
