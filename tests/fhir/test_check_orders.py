"""``POST [base]/$check-orders``: every golden scenario gives the topics and indicators of the CDS Hooks path;
answers validate on each base (the validating client); bad input gets a 400 OperationOutcome, never a 500."""

from __future__ import annotations

import copy
import json
import sys
from collections import Counter
from datetime import datetime
from http import HTTPStatus
from typing import Any

import pytest

from fhirsvc.canonical import CHECK_OUTCOME, EXT_RULE, PROPOSED_CHANGE, V3_ACT_CODE
from fhirsvc.checks.context import DATA_KEYS, MEDICATIONS, STATEMENTS
from fhirsvc.evaluation.bundles import SEVERITY
from fhirsvc.evaluation.orders import MAX_BUNDLE_RESOURCES, MAX_ORDERS
from tests.cds.test_scenarios import PARAMS, pair, run_scenario, scenario_app  # noqa: F401 (fixture)
from tests.fhir.conftest import ValidatingClient

INDICATOR = {severity: indicator for indicator, severity in SEVERITY.items()}
KINERET = {"text": "Kineret 100 mg/0.67 mL prefilled syringe"}


def parameters(body: dict) -> dict:
    """A CDS Hooks order request as $check-orders Parameters: the draft orders (with their fullUrls, which a
    reference may name) and the prefetched record in one collection Bundle, the judged orders as selection, and
    each prefetch key the service could not have read (absent: nothing is fetched here; an OperationOutcome) as
    unavailable; the optional ``statements`` key failing is the medication list's failing, and absent is nothing."""
    context = body["context"]
    entries = [{k: e[k] for k in ("fullUrl", "resource") if k in e} for e in context["draftOrders"].get("entry", [])]
    unavailable = []
    for key in (*DATA_KEYS, STATEMENTS):
        value = (body.get("prefetch") or {}).get(key, "absent")
        if key == STATEMENTS and value == "absent":
            continue
        if value == "absent" or (isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"):
            unavailable.append(MEDICATIONS if key == STATEMENTS else key)
        elif isinstance(value, dict) and value.get("resourceType") == "Bundle":
            entries += [{"resource": e["resource"]} for e in value.get("entry", [])]
        elif isinstance(value, dict):
            entries.append({"resource": value})
    orders = [e["resource"] for e in context["draftOrders"].get("entry", [])
              if e["resource"].get("resourceType") != "Medication"]
    selections = context.get("selections") or [f"{o['resourceType']}/{o['id']}" for o in orders]
    return {"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": {"resourceType": "Bundle", "type": "collection", "entry": entries}},
        *({"name": "selection", "valueString": s} for s in selections),
        *({"name": "unavailable", "valueCode": k} for k in dict.fromkeys(unavailable))]}


def issues(answer: dict) -> list[dict]:
    return [e["resource"] for e in answer.get("entry", ()) if e["search"]["mode"] == "match"]


def issue_pair(issue: dict) -> tuple[str, str]:
    code = next(c["code"] for c in issue["code"]["coding"] if c["system"] == V3_ACT_CODE)
    return code, INDICATOR[issue["severity"]]


@pytest.fixture(scope="module")
def fhir_client(scenario_app):  # noqa: F811
    return ValidatingClient(scenario_app.test_client())


ORDER_SCENARIOS = [p for p in PARAMS if not p.marks and json.loads(p.values[0].read_text(encoding="utf-8"))["hook"]
                   in ("order-select", "order-sign")]


@pytest.mark.parametrize("base", ["/fhir/R4", "/fhir/R5"])
@pytest.mark.parametrize(("request_file", "expected"), ORDER_SCENARIOS)
def test_scenario_through_check_orders_matches_cds_hooks(scenario_app, fhir_client, base,  # noqa: F811
                                                        request_file, expected):
    body = json.loads(request_file.read_text(encoding="utf-8"))
    now = expected["now"]
    cards = run_scenario(scenario_app, copy.deepcopy(body), datetime.fromisoformat(now))
    posted = parameters(body)
    posted["parameter"].append({"name": "now", "valueDateTime": now})

    response = fhir_client.post(f"{base}/$check-orders", json=posted)  # validated for its fhirVersion

    answer = response.get_json()
    assert response.status_code == HTTPStatus.OK, answer
    found = issues(answer)
    full_urls = {e["fullUrl"] for e in body["context"]["draftOrders"].get("entry", []) if "fullUrl" in e}
    assert Counter(issue_pair(i) for i in found) == Counter(pair(c) for c in cards)
    assert answer["total"] == len(found)
    by_id = {c["uuid"]: c for c in cards}
    for issue in found:
        card = by_id[issue["id"]]  # the same deterministic uuid as the card
        assert issue["status"] == "final" and issue["identifiedDateTime"] == now.replace("+00:00", "Z")
        assert issue["detail"] == card["detail"] and issue["reference"] == card["links"][0]["url"]
        assert issue["code"]["text"] == card["summary"]
        assert issue["extension"] == [{"url": EXT_RULE, "valueId": card["extension"]["fhirsvc.rule"]}]
        assert (CHECK_OUTCOME in {c["system"] for c in issue["code"]["coding"]}) == \
            card["summary"].startswith("Unable to check")
        assert len(issue.get("mitigation", ())) == len(card.get("suggestions", ()))
        implicated = issue["implicated"][0]["reference"]  # the order's fullUrl where its entry has one, else Type/id
        assert implicated in full_urls or implicated.split("/")[0] in ("MedicationRequest", "ServiceRequest",
                                                                        "Immunization")


def test_the_parity_covers_the_scenarios():
    assert len(ORDER_SCENARIOS) >= 70


def bundle(*resources: dict, kind: str = "collection", **entry_extra: Any) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r, **entry_extra} for r in resources]}


def order(oid: str = "mr-1", dose: float = 100, status: str = "draft", **extra: Any) -> dict:
    return {"resourceType": "MedicationRequest", "id": oid, "status": status, "intent": "order",
            "medicationCodeableConcept": KINERET, "subject": {"reference": "Patient/p1"},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg"}}]}], **extra}


PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-05-01", "gender": "female"}


def codes(answer: dict) -> list[str]:
    return sorted(issue_pair(i)[0] for i in issues(answer))


def test_a_bundle_alone_is_the_orders(fhir):
    response = fhir.post("/fhir/R4/$check-orders", json=bundle(order(dose=300), PATIENT))
    assert response.status_code == HTTPStatus.OK
    answer = response.get_json()
    high = next(i for i in issues(answer) if issue_pair(i) == ("DOSEH", "warning"))
    assert high["patient"] == {"reference": "Patient/p1"} and high["severity"] == "moderate"
    assert high["implicated"] == [{"reference": "MedicationRequest/mr-1"}]
    assert high["reference"].endswith("/monographs/anakinra#dosing-ra")


def test_implicated_is_the_full_url_and_a_proposed_update_is_contained(fhir):
    body = json.loads(next(p for p in PARAMS if p.id.startswith("027-")).values[0].read_text(encoding="utf-8"))
    posted = parameters(body)
    entry = posted["parameter"][0]["resource"]["entry"][0]
    assert entry["resource"]["status"] == "draft"
    entry["fullUrl"] = "urn:uuid:6d1c1d4e-7b67-4d5a-a1a5-0c0a5b1e2f01"
    patient = f"Patient/{body['prefetch']['patient']['id']}"
    for base, patient_key in (("/fhir/R4", "patient"), ("/fhir/R5", "subject")):
        answer = fhir.post(f"{base}/$check-orders", json=posted).get_json()
        renal = next(i for i in issues(answer) if issue_pair(i)[0] == "DOSECOND")
        assert renal["implicated"] == [{"reference": "urn:uuid:6d1c1d4e-7b67-4d5a-a1a5-0c0a5b1e2f01"}]
        assert renal[patient_key] == {"reference": patient}
        assert renal["mitigation"][0]["extension"][0]["url"] == PROPOSED_CHANGE
        change = {e["url"]: e for e in renal["mitigation"][0]["extension"][0]["extension"]}
        assert change["type"]["valueCode"] == "update"
        local = change["resource"]["valueReference"]["reference"]
        (proposal,) = [c for c in renal["contained"] if f"#{c['id']}" == local]
        original = entry["resource"]["dosageInstruction"][0]["timing"]
        assert proposal["resourceType"] == "MedicationRequest"
        assert proposal["dosageInstruction"][0]["timing"] != original
        assert ("medication" in proposal) == (base == "/fhir/R5")  # R5: a CodeableReference


def test_the_negotiated_base_answers_r5_when_asked(fhir):
    response = fhir.post("/fhir/$check-orders", json=bundle(order(dose=300), PATIENT),
                         headers={"Accept": "application/fhir+json; fhirVersion=5.0"})
    assert response.status_code == HTTPStatus.OK
    assert "fhirVersion=5.0" in response.headers["Content-Type"]
    assert all("subject" in i for i in issues(response.get_json()))


def test_r5_orders_are_read_on_the_r5_base(fhir):
    r5_order = {k: v for k, v in order(dose=300).items() if k != "medicationCodeableConcept"}
    r5_order["medication"] = {"concept": KINERET}
    answer = fhir.post("/fhir/R5/$check-orders", json=bundle(r5_order, PATIENT)).get_json()
    assert "DOSEH" in codes(answer)


def test_a_transaction_judges_the_orders_it_creates(fhir):
    current = order("mr-old", status="active", authoredOn="2026-01-01")
    posted = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": order("mr-new", status="active"), "request": {"method": "POST", "url": "MedicationRequest"}},
        {"resource": current, "request": {"method": "GET", "url": "MedicationRequest/mr-old"}},
        {"resource": PATIENT, "request": {"method": "GET", "url": "Patient/p1"}}]}
    answer = fhir.post("/fhir/R4/$check-orders", json=posted).get_json()
    duplicate = next(i for i in issues(answer) if issue_pair(i)[0] == "DUPTHPY")
    assert duplicate["implicated"] == [{"reference": "MedicationRequest/mr-new"}]
    assert {i["implicated"][0]["reference"] for i in issues(answer)} == {"MedicationRequest/mr-new"}


def test_unable_to_check_findings_carry_their_own_code(fhir):
    posted = {"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": bundle(order(), PATIENT)},
        {"name": "unavailable", "valueCode": "allergies"}]}
    answer = fhir.post("/fhir/R4/$check-orders", json=posted).get_json()
    unable = [i for i in issues(answer) if any(c["system"] == CHECK_OUTCOME for c in i["code"]["coding"])]
    assert unable and all(i["code"]["text"].startswith("Unable to check") for i in unable)
    assert "ALGY" in {issue_pair(i)[0] for i in unable}


def test_no_medication_request_gives_an_empty_bundle_with_an_information_issue(fhir):
    for base in ("/fhir/R4", "/fhir/R5"):
        response = fhir.post(f"{base}/$check-orders", json=bundle(PATIENT))
        answer = response.get_json()
        assert response.status_code == HTTPStatus.OK and answer["total"] == 0
        (entry,) = answer["entry"]
        assert entry["search"]["mode"] == "outcome"
        assert entry["resource"]["issue"][0]["severity"] == "information"


@pytest.mark.parametrize(("body", "says"), [
    ({"resourceType": "Patient", "id": "p1"}, "not a Patient"),
    ([1, 2], "post a Bundle"),
    ({"resourceType": "Bundle", "type": "searchset", "entry": []}, "Bundle.type"),
    ({"resourceType": "Bundle", "entry": []}, "Bundle.type"),
    ({"resourceType": "Bundle", "type": "collection", "entry": {"resource": {}}}, "Bundle.entry"),
    ({"resourceType": "Parameters", "parameter": [{"name": "now", "valueDateTime": "2026-11-24"}]}, "orders"),
    ({"resourceType": "Parameters", "parameter": [{"name": "orders", "resource": {"resourceType": "Patient"}}]},
     "orders"),
    ({"resourceType": "Parameters", "parameter": [{"name": "ordres", "resource": {}}]}, "unknown parameter"),
    ({"resourceType": "Parameters", "parameter": "orders"}, "Parameters.parameter"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": {"resourceType": "Bundle", "type": "collection"}},
        {"name": "now", "valueDateTime": "yesterday"}]}, "now must be"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": {"resourceType": "Bundle", "type": "collection"}},
        {"name": "unavailable", "valueCode": "labs"}]}, "unavailable must be"),
    ({"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": {"resourceType": "Bundle", "type": "collection"}},
        {"name": "selection", "valueString": "mr-1"}]}, "selection must be"),
], ids=["patient", "array", "searchset", "no-type", "entry-object", "no-orders", "orders-not-bundle",
        "unknown-parameter", "parameter-not-array", "bad-now", "bad-unavailable", "bad-selection"])
def test_bad_input_is_a_400_operation_outcome(fhir, body, says):
    response = fhir.post("/fhir/R4/$check-orders", json=body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and says in outcome["issue"][0]["diagnostics"]


def test_malformed_resources_are_never_a_500(fhir):
    weird = [order(dosageInstruction="daily"), order(medicationCodeableConcept=[1]), order(subject="Patient/p1"),
             {"resourceType": "MedicationRequest", "status": "draft", "id": 7}, order(status=["draft"])]
    for resource in weird:
        response = fhir.post("/fhir/R4/$check-orders", json=bundle(resource, {"resourceType": "Observation",
                                                                             "code": "x", "id": "o"}))
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST), response.get_json()


def test_every_part_unavailable_is_a_422(fhir):
    posted = {"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": bundle(order())}, *({"name": "unavailable", "valueCode": k} for k in DATA_KEYS)]}
    response = fhir.post("/fhir/R4/$check-orders", json=posted)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_not_json_and_other_media_types(fhir):
    assert fhir.post("/fhir/R4/$check-orders", data="{", content_type="application/fhir+json").status_code == 400
    assert fhir.post("/fhir/R4/$check-orders", data="<Bundle/>", content_type="application/fhir+xml").status_code == 415


@pytest.mark.parametrize("base", ["/fhir/R4", "/fhir/R5"])
def test_declared_by_an_operation_definition_listed_in_the_capability_statement(fhir, base):
    statement = fhir.get(f"{base}/metadata").get_json()
    (operation,) = [o for o in statement["rest"][0]["operation"] if o["name"] == "check-orders"]
    definition = fhir.get(f"{base}/OperationDefinition/check-orders").get_json()
    assert definition["url"] == operation["definition"]
    assert definition["code"] == "check-orders" and definition["system"] is True
    assert {p["name"] for p in definition["parameter"]} == {"orders", "now", "unavailable", "selection", "return"}


def test_the_codes_and_extension_it_writes_are_defined_in_the_knowledge(knowledge):
    outcome = knowledge.resolve(CHECK_OUTCOME)
    assert [c["code"] for c in outcome["concept"]] == ["unable-to-check"]
    extension = knowledge.resolve(PROPOSED_CHANGE)
    slices = {e["sliceName"] for e in extension["differential"]["element"] if e.get("sliceName")}
    assert slices == {"type", "description", "resource"}
    assert [dict(c) for c in extension["context"]] == [{"type": "element", "expression": "DetectedIssue.mitigation"}]
    rule = knowledge.resolve(EXT_RULE)
    assert [dict(c) for c in rule["context"]] == [{"type": "element", "expression": "DetectedIssue"}]
    assert [t["code"] for t in rule["differential"]["element"][-1]["type"]] == ["id"]


def test_more_orders_than_allowed_is_a_413_operation_outcome_naming_the_limit(fhir):
    posted = bundle(*(order(f"mr-{i}") for i in range(MAX_ORDERS + 1)), PATIENT)
    response = fhir.post("/fhir/R4/$check-orders", json=posted)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    issue = response.get_json()["issue"][0]
    assert issue["code"] == "too-costly" and "MAX_ORDERS" in issue["diagnostics"]
    posted["entry"] = posted["entry"][1:] + [{"resource": order(f"active-{i}", status="active")} for i in range(50)]
    assert fhir.post("/fhir/R4/$check-orders", json=posted).status_code == HTTPStatus.OK  # the record is no order


def test_a_bundle_of_more_resources_than_allowed_is_a_413_operation_outcome(fhir):
    conditions = [{"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/p1"}}
                  for i in range(MAX_BUNDLE_RESOURCES)]
    response = fhir.post("/fhir/R5/$check-orders", json=bundle(order(), PATIENT, *conditions))
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert "MAX_BUNDLE_RESOURCES" in response.get_json()["issue"][0]["diagnostics"]


def python_calls(client, body: dict) -> int:
    """How many Python function calls one $check-orders call makes (a count, not a time: the same on any
    machine)."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        response = client.post("/fhir/R4/$check-orders", json=body)
    finally:
        sys.setprofile(None)
    assert response.status_code == HTTPStatus.OK
    return calls


def many_orders(count: int) -> dict:
    """Every other order for anakinra, the others a TNF inhibitor, a live vaccine or another drug: each order
    interacts with, or duplicates, half of the others."""
    others = [{"text": "Humira 40 mg pen"}, {"text": "MMR live vaccine"}, {"text": "metformin 500 mg tablet"}]
    return bundle(*(order(f"mr-{i}", medicationCodeableConcept=KINERET if i % 2 == 0 else others[i // 2 % 3])
                    for i in range(count)), PATIENT)


def test_the_work_grows_with_the_orders_not_with_their_square(open_app):
    """Twice the orders, about twice the work: each order is judged against indexes of the others built once
    per call, never by a scan of every other order (which made 1,000 orders take seconds)."""
    client = open_app.test_client()
    python_calls(client, many_orders(20))  # the knowledge's lazy indexes and memos, built once
    small, large = python_calls(client, many_orders(100)), python_calls(client, many_orders(200))
    assert large / small < 2.3, (small, large)


# --- references, statements and malformed entries (issue items: urn:uuid references, R5 statements, entry types) --

ANAKINRA_MED = {"resourceType": "Medication", "code": {"coding": [
    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72435"}]}}
MED_URN = "urn:uuid:5b0d6a0e-8f41-4e1e-9c55-7a3f6a2d9b10"
E_COLI_ALLERGY = {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p1"},
                  "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "allergyintolerance-clinical", "code": "active"}]},
                  "code": {"text": "Proteins derived from E. coli"}}


def referencing_order(version: str, reference: str, dose: float = 200) -> dict:
    """A draft order naming its medication by reference alone (R4 medicationReference, R5 medication.reference)."""
    placed = order(dose=dose)
    del placed["medicationCodeableConcept"]
    if version == "R5":
        placed["medication"] = {"reference": {"reference": reference}}
    else:
        placed["medicationReference"] = {"reference": reference}
    return placed


def entries_bundle(kind: str, *entries: dict) -> dict:
    if kind == "transaction":
        entries = tuple({**e, "request": {"method": "POST", "url": e["resource"]["resourceType"]}} for e in entries)
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


@pytest.mark.parametrize("kind", ["transaction", "collection"])
@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize(("reference", "full_url", "medication_id"), [
    pytest.param(MED_URN, MED_URN, None, id="urn-uuid"),
    pytest.param("https://pharmacy.example.org/fhir/Medication/77", "https://pharmacy.example.org/fhir/Medication/77",
                 None, id="absolute-full-url"),
    pytest.param("Medication/m-kin", None, "m-kin", id="type-and-id"),
])
def test_a_medication_named_by_reference_in_the_bundle_is_recognised(fhir, kind, version, reference, full_url,
                                                                     medication_id):
    """200 mg/day of anakinra named only by a reference to another entry: the high-dose card; with an E. coli
    protein allergy on file, the critical allergy card."""
    medication = {**ANAKINRA_MED, **({"id": medication_id} if medication_id else {})}
    med_entry = {"resource": medication, **({"fullUrl": full_url} if full_url else {})}
    posted = entries_bundle(kind, {"fullUrl": "urn:uuid:5b0d6a0e-8f41-4e1e-9c55-7a3f6a2d9b11",
                                   "resource": referencing_order(version, reference)},
                            med_entry, {"resource": PATIENT}, {"resource": E_COLI_ALLERGY})
    response = fhir.post(f"/fhir/{version}/$check-orders", json=posted)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    found = Counter(issue_pair(i) for i in issues(response.get_json()))
    assert found[("DOSEH", "warning")] == 1 and found[("ALGY", "critical")] == 1


def test_an_unresolved_reference_is_read_by_its_display(fhir):
    named = referencing_order("R4", "urn:uuid:not-in-the-bundle")
    named["medicationReference"]["display"] = "Kineret"
    assert ("DOSEH", "warning") in [issue_pair(i) for i in issues(
        fhir.post("/fhir/R4/$check-orders", json=bundle(named, PATIENT)).get_json())]
    bare = referencing_order("R4", "urn:uuid:not-in-the-bundle")
    answer = fhir.post("/fhir/R4/$check-orders", json=bundle(bare, PATIENT)).get_json()
    assert issues(answer) == []


def etanercept_statement(status: str, **extra: Any) -> dict:
    return {"resourceType": "MedicationStatement", "id": "ms-1", "status": status,
            "medication": {"concept": {"text": "Enbrel (etanercept) 50 mg/mL"}},
            "subject": {"reference": "Patient/p1"}, **extra}


@pytest.mark.parametrize(("statement", "interaction"), [
    pytest.param(etanercept_statement("recorded", effectivePeriod={"start": "2026-01-01"}), True, id="recorded"),
    pytest.param(etanercept_statement("recorded", effectiveDateTime="2026-10-01"), True, id="recorded-date-time"),
    pytest.param(etanercept_statement("recorded", effectivePeriod={"start": "2026-01-01", "end": "2026-06-30"}), False,
                 id="recorded-ended"),
    pytest.param(etanercept_statement("entered-in-error", effectivePeriod={"start": "2026-01-01"}), False,
                 id="entered-in-error"),
    pytest.param(etanercept_statement("draft"), False, id="draft"),
])
def test_an_r5_statement_recorded_is_current_therapy(fhir, statement, interaction):
    """Anakinra ordered while etanercept is recorded (R5): the TNF-inhibitor interaction on /fhir/R5/$check-orders."""
    posted = {"resourceType": "Parameters", "parameter": [
        {"name": "orders", "resource": bundle(order(), PATIENT, statement)},
        {"name": "now", "valueDateTime": "2026-11-24T12:00:00Z"}]}
    response = fhir.post("/fhir/R5/$check-orders", json=posted)
    assert response.status_code == HTTPStatus.OK, response.get_json()
    assert (("DRG", "warning") in [issue_pair(i) for i in issues(response.get_json())]) is interaction


@pytest.mark.parametrize(("resource", "kind"), [
    pytest.param("MedicationRequest/mr-1", "a JSON string", id="string"),
    pytest.param(7, "a JSON number", id="number"),
    pytest.param([order()], "a JSON array", id="array"),
    pytest.param(None, "a JSON null", id="null"),
    pytest.param({"id": "x"}, "an object without a resourceType", id="no-resource-type"),
])
@pytest.mark.parametrize("version", ["R4", "R5"])
def test_an_entry_whose_resource_is_not_a_resource_is_a_400_naming_it(fhir, version, resource, kind):
    posted = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": PATIENT}, {"resource": resource, "request": {"method": "POST"}}]}
    response = fhir.post(f"/fhir/{version}/$check-orders", json=posted)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"] == f"Bundle.entry[1].resource must be a FHIR resource, not {kind}"
