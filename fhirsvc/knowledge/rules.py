"""The rules and their identity (docs/cds-checks.md, "Rules and their identity"), read from the knowledge.

Each drug has one registry of its rules: a PlanDefinition of type ``eca-rule`` that cites the drug's
MedicationKnowledge (``relatedArtifact``, ``depends-on``), with one ``action`` per rule:

- ``action.id``: the rule's stable id (``anakinra-tnf-inhibitor``), on every card as ``extension["fhirsvc.rule"]``
  and the key of feedback statistics and the governance view;
- ``action.prefix``: the rule's number in the contract (``"3"``); none for a reminder the contract does not
  number (kidney function never measured);
- ``action.code``: the v3-ActCode DetectedIssue topic; the ``cds-indicator`` extension: the default indicator;
  the ``source-section`` extension: the monograph section the rule implements;
- ``action.documentation`` (``depends-on``): the knowledge resources holding the rule's numbers and code lists,
  the element named in ``label``.

The checks name the rule of each finding by its *key* (``Rule.key``): the contract number, or for an
unnumbered rule its id without the drug's prefix (``kidney-function-test``); ``rule_for`` turns a drug and a
key into the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhirsvc.canonical import EXT_CDS_INDICATOR, EXT_SOURCE_SECTION
from fhirsvc.knowledge.store import Knowledge

PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"


@dataclass(frozen=True)
class Source:
    """A knowledge resource that holds a rule's numbers or code lists, and the element within it."""

    reference: str  # Type/id
    element: str


@dataclass(frozen=True)
class Rule:
    """One rule of a drug's registry."""

    id: str
    number: str  # the contract's number ("1".."21"), or "" for an unnumbered rule
    title: str
    topic: str  # v3-ActCode
    topic_display: str
    indicator: str  # default: info | warning | critical
    section: str  # monograph source section
    drug: str  # MedicationKnowledge id
    registry: str  # PlanDefinition/<id>
    sources: tuple[Source, ...]

    @property
    def key(self) -> str:
        """How a check names the rule: its number, or its id without the drug's prefix."""
        return self.number or self.id.removeprefix(f"{self.drug}-")

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "number": self.number, "title": self.title,
                "topic": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": self.topic,
                          "display": self.topic_display},
                "indicator": self.indicator, "sourceSection": self.section, "drug": self.drug,
                "registry": self.registry,
                "sources": [{"reference": s.reference, "element": s.element} for s in self.sources]}


def is_registry(plan: Mapping[str, Any]) -> bool:
    """Whether a PlanDefinition is a rule registry (type ``eca-rule``), not a clinical protocol."""
    return any(c.get("system") == PLAN_TYPE and c.get("code") == "eca-rule"
               for c in (plan.get("type") or {}).get("coding") or ())


def rules(knowledge: Knowledge) -> tuple[Rule, ...]:
    """Every rule of every registry, in the registries' order (by id) and then the actions' order."""
    return knowledge.derived("rules.all", _read_all)


def rule(knowledge: Knowledge, rule_id: str) -> Rule | None:
    """The rule with this id, if the knowledge has it."""
    return knowledge.derived("rules.by_id", lambda k: {r.id: r for r in rules(k)}).get(rule_id)


def rule_for(knowledge: Knowledge, drug: str, key: str) -> Rule | None:
    """The rule of a drug that a check names by ``key`` (``Rule.key``)."""
    return knowledge.derived("rules.by_key", lambda k: {(r.drug, r.key): r for r in rules(k)}).get((drug, key))


def _read_all(knowledge: Knowledge) -> tuple[Rule, ...]:
    return tuple(r for plan in knowledge.of_type("PlanDefinition") if is_registry(plan) for r in _read(plan))


def _read(plan: Mapping[str, Any]) -> list[Rule]:
    drug = next((ref.removeprefix("MedicationKnowledge/") for ref in
                 ((a.get("resourceReference") or {}).get("reference") or "" for a in plan.get("relatedArtifact") or ())
                 if ref.startswith("MedicationKnowledge/")), "")
    out = []
    for action in plan.get("action") or ():
        topic: Mapping[str, Any] = next(iter((action.get("code") or {}).get("coding") or ()), {})
        out.append(Rule(
            id=str(action.get("id")), number=str(action.get("prefix") or ""),
            title=str(action.get("title") or ""),
            topic=str(topic.get("code") or ""), topic_display=str(topic.get("display") or ""),
            indicator=str(_extension(action, EXT_CDS_INDICATOR) or ""),
            section=str(_extension(action, EXT_SOURCE_SECTION) or ""),
            drug=drug, registry=f"PlanDefinition/{plan.get('id')}",
            sources=tuple(Source(str((d.get("resourceReference") or {}).get("reference") or ""),
                                 str(d.get("label") or "")) for d in action.get("documentation") or ())))
    return out


def _extension(element: Mapping[str, Any], url: str) -> Any:
    return next((value for e in element.get("extension") or () if e.get("url") == url
                 for key, value in e.items() if key.startswith("value")), None)
