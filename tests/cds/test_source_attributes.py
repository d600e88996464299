"""HTI-1 source attributes per rule (45 CFR 170.315(b)(11)(iv)(A)): held in the rule registry, answered by
``GET /cds-services/rules/<rule id>`` and shown on ``/rules/<rule id>``, linked from every card; the data elements a
rule says it reads are checked against what the checks do with the patient's record."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import datetime
from http import HTTPStatus

import pytest

from fhirsvc import create_app
from fhirsvc.checks.base import CHECKS
from fhirsvc.checks.context import PATIENT
from fhirsvc.checks.monitoring import PATIENT_VIEW_CHECKS
from fhirsvc.evaluation.environment import Environment
from fhirsvc.evaluation.services import evaluate
from fhirsvc.knowledge.rules import rule_for, rules
from tests.cds.card_schema import assert_valid_outcome, assert_valid_response
from tests.cds.conftest import SERVICE, order_request
from tests.cds.test_scenarios import SCENARIOS
from tests.conftest import error_message

# docs/cds-checks.md, "Rules and their identity": the fixed ids
RULE_IDS = ["anakinra-allergy", "anakinra-latex-allergy", "anakinra-tnf-inhibitor", "anakinra-live-vaccine",
            "anakinra-duplicate-therapy", "anakinra-max-daily-dose", "anakinra-max-dose-for-weight",
            "anakinra-starting-dose-for-weight", "anakinra-kidney-dosing", "anakinra-children", "anakinra-seniors",
            "anakinra-active-infection", "anakinra-neutropenia", "anakinra-blood-count-monitoring",
            "anakinra-pregnancy", "anakinra-breastfeeding", "anakinra-indication", "anakinra-route",
            "anakinra-live-vaccine-on-therapy", "anakinra-live-vaccine-washout", "anakinra-tnf-inhibitor-on-therapy",
            "anakinra-kidney-function-test"]
ATTRIBUTES = ["bibliographicCitation", "developer", "fundingSource", "releaseDate", "revisionDate",
              "dataElementsUsed"]
ELEMENTS = ["race", "ethnicity", "language", "sexual-orientation", "gender-identity", "sex", "date-of-birth", "sdoh",
            "health-status-assessments"]
REGISTRY = "PlanDefinition-anakinra-order-checks.json"


def used(attributes: dict) -> set[str]:
    return {e["code"] for e in attributes["dataElementsUsed"]["value"] if e["used"]}


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_answers_its_source_attributes(cds, rule_id):
    response = cds.get(f"/cds-services/rules/{rule_id}")
    assert response.status_code == HTTPStatus.OK
    body = response.get_json()
    assert body["id"] == rule_id
    attributes = body["sourceAttributes"]
    assert list(attributes) == ATTRIBUTES
    for name in ATTRIBUTES[:-1]:
        value = attributes[name]
        if value["value"] == "not stated":  # never invented: why it is not known
            assert len(value["reason"]) > 20, (name, value)
        else:
            assert value["value"] and "reason" not in value
    assert [e["code"] for e in attributes["dataElementsUsed"]["value"]] == ELEMENTS
    (monograph, *_) = attributes["bibliographicCitation"]["value"]
    assert "Medically reviewed 2015-05-26" in monograph["text"] and body["sourceSection"] in monograph["text"]
    assert monograph["reference"] == "DocumentReference/anakinra-monograph-2015"
    assert monograph["reviewDate"] == "2015-05-26"


def test_the_attributes_are_read_from_the_knowledge(cds, knowledge):
    registry = knowledge.resolve("PlanDefinition/anakinra-order-checks")
    kidney = cds.get("/cds-services/rules/anakinra-kidney-dosing").get_json()["sourceAttributes"]
    assert kidney["developer"] == {"value": registry["publisher"]}
    assert kidney["revisionDate"] == {"value": registry["date"]}
    assert kidney["fundingSource"]["value"] == kidney["releaseDate"]["value"] == "not stated"
    label = kidney["bibliographicCitation"]["value"][1]["text"]
    assert "US prescribing information, revised 12/2020" in label and "< 30 mL/min" in label
    route = cds.get("/cds-services/rules/anakinra-route").get_json()["sourceAttributes"]
    assert len(route["bibliographicCitation"]["value"]) == 1  # the monograph only: the contract cites no label
    assert used(route) == set()


def test_the_data_elements_of_the_age_and_pregnancy_rules(cds):
    elements = {rule_id: used(cds.get(f"/cds-services/rules/{rule_id}").get_json()["sourceAttributes"])
                for rule_id in RULE_IDS}
    assert {r for r, e in elements.items() if "date-of-birth" in e} == {
        "anakinra-children", "anakinra-seniors", "anakinra-max-daily-dose", "anakinra-duplicate-therapy"}
    assert {r for r, e in elements.items() if e - {"date-of-birth"}} == {"anakinra-pregnancy"}
    assert elements["anakinra-pregnancy"] == {"health-status-assessments"}  # pregnancy status; not sex
    assert elements["anakinra-breastfeeding"] == set()


def test_the_listing_carries_the_same_attributes(cds):
    listed = {r["id"]: r for r in cds.get("/cds-services/rules").get_json()["rules"]}
    assert sorted(listed) == sorted(RULE_IDS)
    for rule_id in ("anakinra-children", "anakinra-kidney-function-test"):
        assert listed[rule_id] == cds.get(f"/cds-services/rules/{rule_id}").get_json()


def test_an_unknown_rule_is_a_404_outcome(cds):
    response = cds.get("/cds-services/rules/anakinra-nothing")
    assert response.status_code == HTTPStatus.NOT_FOUND and response.mimetype == "application/json"
    assert_valid_outcome(response.get_json())
    assert error_message(response.get_json()) == "no rule 'anakinra-nothing'"


def test_the_json_is_authenticated_like_the_listing_and_the_page_is_open(tmp_path):
    secured = create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "FEEDBACK_DB": str(tmp_path / "f.sqlite3"),
                          "PUBLIC_BASE_URL": "https://cds.example.org"}).test_client()
    assert secured.get("/cds-services/rules/anakinra-children").status_code == HTTPStatus.UNAUTHORIZED
    assert secured.get("/rules/anakinra-children").status_code == HTTPStatus.OK  # a clinician's browser has no JWT


def test_the_page_shows_every_attribute(cds):
    page = cds.get("/rules/anakinra-pregnancy")
    assert page.status_code == HTTPStatus.OK and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = page.get_data(as_text=True)
    for label in ("Bibliographic citation", "Developer", "Funding source", "Release date", "Revision date",
                  "Patient data elements used"):
        assert f'<th scope="row">{label}</th>' in text
    assert "Health status assessments: used" in text and "Sex: not used" in text
    assert text.count("<strong>Not stated</strong>") == 2
    assert "Medically reviewed 2015-05-26" in text


def test_an_unknown_rule_page_is_a_404_page_with_the_id_escaped(cds):
    page = cds.get("/rules/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert page.status_code == HTTPStatus.NOT_FOUND and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_every_card_links_the_page_of_its_rule(cds):
    body = order_request()
    body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0][
        "doseQuantity"]["value"] = 300
    cards = cds.post(SERVICE, json=body).get_json()["cards"]
    assert_valid_response({"cards": cards})
    assert len(cards) > 2
    for card in cards:
        (about,) = [link for link in card["links"] if link["label"] == "About this rule"]
        assert about == {"label": "About this rule", "type": "absolute",
                         "url": f"https://cds.example.org/rules/{card['extension']['fhirsvc.rule']}"}
        assert cds.get(about["url"].removeprefix("https://cds.example.org")).status_code == HTTPStatus.OK


# --- what each rule reads: its findings change with a data element only where it says it reads it ----------------

def _findings(body: dict, knowledge, now: datetime) -> Counter:
    try:
        found = evaluate(body, Environment.offline(knowledge, now=now)).findings
    except Exception as exc:  # a refused request: the same refusal for every variant
        return Counter([type(exc).__name__])
    return Counter((f.rule, f.indicator, f.summary, f.detail) for f in found)


def _scenarios() -> list[tuple[dict, datetime]]:
    out = []
    for path in sorted(SCENARIOS.glob("*.request.json")):
        expected = json.loads(path.with_name(path.name.replace(".request.", ".expected.")).read_text())
        body = json.loads(path.read_text())
        if isinstance((body.get("prefetch") or {}).get("patient"), dict):
            out.append((body, datetime.fromisoformat(expected["now"].replace("Z", "+00:00"))))
    return out


def _changed(before: Counter, after: Counter) -> set[str]:
    return {key[0] if isinstance(key, tuple) else key for key in (before - after) + (after - before)}


def _listing(knowledge, element: str) -> set[str]:
    registry = json.loads((SCENARIOS.parent.parent / "fhirsvc" / "knowledge" / "data" / REGISTRY).read_text())
    return {a["id"] for a in registry["action"] for ext in a.get("extension") or ()
            for sub in ext.get("extension") or ()
            if sub.get("url") == "dataElement" and sub.get("valueCode") == element}


def _mutated(body: dict, change) -> dict:
    other = copy.deepcopy(body)
    change(other["prefetch"]["patient"])
    return other


def _demographics(patient: dict) -> None:
    """Every other element of the nine the Patient can carry: sex, gender identity, race, ethnicity, language."""
    patient["gender"] = "male" if patient.get("gender") == "female" else "female"
    patient["extension"] = [
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
         "extension": [{"url": "text", "valueString": "Asian"}]},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
         "extension": [{"url": "text", "valueString": "Hispanic or Latino"}]},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity",
         "valueCodeableConcept": {"text": "Identifies as non-conforming"}},
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "M"}]
    patient["communication"] = [{"language": {"text": "Spanish"}, "preferred": True}]


def _older(patient: dict) -> None:
    born = patient.get("birthDate")
    patient["birthDate"] = f"{int(born[:4]) - 60}{born[4:]}" if born else "1930-01-01"


def _younger(patient: dict) -> None:
    patient["birthDate"] = "2016-06-01"


def test_the_findings_change_with_a_data_element_only_for_the_rules_that_list_it(knowledge):
    scenarios = _scenarios()
    assert len(scenarios) > 100
    by_birth, by_others = set(), set()
    for body, now in scenarios:
        before = _findings(body, knowledge, now)
        for change in (_older, _younger):
            by_birth |= _changed(before, _findings(_mutated(body, change), knowledge, now))
        by_others |= _changed(before, _findings(_mutated(body, _demographics), knowledge, now))
    assert by_others == set()  # no rule reads sex, gender identity, race, ethnicity or language
    listed = _listing(knowledge, "date-of-birth")
    assert by_birth <= listed, by_birth - listed
    assert {"anakinra-children", "anakinra-seniors"} <= by_birth
    # the Patient gives the checks its birth date alone (above): a rule reads it where one of its checks reads the
    # Patient (the fixed-dose guideline of #5 and #6 is chosen by age, whether or not the answer then differs)
    reading = {rule_for(knowledge, "anakinra", c.key).id for c in (*CHECKS, *PATIENT_VIEW_CHECKS) if PATIENT in c.needs}
    assert reading == listed


def test_pregnancy_status_is_read_by_the_pregnancy_rule_alone(knowledge):
    """Health status assessments: the pregnancy status observations (USCDI "Pregnancy Status")."""
    codes = {c["code"] for inc in knowledge.resolve("https://fhirsvc.org/fhir/ValueSet/pregnancy-status")
             ["compose"]["include"] for c in inc.get("concept") or ()}
    changed = set()
    for body, now in _scenarios():
        observations = body["prefetch"].get("observations")
        if not isinstance(observations, dict) or not observations.get("entry"):
            continue
        other = copy.deepcopy(body)
        other["prefetch"]["observations"]["entry"] = [
            e for e in observations["entry"] if not any(c.get("code") in codes for c in
                                                        ((e.get("resource") or {}).get("code") or {}).get("coding")
                                                        or ())]
        changed |= _changed(_findings(body, knowledge, now), _findings(other, knowledge, now))
    assert changed == _listing(knowledge, "health-status-assessments") == {"anakinra-pregnancy"}


def test_the_registry_lists_only_known_data_elements(knowledge):
    known = {c["code"] for c in knowledge.resolve("https://fhirsvc.org/fhir/CodeSystem/dsi-source-data-elements")
             ["concept"]}
    assert known == set(ELEMENTS)
    registry = json.loads((SCENARIOS.parent.parent / "fhirsvc" / "knowledge" / "data" / REGISTRY).read_text())
    listed = {sub["valueCode"] for a in registry["action"] for ext in a.get("extension") or ()
              for sub in ext.get("extension") or () if sub.get("url") == "dataElement"}
    assert listed and listed <= known
    assert {r.id for r in rules(knowledge)} == set(RULE_IDS)
