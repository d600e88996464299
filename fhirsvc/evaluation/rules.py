"""The rules as ``fhirsvc rules`` and ``GET /cds-services/rules`` list them: each rule of the knowledge's rule
registries (``knowledge.rules``) with the services that run it.

A rule runs in a service when that service's checks can give a finding under it: the order checks
(``checks.engine.rule_keys``) in the order-select and order-sign services, the reminders
(``checks.monitoring.patient_view_rule_keys``) in patient-view. ``describe`` is the one place a rule becomes JSON:
what else a rule lists (the settings a site may change, its source attributes) is added there.
"""

from __future__ import annotations

from typing import Any

from fhirsvc.checks.engine import rule_keys
from fhirsvc.checks.monitoring import patient_view_rule_keys
from fhirsvc.drugmodel.profile import profile_of
from fhirsvc.evaluation.pipeline import evaluate_patient_view
from fhirsvc.evaluation.services import Service, services
from fhirsvc.knowledge import Knowledge
from fhirsvc.knowledge.rules import Rule, rule, rules, thresholds_of
from fhirsvc.knowledge.site import adjustable
from fhirsvc.knowledge.source_attributes import source_attributes


def rule_services(knowledge: Knowledge, rule: Rule) -> list[Service]:
    """The services (in discovery order) that run ``rule``."""
    drug = profile_of(knowledge, rule.drug)
    if drug is None:
        return []
    order_keys, view_keys = rule_keys(drug), patient_view_rule_keys(drug)
    return [s for s in services(knowledge)
            if rule.key in (view_keys if s.handler is evaluate_patient_view else order_keys)]


# What a site configuration may set of every rule (knowledge.site), before the rule's own adjustable settings.
COMMON_SETTINGS = (
    {"code": "enabled", "type": "boolean", "default": True, "description": "false: the rule gives no card"},
    {"code": "indicator", "type": "code", "values": ["info", "warning", "critical"],
     "description": "the card indicator instead of the rule's default"},
    {"code": "reason", "type": "string", "description": "why the site changed the rule (shown in governance)"},
)


def describe(knowledge: Knowledge, rule: Rule) -> dict[str, Any]:
    """One rule as JSON: id, number, title, topic, default indicator, source section, the knowledge holding its
    numbers, the services (with their hooks) that run it, its HTI-1 source attributes
    (``knowledge.source_attributes``), what a site configuration may set of it (``settings``; ``neverWeaken``:
    switching it off or lowering its indicator needs a reason), and its fixed thresholds, which no site configuration
    changes (``thresholds``: code, comparator, value, UCUM unit, source; ``knowledge.rules.thresholds_of``)."""
    found = adjustable(knowledge).get(rule.id)
    return {**rule.as_json(),
            "services": [{"id": s.id, "hook": s.hook} for s in rule_services(knowledge, rule)],
            "sourceAttributes": source_attributes(knowledge, rule.registry, rule.id, rule.section),
            "settings": [*COMMON_SETTINGS, *(s.as_json() for s in (found.settings if found else ()))],
            "thresholds": [t.as_json() for t in thresholds_of(knowledge, rule)],
            "neverWeaken": bool(found and found.never_weaken)}


def describe_id(knowledge: Knowledge, rule_id: str) -> dict[str, Any] | None:
    """The rule with this id as JSON (``describe``), or None when the knowledge has none."""
    found = rule(knowledge, rule_id)
    return describe(knowledge, found) if found is not None else None


def catalogue(knowledge: Knowledge) -> list[dict[str, Any]]:
    """Every rule of the knowledge, in registry order."""
    return [describe(knowledge, r) for r in rules(knowledge)]
