"""The one pipeline from a validated CDS Hooks request to findings and cards, free of Flask.

Orders: read the draft orders, pick the judged ones (order-select: the selections; order-sign: all),
assemble the patient context (prefetch, else the FHIR server), run the checks, keep the card families the call's
per-call configuration did not switch off (``evaluation.callconfig``), build the cards. Patient
view: assemble the patient context (no orders), run the monitoring reminders, build the cards.

Run through the service table (``evaluation.services``) by the CDS routes (``cds/views.py``), ``fhirsvc check``
(``evaluation/offline.py``) and ``$check-orders`` (``fhir/check_orders.py``), so every face answers from the same
steps; what they read besides the request is their ``Environment``. ``PreconditionFailed`` when nothing about the
patient could be had. Orders for nothing the knowledge judges fetch nothing and give nothing
(``evaluation.relevance``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fhirsvc.checks.base import Run
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, OBSERVATIONS, PATIENT, PatientContext
from fhirsvc.checks.engine import drug_orders, findings_of
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.monitoring import run_patient_view
from fhirsvc.checks.unavailable import one_card_per_failed_key
from fhirsvc.evaluation.callconfig import parse_call_configuration
from fhirsvc.evaluation.cards import build_cards
from fhirsvc.evaluation.environment import Call, Environment
from fhirsvc.evaluation.orders import order_ids, read_draft_orders
from fhirsvc.evaluation.prefetch import assemble_context
from fhirsvc.evaluation.relevance import judged_context
from fhirsvc.knowledge.site import SiteConfig

PATIENT_VIEW_KEYS = (PATIENT, CONDITIONS, MEDICATIONS, OBSERVATIONS)  # what patient-view reads


def site_findings(findings: list[Finding], site: SiteConfig) -> list[Finding]:
    """The findings as the site configuration wants them: none of a rule it switched off, each with the indicator
    it set for the rule (``knowledge.site``)."""
    kept = []
    for finding in findings:
        if site.enabled(finding.rule):
            indicator = site.indicator(finding.rule, finding.indicator)
            kept.append(finding if indicator == finding.indicator else replace(finding, indicator=indicator))
    return kept


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found: the orders as read (normalised), the judged ids, the patient context, the
    findings and the cards, for the validated ``request``."""

    request: Mapping[str, Any]
    hook: str
    now: datetime
    orders: tuple[dict[str, Any], ...]
    judged: frozenset[str]
    context: PatientContext | None  # None: no judged order is for anything the knowledge judges
    findings: list[Finding] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    drug_orders: tuple[tuple[str, str], ...] = ()  # the judged orders of a drug of the knowledge: (order id, drug)

    def cards_per_order(self) -> list[tuple[str, str, int]]:
        """Each judged order of a drug of the knowledge, its drug and how many of this answer's cards are about it."""
        return [(order, drug, sum(1 for f in self.findings if f.order_id == order))
                for order, drug in self.drug_orders]


def evaluate_orders(data: Mapping[str, Any], templates: Mapping[str, str], env: Environment) -> Evaluation:
    """The order hooks (order-select, order-sign) on a request validated by ``schemas.validate_request``."""
    context, now = data["context"], env.clock()
    orders, others = read_draft_orders(context["draftOrders"])
    judged = order_ids(orders, context.get("selections") or [f"{o.get('resourceType', '')}/{o.get('id')}"
                                                             for o in orders])
    patient = judged_context(Call(data, templates, env, now, orders, others, judged))
    if patient is None:  # no judged order is for anything the knowledge judges: nothing fetched, nothing said
        return Evaluation(data, data["hook"], now, tuple(orders), judged, None)
    run = Run(patient, env.knowledge, env.site)  # one per call: the checks' and the cards-per-order count's
    findings = parse_call_configuration(data.get("extension")).keep(one_card_per_failed_key(
        site_findings(findings_of(run), env.site), patient, env.knowledge))
    cards = build_cards(findings, str(context["patientId"]), env.knowledge, env.public_base, env.site.version)
    return Evaluation(data, data["hook"], now, tuple(orders), judged, patient, findings, cards, tuple(drug_orders(run)))


def evaluate_patient_view(data: Mapping[str, Any], templates: Mapping[str, str], env: Environment) -> Evaluation:
    """The patient-view hook: the monitoring reminders for the drugs the patient is on."""
    now = env.clock()
    # only what patient-view reads is read (no allergies); 412 when none of it could be had
    patient = assemble_context(Call(data, templates, env, now), keys=PATIENT_VIEW_KEYS)
    findings = parse_call_configuration(data.get("extension")).keep(one_card_per_failed_key(
        site_findings(run_patient_view(patient, env.knowledge, site=env.site), env.site), patient, env.knowledge))
    cards = build_cards(findings, str(data["context"]["patientId"]), env.knowledge, env.public_base,
                        env.site.version)
    return Evaluation(data, data["hook"], now, (), frozenset(), patient, findings, cards)
