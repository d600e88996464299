"""Findings -> CDS Hooks 2.0.1 cards: summary < 140, indicator, source with topic, link to the
monograph section, override reasons on warning/critical cards, suggestions with actions.

Each card names the records it concerns in Da Vinci CRD's associated-resource card extension
(``extension["davinci-crd.associated-resource"]``: local references, ``Type/id``; CRD "Linking cards to requests"):
the judged order of an order hook (or, on patient-view, the medication record the reminder is about), then the
other draft orders its suggestions change or cancel. A record without a usable FHIR id cannot be named.

Card and suggestion uuids are name-based (uuid5) on rule, drug, order and patient, so repeated
order-select calls and the later order-sign give the same uuids and feedback lines up. Every card names
the rule that made it in ``extension["fhirsvc.rule"]`` (its id in the knowledge's rule registry,
``knowledge.rules``); a card for a failed data key names the most severe rule it stopped there and all of them
in ``extension["fhirsvc.rules"]``. No null or empty value is ever written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fhirsvc.canonical import OVERRIDE_REASONS, V3_ACT_CODE
from fhirsvc.checks.findings import Action, Finding, Suggestion
from fhirsvc.evaluation.reasons import override_reasons
from fhirsvc.knowledge import Knowledge

__all__ = ["OVERRIDE_REASONS", "build_cards", "card_uuid", "override_reasons"]

SECTION_SEPARATOR = " \u203a "  # joins the monograph headings in a source-section
_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")  # Type/id, with a FHIR id
RULE_EXTENSION = "fhirsvc.rule"  # the card's extension key naming its rule (docs/cds-checks.md)
RULES_EXTENSION = "fhirsvc.rules"  # a card standing for several stopped rules: all their ids
CARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fhirsvc.org/cds-services/cards")


def card_uuid(finding: Finding, patient_id: str) -> str:
    parts: tuple[str, ...] = (finding.rule, finding.drug, finding.order_id or "", patient_id)
    if finding.data_key:  # one card per failed data key
        parts += (f"unavailable:{finding.data_key}",)
    return str(uuid.uuid5(CARD_NAMESPACE, "|".join(parts)))


EMPTY: tuple[Any, ...] = (None, "", [], {})  # what CDS Hooks forbids as a value


def _drop_empty(value: Any) -> Any:
    """The value without None, "", [] or {} anywhere (CDS Hooks forbids them). A card is mostly text and dicts:
    those are told apart first, before the slower test for any other Mapping."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, Mapping)):
        cleaned = {}
        for key, item in value.items():
            item = _drop_empty(item)
            if item not in EMPTY:
                cleaned[key] = item
        return cleaned
    if isinstance(value, (list, tuple)):
        return [item for item in map(_drop_empty, value) if item not in EMPTY]
    return value


def _action(action: Action) -> dict[str, Any]:
    body: dict[str, Any] = {"type": action.action, "description": action.description}
    if action.resource is not None:
        body["resource"] = action.resource
    if action.resource_id is not None:
        body["resourceId"] = action.resource_id
    return body


def _suggestion(card_id: str, suggestion: Suggestion) -> dict[str, Any] | None:
    """The suggestion's JSON, or None when none of its actions can name its target: an action on an order the EHR
    gave no usable FHIR id is left out. Several actions: ``actionSelectionBehavior`` (CDS Hooks 3.0 ballot; a 2.0
    client takes all the actions of a suggestion, as ``all`` says)."""
    actions = [_action(a) for a in suggestion.actions if a.resource_id is None or _REFERENCE.fullmatch(a.resource_id)]
    if not actions:
        return None
    body: dict[str, Any] = {"label": suggestion.label, "uuid": str(uuid.uuid5(uuid.UUID(card_id), suggestion.label)),
                            "actions": actions}
    if len(actions) > 1:
        body["actionSelectionBehavior"] = suggestion.action_selection
    if suggestion.recommended:
        body["isRecommended"] = True
    return body


QUOTED = re.compile(r"^> .*\u2014 monograph, \S", re.MULTILINE)  # a quotation line that names its section


def with_source(detail: str, drug: str, section: str) -> str:
    """The detail naming its monograph section once: a card that quotes the monograph names it in the
    quotation's attribution; any other card ends with ``Source: <drug> monograph, <section>.``"""
    if QUOTED.search(detail):
        return detail
    return f"{detail}\n\nSource: {drug} monograph, {section}."


def _stopped_rules(finding: Finding) -> dict[str, list[str]]:
    """``fhirsvc.rules`` of a card that stands for every check a failed data key stopped (``checks.unavailable``):
    the ids of all their rules (``fhirsvc.rule`` is the most severe of them)."""
    rules = finding.facts.get("rules") if finding.data_key else None
    return {RULES_EXTENSION: list(rules)} if rules else {}


ASSOCIATED_RESOURCE = "davinci-crd.associated-resource"  # CRD's card extension key
ABOUT_THE_RULE = "About this rule"  # the link to the rule's page: its source attributes (HTI-1)


def associated_resources(finding: Finding) -> list[str]:
    """The local references of the records a finding's card concerns: its order (every order it stopped, for the one
    card of a failed data key), then the targets of its suggestions' update and delete actions (the other draft
    orders), each once."""
    orders = finding.facts.get("orders")
    targets = [finding.facts.get("order"), *(orders if isinstance(orders, list) else ()),
               *(a.resource_id for s in finding.suggestions for a in s.actions)]
    return list(dict.fromkeys(t for t in targets if isinstance(t, str) and _REFERENCE.fullmatch(t)))


SITE_CONFIG_EXTENSION = "fhirsvc.site-config"  # the card's extension key: the site configuration version in force


def offered_reasons(knowledge: Knowledge) -> tuple[dict[str, str], ...]:
    """The override reasons of a card (``override_reasons``) without empty values, cleaned once per knowledge."""
    return knowledge.derived("cds.card_override_reasons", lambda known: tuple(_drop_empty(override_reasons(known))))


def build_cards(findings: Iterable[Finding], patient_id: str, knowledge: Knowledge, public_base: str,
                site_config: str | None = None) -> list[dict]:
    """One card per finding, in the order the checks gave them; each names the ``site_config`` version that made it
    (``extension["fhirsvc.site-config"]``), when the site has one."""
    reasons = offered_reasons(knowledge)
    cards = []
    for finding in findings:
        card_id = card_uuid(finding, patient_id)
        page = f"{public_base}/monographs/{finding.drug}"
        names = (knowledge.get("MedicationKnowledge", finding.drug) or {}).get("name") or [finding.drug]
        card: dict[str, Any] = {
            "uuid": card_id,
            "summary": finding.summary,
            "detail": with_source(finding.detail, names[0], finding.section),
            "indicator": finding.indicator,
            "source": {"label": f"fhirsvc: {names[0]} monograph", "url": page,
                       "topic": {"system": V3_ACT_CODE, "code": finding.topic, "display": finding.topic_display}},
            "links": [{"label": f"{names[0].capitalize()} monograph: {finding.section.split(SECTION_SEPARATOR)[-1]}",
                       "url": f"{page}#{finding.anchor}", "type": "absolute"},
                      {"label": ABOUT_THE_RULE, "url": f"{public_base}/rules/{finding.rule}", "type": "absolute"}],
            "extension": {RULE_EXTENSION: finding.rule, **_stopped_rules(finding),
                          ASSOCIATED_RESOURCE: associated_resources(finding)},
        }
        suggestions = [body for body in (_suggestion(card_id, s) for s in finding.suggestions) if body]
        if suggestions:
            card["selectionBehavior"] = "at-most-one"
            card["suggestions"] = suggestions
        if site_config:
            card.setdefault("extension", {})[SITE_CONFIG_EXTENSION] = site_config
        card = _drop_empty(card)
        if finding.indicator in ("warning", "critical") and reasons:  # the last key, already without empty values
            card["overrideReasons"] = [dict(reason) for reason in reasons]
        cards.append(card)
    return cards
