"""CDS Hooks 3.0 readiness while serving 2.0 clients: the discovery ``version``, errors as OperationOutcomes, and the
3.0 prefetch templates (``FHIRSVC_PREFETCH_STYLE=3.0``) with the same cards as the 2.0 ones when the EHR sends only
the last 400 days of observations."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

import pytest
from flask import Flask, jsonify, request

from fhirsvc import create_app
from fhirsvc.checks.base import MAX_ACTIONS_PER_SUGGESTION
from fhirsvc.checks.reading.windows import parse_when
from fhirsvc.errors import ConfigError
from fhirsvc.evaluation.tokens import OBSERVATION_DAYS, fill_template, window_start
from fhirsvc.terminology import LOINC
from tests.cds.card_schema import assert_valid_discovery, assert_valid_outcome, assert_valid_response
from tests.cds.conftest import SERVICE, order_request, service_path
from tests.cds.test_scenarios import SCENARIOS, run_scenario
from tests.conftest import error_fields, error_message, serving

WINDOW = f"&date=ge{{{{today() - {OBSERVATION_DAYS} days}}}}"


def test_discovery_advertises_the_version_and_keeps_the_2_0_templates_by_default(cds):
    body = cds.get("/cds-services").get_json()
    assert_valid_discovery(body)
    assert {s["version"] for s in body["services"]} == {"STU2"}
    for service in body["services"]:
        assert "today()" not in json.dumps(service["prefetch"])
        assert service["prefetch"]["observations"].endswith("&_sort=-date")


def test_the_3_0_style_asks_for_the_last_400_days_of_observations_only(tmp_path, cds):
    styled = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "PREFETCH_STYLE": "3.0",
                         "FEEDBACK_DB": str(tmp_path / "f.sqlite3"), "PUBLIC_BASE_URL": "https://cds.example.org"})
    body = styled.test_client().get("/cds-services").get_json()
    assert_valid_discovery(body)
    plain = {s["id"]: s for s in cds.get("/cds-services").get_json()["services"]}
    for service in body["services"]:
        assert service["version"] == "STU3"
        before = plain[service["id"]]["prefetch"]
        assert {k: v for k, v in service["prefetch"].items() if k != "observations"} == \
               {k: v for k, v in before.items() if k != "observations"}
        assert service["prefetch"]["observations"] == before["observations"].replace("&_sort", WINDOW + "&_sort")


@pytest.mark.parametrize("style", ["3", "stu3", "3.0 ", ""])
def test_an_unknown_prefetch_style_stops_start_up(tmp_path, style):
    with pytest.raises(ConfigError, match=r"FHIRSVC_PREFETCH_STYLE must be one of 2\.0, 3\.0"):
        create_app({"KNOWLEDGE_PATH": "", "AUTH": "off", "PREFETCH_STYLE": style,
                    "FEEDBACK_DB": str(tmp_path / "f.sqlite3"), "PUBLIC_BASE_URL": "https://cds.example.org"})


def test_tokens_are_filled_as_the_3_0_ballot_example():
    """3.0.0 ballot: ``date=gt{{today() - 90 days}}`` on 2024-09-13 reads ``date=gt2024-06-15``."""
    template = "Observation?patient={{context.patientId}}&category=laboratory&date=gt{{today() - 90 days}}"
    assert fill_template(template, {"patientId": "1288992"}, date(2024, 9, 13)) == \
        "Observation?patient=1288992&category=laboratory&date=gt2024-06-15"
    assert fill_template("A?date=lt{{today() + 365 days}}&b={{today()}}", {}, date(2024, 9, 13)) == \
        "A?date=lt2025-09-13&b=2024-09-13"
    assert window_start("Observation?code=x" + WINDOW, date(2026, 11, 24)) == date(2025, 10, 20)
    assert window_start("Observation?code=x&_sort=-date", date(2026, 11, 24)) is None


# --- errors ------------------------------------------------------------------------------------------------------

ERRORS = [
    ("bad-field", lambda c: c.post(SERVICE, json={**order_request(), "context": {"userId": "u"}}), 400, "invalid"),
    ("not-json", lambda c: c.post(SERVICE, data="{", content_type="application/json"), 400, "invalid"),
    ("unknown-service", lambda c: c.post("/cds-services/nope", json=order_request()), 404, "not-found"),
    ("no-patient-data", lambda c: c.post(SERVICE, json={k: v for k, v in order_request().items() if k != "prefetch"}),
     412, "processing"),
    ("media-type", lambda c: c.post(SERVICE, data="{}", content_type="text/plain"), 415, "not-supported"),
    ("method", lambda c: c.get(SERVICE), 405, "not-supported"),
    ("bad-feedback", lambda c: c.post(SERVICE + "/feedback", json={"feedback": [{"card": "c"}]}), 400, "invalid"),
    ("stats-unknown-service", lambda c: c.get("/cds-services/nope/feedback/stats"), 404, "not-found"),
]


@pytest.mark.parametrize(("make", "status", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_every_cds_error_is_an_operation_outcome_with_its_status(cds, make, status, code):
    """CDS Hooks 3.0.0 ballot, "Returning OperationOutcome": a non-2xx answer SHOULD carry one; sent as JSON
    (2.0 clients read JSON), the HTTP status unchanged (412 when no patient data could be had)."""
    response = make(cds)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert_valid_outcome(body)
    assert body["issue"][0]["code"] == code and body["issue"][0]["severity"] == "error"


def test_each_bad_field_is_an_issue_naming_its_path(cds):
    body = order_request()
    del body["context"]["patientId"], body["context"]["userId"]
    response = cds.post(SERVICE, json=body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    outcome = response.get_json()
    assert error_message(outcome) == "the request is not a valid CDS Hooks call"
    fields = error_fields(outcome)
    assert set(fields) == {"context.patientId", "context.userId"}
    assert all(issue["code"] == "invalid" for issue in outcome["issue"])


def test_an_unauthenticated_call_says_nothing_more_than_login(tmp_path):
    secured = create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "FEEDBACK_DB": str(tmp_path / "f.sqlite3"),
                          "PUBLIC_BASE_URL": "https://cds.example.org"}).test_client()
    response = secured.post(SERVICE, json=order_request())
    assert response.status_code == HTTPStatus.UNAUTHORIZED and response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "authentication required"}]}


# --- the 3.0 templates: the EHR sends the last 400 days, the service reads what it needs beyond them --------------

class ObservationServer:
    """A FHIR server on loopback that answers Observation searches from ``self.observations`` with FHIR's ``date``
    prefixes ``ge``/``lt`` (on effective[x], a partial date as its whole period) and ``code`` (system|code list),
    and records each query; MedicationStatement searches find nothing; nothing else is served (404)."""

    def __init__(self) -> None:
        self.observations: list[dict] = []
        self.queries: list[str] = []
        self.app = Flask("observations")

        @self.app.get("/fhir/Observation")
        def search():
            self.queries.append(request.full_path)
            found = [o for o in self.observations if _matches(o, request.args.getlist("date"),
                                                                   request.args.get("code"))]
            return jsonify({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                            "entry": [{"resource": o} for o in found]})

        @self.app.get("/fhir/MedicationStatement")
        def statements():  # the optional key a readable server is asked for: none recorded here
            return jsonify({"resourceType": "Bundle", "type": "searchset", "total": 0})


def _effective(observation: dict) -> str | None:
    period = observation.get("effectivePeriod") or {}
    return observation.get("effectiveDateTime") or observation.get("effectiveInstant") or period.get("start")


def _matches(observation: dict, dates: list[str], codes: str | None) -> bool:
    when = parse_when(_effective(observation))
    for param in dates:
        if when is None:
            return False
        bound = datetime.fromisoformat(param[2:]).replace(tzinfo=UTC)
        if (param.startswith("ge") and when.end <= bound and when.start < bound) or \
                (param.startswith("lt") and when.start >= bound):
            return False
    if codes:
        wanted = {tuple(code.split("|", 1)) for code in codes.split(",")}
        coding = (observation.get("code") or {}).get("coding") or []
        return any((c.get("system"), c.get("code")) in wanted for c in coding)
    return True


@pytest.fixture(scope="module")
def observation_server() -> Iterator[tuple[ObservationServer, str]]:
    server = ObservationServer()
    with serving(server.app) as base:
        yield server, f"{base}/fhir"


@pytest.fixture(scope="module")
def apps(observation_server, tmp_path_factory):
    """The 2.0 app and the 3.0 app (the observation server allow-listed)."""
    _, base = observation_server
    folder = tmp_path_factory.mktemp("hooks3")
    common = {"KNOWLEDGE_PATH": "", "AUTH": "off", "PUBLIC_BASE_URL": "https://cds.example.org",
              "FHIR_SERVER_ALLOWLIST": base}
    return (create_app({**common, "FEEDBACK_DB": str(folder / "two.sqlite3")}),
            create_app({**common, "FEEDBACK_DB": str(folder / "three.sqlite3"), "PREFETCH_STYLE": "3.0"}))


def windowed(body: dict, now: datetime, server: ObservationServer, base: str) -> dict:
    """The request a 3.0 EHR sends: the observations of the last 400 days only (the rest on its server)."""
    narrow = copy.deepcopy(body)
    everything = [entry["resource"] for entry in body["prefetch"]["observations"].get("entry") or ()]
    server.observations = everything
    start = f"ge{(now.date() - timedelta(days=OBSERVATION_DAYS)).isoformat()}"
    narrow["prefetch"]["observations"]["entry"] = [{"resource": o} for o in everything if _matches(o, [start], None)]
    narrow["fhirServer"] = base
    return narrow


def outcome(app, body: dict, now: datetime) -> object:
    try:
        return run_scenario(app, body, now)
    except Exception as exc:  # the same refusal either way (412, 400)
        return type(exc).__name__


def _with_observations() -> list[Path]:
    return [p for p in sorted(SCENARIOS.glob("*.request.json"))
            if isinstance((json.loads(p.read_text()).get("prefetch") or {}).get("observations"), dict)
            and json.loads(p.read_text())["prefetch"]["observations"].get("resourceType") == "Bundle"]


@pytest.mark.parametrize("path", _with_observations(), ids=lambda p: p.name.removesuffix(".request.json"))
def test_the_3_0_window_gives_the_same_cards_as_the_whole_record(apps, observation_server, path):
    server, base = observation_server
    body = json.loads(path.read_text())
    expected = json.loads(path.with_name(path.name.replace(".request.", ".expected.")).read_text())
    now = datetime.fromisoformat(expected["now"].replace("Z", "+00:00"))
    two, three = apps
    assert outcome(three, windowed(body, now, server, base), now) == outcome(two, body, now)


def _egfr(knowledge) -> str:
    value_set = knowledge.resolve("https://fhirsvc.org/fhir/ValueSet/kidney-function")
    return next(c["code"] for inc in value_set["compose"]["include"] if inc["system"] == LOINC
                for c in inc["concept"])


def test_an_old_kidney_result_outside_the_window_is_read_from_the_server(apps, observation_server, knowledge):
    """Scenario 208 (kidney function never measured), with a result 500 days old: the 2.0 request holds it, the
    3.0 one does not; the service reads it (one search before the window, for the codes the window lacks) and says
    no "never measured" either. Without a server to read it from, it claims nothing: "Unable to check"."""
    server, base = observation_server
    body = json.loads((SCENARIOS / "208-pv-kidney-never-measured.request.json").read_text())
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    old = {"resourceType": "Observation", "id": "kidney-old", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": _egfr(knowledge)}]},
           "subject": {"reference": "Patient/pt-208"},
           "effectiveDateTime": (now - timedelta(days=500)).isoformat(),
           "valueQuantity": {"value": 70, "unit": "mL/min", "system": "http://unitsofmeasure.org", "code": "mL/min"}}
    body["prefetch"]["observations"]["entry"].append({"resource": old})
    two, three = apps
    never = run_scenario(two, json.loads((SCENARIOS / "208-pv-kidney-never-measured.request.json").read_text()), now)
    assert [c["indicator"] for c in never] == ["info"]  # without the old result: never measured
    assert run_scenario(two, body, now) == []
    narrow = windowed(body, now, server, base)
    assert "kidney-old" not in json.dumps(narrow["prefetch"])
    server.queries.clear()
    assert run_scenario(three, narrow, now) == []
    query = unquote(server.queries[0])
    assert len(server.queries) == 1
    assert f"code={LOINC}|{_egfr(knowledge)}" in query and "date=lt2025-10-22" in query
    assert "751-8" not in query  # the window has a neutrophil count: not asked for again
    del narrow["fhirServer"]
    cards = run_scenario(three, narrow, now)
    assert cards and all(card["summary"].startswith("Unable to check") for card in cards), cards
    assert_valid_response({"cards": cards})


def test_a_3_0_service_reads_a_missing_key_with_the_window_filled(apps, observation_server):
    server, base = observation_server
    server.queries.clear()
    server.observations = []
    body = order_request(fhirServer=base)
    del body["prefetch"]["observations"]
    _, three = apps
    response = three.test_client().post(service_path("order-sign"), json=body)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    first = unquote(server.queries[0])
    start = (datetime.now(UTC).date() - timedelta(days=OBSERVATION_DAYS)).isoformat()
    assert f"date=ge{start}" in first and "today()" not in first


# --- suggestion.actionSelectionBehavior ----------------------------------------------------------------------------

def _live_vaccine_cards(app, vaccines: int, knowledge, hook: str = "order-sign") -> list[dict]:
    """Scenario 016 (Kineret and a live vaccine in one draft Bundle), with ``vaccines`` live vaccine orders; on
    order-select, Kineret selected."""
    path = SCENARIOS / "016-live-vaccine-same-bundle.request.json"
    body = json.loads(path.read_text())
    if hook == "order-select":
        body["hook"], body["context"]["selections"] = hook, ["MedicationRequest/mr-kineret"]
    entries = body["context"]["draftOrders"]["entry"]
    value_set = knowledge.resolve("https://fhirsvc.org/fhir/ValueSet/live-vaccines")
    codes = [c for inc in value_set["compose"]["include"] for c in inc["concept"]]
    vaccine = next(e for e in entries if e["resource"]["id"] == "mr-mmr")
    for n in range(1, vaccines):
        extra = copy.deepcopy(vaccine)
        extra["resource"]["id"] = f"mr-vaccine-{n}"
        code = codes[n]
        extra["resource"]["medicationCodeableConcept"] = {
            "coding": [{"system": value_set["compose"]["include"][0]["system"], "code": code["code"]}],
            "text": code.get("display", code["code"])}
        entries.append(extra)
    now = datetime.fromisoformat(json.loads(path.with_name(path.name.replace(".request.", ".expected."))
                                            .read_text())["now"].replace("Z", "+00:00"))
    cards = run_scenario(app, body, now)
    assert_valid_response({"cards": cards})
    return [c for c in cards if c["indicator"] == "critical" and "mr-kineret" in json.dumps(c.get("suggestions"))]


def test_the_other_draft_orders_of_a_class_are_one_suggestion_of_all_their_actions(apps, knowledge):
    two, _ = apps
    (card,) = _live_vaccine_cards(two, 3, knowledge)
    first, own = card["suggestions"]
    assert [a["resourceId"] for a in first["actions"]] == [
        "MedicationRequest/mr-mmr", "MedicationRequest/mr-vaccine-1", "MedicationRequest/mr-vaccine-2"]
    assert {a["type"] for a in first["actions"]} == {"delete"}
    assert first["actionSelectionBehavior"] == "all"  # one vaccine order left keeps the contraindication
    assert first["label"] == "Cancel the 3 live vaccine orders"
    assert own["actions"] == [{"type": "delete", "description": own["actions"][0]["description"],
                               "resourceId": "MedicationRequest/mr-kineret"}]
    assert "actionSelectionBehavior" not in own and card["selectionBehavior"] == "at-most-one"


def test_past_the_bound_the_suggestion_cancels_the_first_order_only(apps, knowledge):
    """More other drafts than MAX_ACTIONS_PER_SUGGESTION (a pipeline's bulk check, not an order set): one delete,
    so that the answer does not grow with the square of the orders."""
    two, _ = apps
    (card,) = _live_vaccine_cards(two, MAX_ACTIONS_PER_SUGGESTION + 1, knowledge)
    first = card["suggestions"][0]
    assert first["actions"] == [{"type": "delete", "description": first["actions"][0]["description"],
                                 "resourceId": "MedicationRequest/mr-mmr"}]
    assert "actionSelectionBehavior" not in first
    (card,) = _live_vaccine_cards(two, MAX_ACTIONS_PER_SUGGESTION, knowledge)
    assert len(card["suggestions"][0]["actions"]) == MAX_ACTIONS_PER_SUGGESTION


def test_a_suggestion_of_one_action_says_no_action_selection(apps, knowledge):
    two, _ = apps
    (card,) = _live_vaccine_cards(two, 1, knowledge)
    assert [len(s["actions"]) for s in card["suggestions"]] == [1, 1]
    assert all("actionSelectionBehavior" not in s for s in card["suggestions"])


# --- CRD associated-resource -------------------------------------------------------------------------------------

def _references(bundle: dict | None) -> set[str]:
    """The Type/id of a Bundle's resources; a DSTU2 MedicationOrder as the service reads it, a MedicationRequest
    (evaluation/orders.py; its suggestions name it so too)."""
    return {f"{e['resource']['resourceType'].replace('MedicationOrder', 'MedicationRequest')}/{e['resource']['id']}"
            for e in (bundle or {}).get("entry") or ()
            if isinstance(e.get("resource"), dict) and e["resource"].get("id")}


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.request.json")), ids=lambda p: p.name[:-13])
def test_every_card_names_the_records_it_concerns(apps, path):
    """Da Vinci CRD "Linking cards to requests": ``extension["davinci-crd.associated-resource"]``, local references
    (Type/id): on the order hooks the judged order first (order-select: one of the selections), then the other
    draft orders the card's suggestions act on; on patient-view the medication record the reminder is about."""
    body = json.loads(path.read_text())
    expected = json.loads(path.with_name(path.name.replace(".request.", ".expected.")).read_text())
    now = datetime.fromisoformat(expected["now"].replace("Z", "+00:00"))
    two, _ = apps
    try:
        cards = run_scenario(two, body, now)
    except Exception:  # a refused request has no cards
        return
    assert_valid_response({"cards": cards})
    if body["hook"] == "patient-view":  # the medication records: requests and statements
        prefetch = body.get("prefetch") or {}
        records = _references(prefetch.get("medications")) | _references(prefetch.get("statements"))
        judged = records
    else:
        records = _references(body["context"]["draftOrders"])
        judged = set(body["context"].get("selections") or records)
    for card in cards:
        if "davinci-crd.associated-resource" not in card["extension"]:  # no record to name: the list unavailable
            assert body["hook"] == "patient-view" and not records and card["summary"].startswith("Unable to check")
            continue
        named = card["extension"]["davinci-crd.associated-resource"]
        assert named[0] in judged, (card["summary"], named)
        assert set(named) <= records and len(named) == len(set(named))
        targets = {a["resourceId"] for s in card.get("suggestions", ()) for a in s["actions"] if "resourceId" in a}
        assert targets <= set(named)


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_an_interaction_card_names_every_order_it_concerns(apps, knowledge, hook):
    two, _ = apps
    (card,) = _live_vaccine_cards(two, 3, knowledge, hook)
    assert card["extension"]["davinci-crd.associated-resource"] == [
        "MedicationRequest/mr-kineret", "MedicationRequest/mr-mmr", "MedicationRequest/mr-vaccine-1",
        "MedicationRequest/mr-vaccine-2"]
