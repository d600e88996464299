"""``POST [base]/$check-orders``: the order checks as a FHIR operation (``OperationDefinition/check-orders``).

Input: a Bundle (``collection`` or ``transaction``) of the orders and the patient's record, or Parameters with
that Bundle as ``orders`` and optional ``now`` (dateTime), ``unavailable`` (code, repeated: a part of the record
the caller could not read) and ``selection`` (string, repeated: ``Type/id`` of the orders to judge, the other
drafts being context, as in order-select). The Bundle becomes the same request ``fhirsvc check`` makes of it
(``cds.offline.request_from_bundle``) and goes through the one pipeline of the CDS routes (``cds.pipeline``);
nothing is fetched.

Output: a ``searchset`` Bundle with one DetectedIssue per finding, in the base's FHIR version. The suggested change
of a card travels in ``mitigation``: ``action.text`` is its label, and the ``proposed-change`` extension gives its
type (create, update, delete), its description and the resource: for ``create`` and ``update`` a *contained*
resource (a FHIR extension cannot hold a resource, while a contained one keeps its type, validates with the base's
models and can be posted as it is), for ``delete`` a reference to the order. A proposal that would not validate
in the base's version (an update built from a malformed order) is left out; its label and description stay.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from marshmallow import ValidationError as RequestInvalid
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from fhirsvc.cds.offline import UnreadableInput, request_from_bundle
from fhirsvc.cds.orders import ORDER_TYPES, check_bundle_size
from fhirsvc.cds.pipeline import Evaluation, evaluate_orders
from fhirsvc.cds.prefetch import FetchSettings, PreconditionFailed
from fhirsvc.cds.schemas import validate_request
from fhirsvc.cds.urlpolicy import UrlPolicy
from fhirsvc.checks.context import DATA_KEYS
from fhirsvc.checks.reading.windows import parse_datetime
from fhirsvc.errors import ApiError
from fhirsvc.fhir.registry import R5
from fhirsvc.fhirversion import UnknownResourceType, resource_class
from fhirsvc.knowledge.store import Knowledge

OPERATION = "check-orders"
OPERATION_URL = "https://fhirsvc.org/fhir/OperationDefinition/check-orders"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CHECK_OUTCOME = "https://fhirsvc.org/fhir/CodeSystem/check-outcome"
PROPOSED_CHANGE = "https://fhirsvc.org/fhir/StructureDefinition/proposed-change"
SEVERITY = {"critical": "high", "warning": "moderate", "info": "low"}
BUNDLE_TYPES = ("collection", "transaction")
PARAMETERS = ("orders", "now", "unavailable", "selection")
NO_FETCH = FetchSettings(UrlPolicy(()))  # the empty allow-list admits no server
_HTTP = HTTPAdapter()  # never sends: nothing is fetched


def read_input(body: Any) -> tuple[dict[str, Any], datetime | None, list[str], list[str]]:
    """(Bundle, now, unavailable keys, selections) of the posted body; 400 naming what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") not in ("Bundle", "Parameters"):
        what = body.get("resourceType") if isinstance(body, dict) else None
        raise ApiError(HTTPStatus.BAD_REQUEST, "post a Bundle (collection or transaction) of MedicationRequests and "
                       "the patient's record, or Parameters with that Bundle as orders"
                       + (f", not a {what}" if isinstance(what, str) else ""))
    now, unavailable, selections = None, [], []
    bundle: Any = body
    if body["resourceType"] == "Parameters":
        items = body.get("parameter")
        if not isinstance(items, list) or not all(isinstance(p, dict) for p in items):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Parameters.parameter must be an array of objects")
        bundle = None
        for item in items:
            name = item.get("name")
            if name not in PARAMETERS:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown parameter {name!r}: $check-orders takes "
                               f"{', '.join(PARAMETERS)}")
            if name == "orders":
                bundle = item.get("resource")
            elif name == "now":
                now = _now(item.get("valueDateTime"))
            elif name == "unavailable":
                code = item.get("valueCode")
                if code not in DATA_KEYS:
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"unavailable must be a code among {', '.join(DATA_KEYS)}, "
                                   f"not {code!r}")
                unavailable.append(code)
            else:
                value = item.get("valueString")
                if not isinstance(value, str) or "/" not in value:
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"selection must be a valueString Type/id, not {value!r}")
                selections.append(value)
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise ApiError(HTTPStatus.BAD_REQUEST, "the orders parameter must hold a Bundle resource")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"Bundle.type must be collection or transaction, not "
                       f"{bundle.get('type')!r}")
    if not isinstance(bundle.get("entry", []), list) or not all(isinstance(e, dict) for e in bundle.get("entry", [])):
        raise ApiError(HTTPStatus.BAD_REQUEST, "Bundle.entry must be an array of objects")
    check_bundle_size(bundle, "the Bundle")  # its orders are counted once they are told apart (cds.orders)
    return bundle, now, unavailable, selections


def _now(value: Any) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) and len(value) >= 10 else None
    if parsed is None:
        raise ApiError(HTTPStatus.BAD_REQUEST,
                       f"now must be a valueDateTime (e.g. 2026-11-24T12:00:00Z), not {value!r}")
    return parsed


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


def as_request(bundle: Mapping[str, Any], version: str, unavailable: Sequence[str],
               selections: Sequence[str]) -> dict[str, Any]:
    """The order request the Bundle stands for (R5 resources read in R4 shape)."""
    if version == R5:
        bundle = {**bundle, "entry": [{**e, "resource": r4_shape(e["resource"])} if isinstance(e.get("resource"), dict)
                                      else e for e in bundle.get("entry", [])]}
    try:
        request = request_from_bundle(bundle, selections)
    except UnreadableInput as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    for key in unavailable:
        request["prefetch"][key] = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-found", "diagnostics": "the caller could not read it"}]}
    return request


def has_orders(bundle: Mapping[str, Any]) -> bool:
    return any(isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") in ORDER_TYPES[:2]
               for e in bundle.get("entry", []))


def check_orders(body: Any, knowledge: Knowledge, version: str, base_url: str, public_base: str) -> dict[str, Any]:
    """The answer of ``$check-orders`` (a searchset Bundle) for a posted body; ApiError for bad input."""
    bundle, now, unavailable, selections = read_input(body)
    now = now or datetime.now(UTC)
    if not has_orders(bundle):
        return searchset(base_url, now, [], outcome="the Bundle holds no MedicationRequest: nothing to check")
    request = as_request(bundle, version, unavailable, selections)
    try:
        data = validate_request(request)
        result = evaluate_orders(data, {}, NO_FETCH, _HTTP, knowledge, public_base, now)
    except PreconditionFailed as exc:
        raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"nothing about the patient can be read: {exc}") from None
    except RequestInvalid as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"the Bundle cannot be read as orders: {exc.messages}") from None
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST,
                       f"the Bundle's resources have an unexpected structure ({type(exc).__name__})") from None
    return answer(result, data, version, base_url, bundle)


def answer(evaluation: Evaluation, request: Mapping[str, Any], version: str, base_url: str,
           bundle: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The searchset Bundle of DetectedIssues for an evaluation of ``request`` (its orders from ``bundle``, whose
    fullUrls name them, when there is one)."""
    return searchset(base_url, evaluation.now, detected_issues(evaluation, bundle or {}, request, version))


def searchset(base_url: str, now: datetime, issues: list[dict[str, Any]], outcome: str | None = None) -> dict:
    entries = [{"fullUrl": f"urn:uuid:{issue['id']}", "resource": issue, "search": {"mode": "match"}}
               for issue in issues]
    if outcome:
        oid = str(uuid.uuid4())
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": {
            "resourceType": "OperationOutcome", "id": oid,
            "issue": [{"severity": "information", "code": "informational", "diagnostics": outcome}]},
            "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"lastUpdated": _instant(now)},
                              "type": "searchset", "total": len(issues),
                              "link": [{"relation": "self", "url": f"{base_url}/${OPERATION}"}]}
    if entries:
        bundle["entry"] = entries
    return bundle


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _order_urls(bundle: Mapping[str, Any], evaluation: Evaluation) -> dict[str, str]:
    """Order id (as the pipeline reads it) -> the reference to the posted order: its fullUrl, else Type/id."""
    by_id = {}
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


def detected_issues(evaluation: Evaluation, bundle: Mapping[str, Any], request: Mapping[str, Any],
                    version: str) -> list[dict[str, Any]]:
    """One DetectedIssue per finding (the findings and the cards are in the same order)."""
    urls = _order_urls(bundle, evaluation)
    subject = _subject(request["prefetch"].get("patient"), evaluation.orders)
    issues = []
    for finding, card in zip(evaluation.findings, evaluation.cards, strict=True):
        coding = [{"system": V3_ACT_CODE, "code": finding.topic, "display": finding.topic_display}]
        if finding.unable:
            coding.append({"system": CHECK_OUTCOME, "code": "unable-to-check", "display": "Unable to check"})
        issue: dict[str, Any] = {"resourceType": "DetectedIssue", "id": card["uuid"], "status": "final",
                                 "code": {"coding": coding, "text": card["summary"]},
                                 "severity": SEVERITY[finding.indicator]}
        if subject:
            issue["subject" if version == R5 else "patient"] = {"reference": subject}
        issue["identifiedDateTime"] = _instant(evaluation.now)
        if finding.order_id in urls:
            issue["implicated"] = [{"reference": urls[finding.order_id]}]
        issue["detail"] = card["detail"]
        issue["reference"] = card["links"][0]["url"]
        contained, mitigations = [], []
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
