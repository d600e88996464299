"""FHIR Bundles in and out of an evaluation: the order request a Bundle stands for, and the searchset Bundle of
DetectedIssues that answers it.

In: a plain Bundle holds the orders and, optionally, the patient's data. The orders are its entries with status
``draft`` (MedicationRequest, DSTU2 MedicationOrder, ServiceRequest, Immunization), else the MedicationRequests a
transaction Bundle creates (``request.method`` POST or PUT), else every MedicationRequest; the rest (Patient,
Condition, AllergyIntolerance, Observation, other MedicationRequests and MedicationStatements, Medication) is the
patient's record, and what the Bundle does not hold counts as "nothing recorded". R5 resources are read in R4 shape.

Out: one DetectedIssue per finding, in the FHIR version asked for. The suggested change of a card travels in
``mitigation``: ``action.text`` is its label, and the ``proposed-change`` extension gives its type (create, update,
delete), its description and the resource: for ``create`` and ``update`` a *contained* resource (a FHIR extension
cannot hold a resource, while a contained one keeps its type, validates with the version's models and can be posted
as it is), for ``delete`` a reference to the order. A proposal that would not validate in that version (an update
built from a malformed order) is left out; its label and description stay.

Used by ``$check-orders`` (``fhir/check_orders.py``) and ``fhirsvc check`` (``evaluation/offline.py``, ``--fhir``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError

from fhirsvc.canonical import CHECK_OUTCOME, EXT_RULE, PROPOSED_CHANGE, V3_ACT_CODE
from fhirsvc.errors import ApiError, operation_outcome
from fhirsvc.evaluation.orders import ORDER_TYPES, malformed_entry
from fhirsvc.evaluation.pipeline import Evaluation
from fhirsvc.fhirtypes import format_instant
from fhirsvc.fhirversion import UnknownResourceType, resource_class

OPERATION = "check-orders"  # the operation whose answer the searchset Bundle is (its self link)
SEVERITY = {"critical": "high", "warning": "moderate", "info": "low"}
R5 = "R5"  # the FHIR version whose shapes differ from the R4 shape the checks read (fhir.registry's names)
BUNDLE_HOOK_INSTANCE = "00000000-0000-5000-8000-000000000000"  # the hookInstance of a request made of a Bundle
_CONTEXT_TYPES = {  # resource type in a plain Bundle -> prefetch key
    "Condition": "conditions", "AllergyIntolerance": "allergies", "Observation": "observations",
    "MedicationRequest": "medications", "MedicationStatement": "medications",
}


def _reference_id(reference: Any) -> str | None:
    if isinstance(reference, Mapping) and isinstance(reference.get("reference"), str):
        return reference["reference"].rstrip("/").rsplit("/", 1)[-1] or None
    return None


def _searchset(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def check_entries(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries of a posted Bundle; 400 (ApiError) naming the first entry that is not an object, or whose
    ``resource`` is there but is not a FHIR resource (``orders.malformed_entry``): a pipeline's malformed Bundle
    is refused, never read as one with nothing to check."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ApiError(HTTPStatus.BAD_REQUEST, "Bundle.entry must be an array of objects")
    problem = malformed_entry(entries)
    if problem:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"Bundle.{problem}")
    return entries


def request_from_bundle(bundle: Mapping[str, Any], selections: Sequence[str] = ()) -> dict[str, Any]:
    """An ``order-sign`` request (with prefetch) for a plain Bundle of orders and patient data; with
    ``selections`` (``Type/id``), an ``order-select`` request judging those orders (the drafts are orders too).
    The orders and Medications keep their entries' ``fullUrl`` (a reference may name one: ``urn:uuid:...``)."""
    entries = check_entries(bundle)
    resources = [e["resource"] for e in entries if isinstance(e.get("resource"), Mapping)]
    full_urls = {id(e["resource"]): e["fullUrl"] for e in entries
                 if isinstance(e.get("resource"), Mapping) and isinstance(e.get("fullUrl"), str) and e["fullUrl"]}
    selected = set(selections)
    orders = [r for r in resources if r["resourceType"] in ORDER_TYPES
              and (r.get("status") == "draft" or f"{r['resourceType']}/{r.get('id')}" in selected)]
    if not orders and bundle.get("type") == "transaction":
        created = {id(e["resource"]) for e in entries
                   if isinstance(e, Mapping) and isinstance(e.get("request"), Mapping)
                   and e["request"].get("method") in ("POST", "PUT")}
        orders = [r for r in resources if r["resourceType"] in ("MedicationRequest", "MedicationOrder")
                  and id(r) in created]
    if not orders:
        orders = [r for r in resources if r["resourceType"] in ("MedicationRequest", "MedicationOrder")]
    if not orders:
        raise ApiError(HTTPStatus.BAD_REQUEST,
                       "the Bundle holds no MedicationRequest (nor another draft order) to check")
    chosen = {id(r) for r in orders}
    rest = [r for r in resources if id(r) not in chosen]
    patient = next((r for r in rest if r["resourceType"] == "Patient"), None)
    patient_id = (patient or {}).get("id") or next(
        (pid for o in orders for pid in [_reference_id(o.get("subject") or o.get("patient"))] if pid), "unknown")
    prefetch: dict[str, Any] = {"patient": patient}
    for key in ("conditions", "allergies", "medications", "observations"):
        prefetch[key] = _searchset([r for r in rest if _CONTEXT_TYPES.get(r["resourceType"]) == key])
    medications = [r for r in rest if r["resourceType"] == "Medication"]
    context = {"userId": "Practitioner/offline", "patientId": str(patient_id),
               "draftOrders": {"resourceType": "Bundle", "type": "collection",
                               "entry": [{**({"fullUrl": full_urls[id(r)]} if id(r) in full_urls else {}),
                                          "resource": r} for r in [*orders, *medications]]}}
    if selected:
        context["selections"] = list(selections)
    return {"hook": "order-select" if selected else "order-sign", "hookInstance": BUNDLE_HOOK_INSTANCE,
            "context": context, "prefetch": prefetch}


def r4_shape(resource: Mapping[str, Any]) -> dict[str, Any]:
    """An R5 order or medication record in the R4 shape the checks read (``medication`` and ``reason`` as
    CodeableReferences become ``medication[x]``, ``reasonCode`` and ``reasonReference``); others as they are."""
    out = dict(resource)
    medication = out.pop("medication", None) if isinstance(out.get("medication"), dict) else None
    if medication is not None:
        if medication.get("concept") is not None:
            out["medicationCodeableConcept"] = medication["concept"]
        if medication.get("reference") is not None:
            out["medicationReference"] = medication["reference"]
    if isinstance(out.get("reason"), list):
        reasons = [r for r in out.pop("reason") if isinstance(r, dict)]
        out["reasonCode"] = [r["concept"] for r in reasons if r.get("concept")]
        out["reasonReference"] = [r["reference"] for r in reasons if r.get("reference")]
    if out.get("resourceType") == "ServiceRequest" and isinstance(out.get("code"), dict) and (
            "concept" in out["code"] or "reference" in out["code"]):
        out["code"] = out["code"].get("concept") or {}
    return out


def orders_request(bundle: Mapping[str, Any], version: str, unavailable: Sequence[str] = (),
                   selections: Sequence[str] = ()) -> dict[str, Any]:
    """The order request a Bundle of FHIR ``version`` stands for (R5 resources read in R4 shape), the keys of
    ``unavailable`` marked as the caller could not read them."""
    if version == R5:
        bundle = {**bundle, "entry": [{**e, "resource": r4_shape(e["resource"])} if isinstance(e.get("resource"), dict)
                                      else e for e in bundle.get("entry", [])]}
    request = request_from_bundle(bundle, selections)
    for key in unavailable:
        request["prefetch"][key] = operation_outcome("the caller could not read it", "not-found")
    return request


def answer(evaluation: Evaluation, version: str, base_url: str, bundle: Mapping[str, Any] | None = None) -> dict:
    """The searchset Bundle of DetectedIssues for an evaluation (its orders from ``bundle``, whose fullUrls name
    them, when there is one)."""
    return searchset(base_url, evaluation.now, detected_issues(evaluation, bundle or {}, version))


def searchset(base_url: str, now: datetime, issues: list[dict[str, Any]], outcome: str | None = None) -> dict:
    entries = [{"fullUrl": f"urn:uuid:{issue['id']}", "resource": issue, "search": {"mode": "match"}}
               for issue in issues]
    if outcome:
        oid = str(uuid.uuid4())
        entries.append({"fullUrl": f"urn:uuid:{oid}",
                        "resource": operation_outcome(outcome, "informational", "information", resource_id=oid),
                        "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                              "meta": {"lastUpdated": format_instant(now)}, "type": "searchset", "total": len(issues),
                              "link": [{"relation": "self", "url": f"{base_url}/${OPERATION}"}]}
    if entries:
        bundle["entry"] = entries
    return bundle


def _order_urls(bundle: Mapping[str, Any], evaluation: Evaluation) -> dict[str, str]:
    """Order id (as the pipeline reads it) -> the reference to the posted order: its fullUrl, else Type/id."""
    by_id: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = {}
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            by_id.setdefault(resource["id"], (entry, resource))
    urls = {}
    for order in evaluation.orders:
        entry, resource = by_id.get(order["id"], ({}, order))
        url = entry.get("fullUrl")
        rtype = resource.get("resourceType")
        rtype = "MedicationRequest" if rtype == "MedicationOrder" else rtype
        urls[order["id"]] = url if isinstance(url, str) and url else f"{rtype}/{order['id']}"
    return urls


def detected_issues(evaluation: Evaluation, bundle: Mapping[str, Any], version: str) -> list[dict[str, Any]]:
    """One DetectedIssue per finding (the findings and the cards are in the same order)."""
    urls = _order_urls(bundle, evaluation)
    subject = _subject((evaluation.request.get("prefetch") or {}).get("patient"), evaluation.orders)
    issues = []
    for finding, card in zip(evaluation.findings, evaluation.cards, strict=True):
        coding = [{"system": V3_ACT_CODE, "code": finding.topic, "display": finding.topic_display}]
        if finding.unable:
            coding.append({"system": CHECK_OUTCOME, "code": "unable-to-check", "display": "Unable to check"})
        issue: dict[str, Any] = {"resourceType": "DetectedIssue", "id": card["uuid"],
                                 "extension": [{"url": EXT_RULE, "valueId": finding.rule}], "status": "final",
                                 "code": {"coding": coding, "text": card["summary"]},
                                 "severity": SEVERITY[finding.indicator]}
        if subject:
            issue["subject" if version == R5 else "patient"] = {"reference": subject}
        issue["identifiedDateTime"] = format_instant(evaluation.now)
        # the judged order; a card for a failed data key, every order whose checks it stopped
        implicated = [urls[o] for o in dict.fromkeys([finding.order_id, *finding.facts.get("order_ids", ())])
                      if o in urls]
        if implicated:
            issue["implicated"] = [{"reference": url} for url in implicated]
        issue["detail"] = card["detail"]
        issue["reference"] = card["links"][0]["url"]
        contained: list[dict[str, Any]] = []
        mitigations: list[dict[str, Any]] = []
        for suggestion in card.get("suggestions", ()):
            action = suggestion["actions"][0]
            parts: list[dict[str, Any]] = [{"url": "type", "valueCode": action["type"]},
                                           {"url": "description", "valueString": action["description"]}]
            proposal = _proposal(action.get("resource"), version, f"proposal-{len(contained) + 1}")
            if proposal is not None:
                contained.append(proposal)
                parts.append({"url": "resource", "valueReference": {"reference": f"#{proposal['id']}"}})
            elif action.get("resourceId"):
                target = action["resourceId"].rsplit("/", 1)[-1]
                parts.append({"url": "resource", "valueReference": {"reference": urls.get(target,
                                                                                          action["resourceId"])}})
            mitigations.append({"extension": [{"url": PROPOSED_CHANGE, "extension": parts}],
                                "action": {"text": suggestion["label"]}})
        if contained:
            issue = {"resourceType": "DetectedIssue", "id": issue["id"], "contained": contained,
                     **{k: v for k, v in issue.items() if k not in ("resourceType", "id")}}
        if mitigations:
            issue["mitigation"] = mitigations
        issues.append(issue)
    return issues


def _subject(patient: Any, orders: Sequence[Mapping[str, Any]]) -> str | None:
    """The patient: ``Patient/id`` of the Bundle's Patient, else the first order's subject reference."""
    if isinstance(patient, dict) and patient.get("resourceType") == "Patient" and isinstance(patient.get("id"), str):
        return f"Patient/{patient['id']}"
    for order in orders:
        subject = order.get("subject")
        if isinstance(subject, dict) and isinstance(subject.get("reference"), str) and subject["reference"]:
            return subject["reference"]
    return None


def _proposal(resource: Mapping[str, Any] | None, version: str, local_id: str) -> dict[str, Any] | None:
    """The proposed resource as a contained resource of the base's version, or None if it would not validate."""
    if not isinstance(resource, Mapping):
        return None
    proposal = {k: v for k, v in resource.items() if k not in ("id", "contained", "meta", "text")}
    proposal = {"resourceType": proposal.pop("resourceType", None), "id": local_id, **proposal}
    if version == R5:
        proposal = r5_shape(proposal)
    try:
        resource_class(version, str(proposal["resourceType"])).model_validate(proposal)
    except (ValidationError, UnknownResourceType, ValueError, TypeError, KeyError):
        return None
    return proposal


def r5_shape(resource: dict[str, Any]) -> dict[str, Any]:
    """An R4 MedicationRequest or ServiceRequest proposal in R5 shape (CodeableReferences for the medication,
    the service code and the reasons)."""
    out = dict(resource)
    if "medicationCodeableConcept" in out:
        out["medication"] = {"concept": out.pop("medicationCodeableConcept")}
    if "medicationReference" in out:
        out["medication"] = {"reference": out.pop("medicationReference")}
    if out.get("resourceType") == "ServiceRequest" and isinstance(out.get("code"), dict):
        out["code"] = {"concept": out["code"]}
    reasons = [{"concept": c} for c in out.pop("reasonCode", ()) or ()]
    reasons += [{"reference": r} for r in out.pop("reasonReference", ()) or ()]
    if reasons:
        out["reason"] = reasons
    if isinstance(out.get("dosageInstruction"), list):
        out["dosageInstruction"] = [_r5_dosage(d) for d in out["dosageInstruction"]]
    return out


def _r5_dosage(dosage: Any) -> Any:
    if not isinstance(dosage, dict) or not {"asNeededCodeableConcept", "asNeededBoolean"} & dosage.keys():
        return dosage
    out = dict(dosage)
    if "asNeededBoolean" in out:
        out["asNeeded"] = out.pop("asNeededBoolean")
    if "asNeededCodeableConcept" in out:
        out["asNeededFor"] = [out.pop("asNeededCodeableConcept")]
    return out
