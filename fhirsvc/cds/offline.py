"""The checks offline, without the web app: on a saved CDS Hooks request, or on a plain FHIR Bundle.

A saved request (``order-select`` / ``order-sign``) is evaluated as the service would, except that nothing
is fetched: the FHIR server allow-list is empty, so a prefetch key that is missing counts as unavailable
("Unable to check"). A plain Bundle holds the orders and, optionally, the patient's data: the orders are
its entries with status ``draft`` (MedicationRequest, DSTU2 MedicationOrder, ServiceRequest, Immunization),
else the MedicationRequests a transaction Bundle creates (``request.method`` POST or PUT), else every
MedicationRequest; the rest (Patient, Condition, AllergyIntolerance,
Observation, other MedicationRequests and MedicationStatements, Medication) is the patient's record, and
what the Bundle does not hold counts as "nothing recorded".

Used by ``fhirsvc check FILE.json`` (``fhirsvc/cli.py``).
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from requests.adapters import HTTPAdapter

from fhirsvc.bodies import NotJson, parse_json
from fhirsvc.cds.orders import ORDER_TYPES
from fhirsvc.cds.pipeline import Evaluation, evaluate_orders, evaluate_patient_view
from fhirsvc.cds.prefetch import FetchSettings, PreconditionFailed
from fhirsvc.cds.schemas import validate_request
from fhirsvc.cds.services import HOOKS, PATIENT_VIEW
from fhirsvc.cds.urlpolicy import UrlPolicy
from fhirsvc.checks.findings import Finding
from fhirsvc.config import DEFAULTS
from fhirsvc.errors import ApiError, FhirsvcError
from fhirsvc.escaping import plain_text
from fhirsvc.knowledge import Knowledge

DEFAULT_PUBLIC_BASE = "http://127.0.0.1:8080"  # where `make run` serves the monograph pages
MAX_INPUT_BYTES = DEFAULTS["MAX_CONTENT_LENGTH"]  # the largest file read, as the largest HTTP body
OFFLINE_HOOK_INSTANCE = "00000000-0000-5000-8000-000000000000"
_CONTEXT_TYPES = {  # resource type in a plain Bundle -> prefetch key
    "Condition": "conditions", "AllergyIntolerance": "allergies", "Observation": "observations",
    "MedicationRequest": "medications", "MedicationStatement": "medications",
}


class UnreadableInput(FhirsvcError, ValueError):
    """The input is not JSON, not a CDS Hooks order request or a FHIR Bundle, or has nothing to check.
    The message is one line, meant for a person."""

    status = HTTPStatus.BAD_REQUEST


@dataclass(frozen=True)
class OfflineResult:
    hook: str
    now: datetime
    judged: tuple[str, ...]  # Type/id of the judged orders
    findings: list[Finding] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    evaluation: Evaluation | None = None  # the pipeline's result, for other faces ($check-orders' Bundle)
    request: Mapping[str, Any] = field(default_factory=dict)  # the validated request the document stands for

    @property
    def critical(self) -> bool:
        return any(f.indicator == "critical" for f in self.findings)


def read_document(path: Path, max_bytes: int = MAX_INPUT_BYTES) -> Any:
    """The JSON document in ``path``; UnreadableInput (one line) if it cannot be read or is not JSON.

    Only a regular file is read (a FIFO, a device such as /dev/zero or a socket is refused without reading,
    so nothing blocks), at most ``max_bytes`` of it (the HTTP routes' body limit, FHIRSVC_MAX_CONTENT_LENGTH),
    and it is parsed as the HTTP routes parse a body (fhirsvc.bodies.parse_json): UTF-8 (a leading byte-order
    mark is allowed), no NaN or Infinity, nesting at most MAX_DEPTH levels."""
    try:
        mode = os.stat(path).st_mode  # before opening: opening a device (or a FIFO) may block or act
        if stat.S_ISDIR(mode):
            raise UnreadableInput(f"{path}: is a directory")
        if not stat.S_ISREG(mode):
            raise UnreadableInput(f"{path}: not a regular file (a pipe, device or socket is not read)")
        # O_NONBLOCK: should the path have become a FIFO since, opening it does not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UnreadableInput(f"{path}: no such file") from None
    except OSError as exc:
        raise UnreadableInput(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as file:
        try:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):  # replaced since it was looked at
                raise UnreadableInput(f"{path}: not a regular file (a pipe, device or socket is not read)")
            if info.st_size > max_bytes:
                raise UnreadableInput(f"{path}: larger than {max_bytes} bytes (FHIRSVC_MAX_CONTENT_LENGTH)")
            raw = file.read(max_bytes + 1)
        except OSError as exc:
            raise UnreadableInput(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > max_bytes:  # it grew while being read
        raise UnreadableInput(f"{path}: larger than {max_bytes} bytes (FHIRSVC_MAX_CONTENT_LENGTH)")
    try:
        return parse_json(raw.removeprefix(codecs.BOM_UTF8))
    except NotJson as exc:
        raise UnreadableInput(f"{path}: {exc}") from None


def _reference_id(reference: Any) -> str | None:
    if isinstance(reference, Mapping) and isinstance(reference.get("reference"), str):
        return reference["reference"].rstrip("/").rsplit("/", 1)[-1] or None
    return None


def _searchset(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def request_from_bundle(bundle: Mapping[str, Any], selections: Sequence[str] = ()) -> dict[str, Any]:
    """An ``order-sign`` request (with prefetch) for a plain Bundle of orders and patient data; with
    ``selections`` (``Type/id``), an ``order-select`` request judging those orders (the drafts are orders too)."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise UnreadableInput("the Bundle's entry is not an array")
    resources = [e["resource"] for e in entries if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
                 and isinstance(e["resource"].get("resourceType"), str)]
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
        raise UnreadableInput("the Bundle holds no MedicationRequest (nor another draft order) to check")
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
                               "entry": [{"resource": r} for r in [*orders, *medications]]}}
    if selected:
        context["selections"] = list(selections)
    return {"hook": "order-select" if selected else "order-sign", "hookInstance": OFFLINE_HOOK_INSTANCE,
            "context": context, "prefetch": prefetch}


def as_request(document: Any) -> dict[str, Any]:
    """The validated CDS Hooks request a document stands for (a saved request, or a plain Bundle)."""
    if not isinstance(document, dict):
        raise UnreadableInput(f"expected a JSON object (a CDS Hooks request or a FHIR Bundle), not a JSON "
                              f"{type(document).__name__.replace('dict', 'object').replace('list', 'array')}")
    if "hook" in document or "context" in document:
        body = document
    elif document.get("resourceType") == "Bundle":
        body = request_from_bundle(document)
    elif isinstance(document.get("resourceType"), str):
        raise UnreadableInput(f"a {document['resourceType']} is neither a CDS Hooks request nor a Bundle")
    else:
        raise UnreadableInput("neither a CDS Hooks request (hook, context) nor a FHIR Bundle")
    try:
        data = validate_request(body)
    except ValidationError as exc:
        raise UnreadableInput(f"not a valid CDS Hooks request: {_one_line(exc.messages)}") from None
    if data["hook"] not in (*HOOKS, PATIENT_VIEW):
        raise UnreadableInput(f"hook {data['hook']!r} is not checked here (only {', '.join(HOOKS)} and "
                              f"{PATIENT_VIEW})")
    return data


def _one_line(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, Mapping):
        return "; ".join(_one_line(v, f"{prefix}{k}." if not str(k).startswith("_") else prefix)
                         for k, v in messages.items())
    if isinstance(messages, list):
        return ", ".join(_one_line(m, prefix) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages)


def evaluate_offline(document: Any, knowledge: Knowledge, now: datetime | None = None,
                     public_base: str = DEFAULT_PUBLIC_BASE) -> OfflineResult:
    """Run the checks on a saved request or a plain Bundle: the findings and the cards the service would
    answer. Nothing is fetched. UnreadableInput if the document cannot be checked."""
    data = as_request(document)
    now = now or datetime.now(UTC)
    try:
        # the empty allow-list admits no server: the adapter never sends
        handler = evaluate_patient_view if data["hook"] == PATIENT_VIEW else evaluate_orders
        result = handler(data, {}, FetchSettings(UrlPolicy(())), HTTPAdapter(), knowledge, public_base.rstrip("/"),
                         now)
    except (PreconditionFailed, ApiError) as exc:  # ApiError: more than a limit allows (cds.orders)
        raise UnreadableInput(str(exc)) from None
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise UnreadableInput(f"the request's resources have an unexpected structure ({type(exc).__name__})") \
            from None
    refs = tuple(f"{o.get('resourceType')}/{o.get('id')}" for o in result.orders if o.get("id") in result.judged)
    return OfflineResult(hook=data["hook"], now=now, judged=refs, findings=result.findings, cards=result.cards,
                         evaluation=result, request=data)


def findings_json(result: OfflineResult) -> dict[str, Any]:
    """The result as JSON: the findings (topic, indicator, summary, order, ...) and the CDS Hooks cards."""
    return {
        "hook": result.hook, "now": result.now.isoformat(), "judged": list(result.judged),
        "critical": result.critical,
        "findings": [{"topic": f.topic, "topicDisplay": f.topic_display, "indicator": f.indicator,
                      "summary": f.summary, "order": order_reference(f), "rule": f.rule, "drug": f.drug,
                      "unableToCheck": f.unable} for f in result.findings],
        "cards": result.cards,
    }


def order_reference(finding: Finding) -> str:
    return str(finding.facts.get("order") or finding.order_id or "")


def findings_table(result: OfflineResult) -> str:
    """The findings as a plain-text table (topic, indicator, summary, order) and a one-line tally; what the
    input named (order ids, names) is ``plain_text``, so that no control character reaches the terminal."""
    rows = [tuple(map(plain_text, (f.topic, f.indicator, f.summary, order_reference(f)))) for f in result.findings]
    judged = plain_text(", ".join(result.judged) or "none")
    tally = {level: sum(1 for f in result.findings if f.indicator == level)
             for level in ("critical", "warning", "info")}
    footer = (f"{len(rows)} finding(s): {tally['critical']} critical, {tally['warning']} warning, {tally['info']} info"
              f" | {result.hook}, judged: {judged} | now {result.now.isoformat()}")
    if not rows:
        return f"No findings.\n{footer}"
    header = ("TOPIC", "INDICATOR", "SUMMARY", "ORDER")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(r[:3])), r[3]]).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, footer])
