"""The one pipeline from a validated CDS Hooks request to findings and cards, free of Flask.

Orders: read the draft orders, pick the judged ones (order-select: the selections; order-sign: all),
assemble the patient context (prefetch, else the FHIR server), run the checks, build the cards. Patient
view: assemble the patient context (no orders), run the monitoring reminders, build the cards.

Called by the CDS routes (``cds/views.py``), ``fhirsvc check`` (``cds/offline.py``) and ``$check-orders``
(``fhir/check_orders.py``), so every face answers from the same steps. Errors are the callers' to translate:
``PreconditionFailed`` when nothing about the patient could be had. Orders for nothing the knowledge judges
fetch nothing and give nothing (``cds.relevance``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from requests.adapters import HTTPAdapter

from fhirsvc.cds.cards import build_cards
from fhirsvc.cds.orders import order_ids, read_draft_orders
from fhirsvc.cds.prefetch import FetchSettings, assemble_context
from fhirsvc.cds.relevance import judged_context
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, OBSERVATIONS, PATIENT, PatientContext
from fhirsvc.checks.engine import run_checks
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.monitoring import run_patient_view
from fhirsvc.knowledge.store import Knowledge

PATIENT_VIEW_KEYS = (PATIENT, CONDITIONS, MEDICATIONS, OBSERVATIONS)  # what patient-view reads


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found: the orders as read (normalised), the judged ids, the patient context, the
    findings and the cards."""

    hook: str
    now: datetime
    orders: tuple[dict[str, Any], ...]
    judged: frozenset[str]
    context: PatientContext | None  # None: no judged order is for anything the knowledge judges
    findings: list[Finding] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)


def evaluate_orders(data: Mapping[str, Any], templates: Mapping[str, str], fetch: FetchSettings,
                    http: HTTPAdapter, knowledge: Knowledge, public_base: str, now: datetime) -> Evaluation:
    """The order hooks (order-select, order-sign) on a request validated by ``schemas.validate_request``."""
    context = data["context"]
    orders, others = read_draft_orders(context["draftOrders"])
    judged = order_ids(orders, context.get("selections") or [f"{o.get('resourceType', '')}/{o.get('id')}"
                                                             for o in orders])
    patient = judged_context(data, templates, orders, others, judged, fetch, http, now, knowledge)
    if patient is None:  # no judged order is for anything the knowledge judges: nothing fetched, nothing said
        return Evaluation(data["hook"], now, tuple(orders), judged, None)
    findings = run_checks(patient, knowledge)
    cards = build_cards(findings, str(context["patientId"]), knowledge, public_base)
    return Evaluation(data["hook"], now, tuple(orders), judged, patient, findings, cards)


def evaluate_patient_view(data: Mapping[str, Any], templates: Mapping[str, str], fetch: FetchSettings,
                          http: HTTPAdapter, knowledge: Knowledge, public_base: str,
                          now: datetime) -> Evaluation:
    """The patient-view hook: the monitoring reminders for the drugs the patient is on."""
    # only what patient-view reads is read (no allergies); 412 when none of it could be had
    patient = assemble_context(data, templates, [], [], frozenset(), fetch, http, now, keys=PATIENT_VIEW_KEYS)
    findings = run_patient_view(patient, knowledge)
    cards = build_cards(findings, str(data["context"]["patientId"]), knowledge, public_base)
    return Evaluation(data["hook"], now, (), frozenset(), patient, findings, cards)
