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
  the element named in ``label``;
- the ``rule-threshold`` extensions: the rule's fixed thresholds (``THRESHOLDS`` names the ones the checks read:
  code, comparator, a UCUM quantity, and where the number comes from). No site configuration changes them
  (``knowledge.site`` reads only ``site-setting``); ``threshold`` reads one, and loading stops
  (``threshold_problems``) when one is malformed, unknown or declared by no registry.

The checks name the rule of each finding by its *key* (``Rule.key``): the contract number, or for an
unnumbered rule its id without the drug's prefix (``kidney-function-test``); ``rule_for`` turns a drug and a
key into the rule.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhirsvc.canonical import EXT_CDS_INDICATOR, EXT_RULE_THRESHOLD, EXT_SOURCE_SECTION, UCUM
from fhirsvc.knowledge.problems import Problem
from fhirsvc.knowledge.store import Knowledge

PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"

# The fixed thresholds the checks read (``Job.threshold``), by code: the rule (its key, ``Rule.key``) whose action
# declares it, and the UCUM unit the checks read it in. Every one must be declared by a registry.
THRESHOLDS: dict[str, tuple[str, str]] = {
    "seniors-age": ("11", "a"),
    "fever-celsius": ("12", "Cel"),
    "neutrophil-count": ("13", "10*9/L"),
    "pregnancy-status-max-age": ("15", "wk"),
}
COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class RuleThreshold:
    """A fixed threshold of a rule, as its registry action declares it (``rule-threshold`` extension): ``value``
    keeps the JSON number's type (``65`` an int, ``38.0`` a float), so that cards and facts say it as written."""

    code: str
    comparator: str
    value: int | float
    unit: str  # UCUM code
    source: str

    def holds(self, measured: float) -> bool:
        """Whether ``measured`` (in ``unit``) meets the threshold: ``measured <comparator> value``."""
        return COMPARATORS[self.comparator](measured, self.value)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "comparator": self.comparator, "value": self.value, "unit": self.unit,
                "source": self.source}


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
    thresholds: tuple[RuleThreshold, ...] = ()  # its fixed thresholds (well-formed ones; ``threshold_problems``)

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
                                 str(d.get("label") or "")) for d in action.get("documentation") or ()),
            thresholds=tuple(t for t, _ in map(_threshold, _threshold_extensions(action)) if t is not None)))
    return out


def threshold(knowledge: Knowledge, drug: str, code: str) -> RuleThreshold:
    """A fixed threshold for a drug: as the drug's rule that reads it declares it (``THRESHOLDS``), else (a drug
    whose registry does not declare it, or a drug without a registry) as the first registry that declares it.
    KeyError if none does (loading the knowledge has checked that every one in ``THRESHOLDS`` is declared)."""
    declared = knowledge.derived("rules.thresholds", _declared_thresholds)
    found = declared.get((drug, code)) or declared.get(("", code))
    if found is None:
        raise KeyError(f"no rule of the knowledge declares the threshold {code!r}")
    return found


def thresholds_of(knowledge: Knowledge, found: Rule) -> list[RuleThreshold]:
    """The fixed thresholds a rule reads (``THRESHOLDS``), as in force for its drug (``threshold``)."""
    return [threshold(knowledge, found.drug, code) for code, (key, _) in THRESHOLDS.items() if key == found.key]


def _declared_thresholds(knowledge: Knowledge) -> dict[tuple[str, str], RuleThreshold]:
    """(drug, code) -> the threshold its rule of that code declares; ("", code) -> the first registry's."""
    found: dict[tuple[str, str], RuleThreshold] = {}
    for r in rules(knowledge):
        for t in r.thresholds:
            if THRESHOLDS.get(t.code, ("",))[0] == r.key:
                found.setdefault((r.drug, t.code), t)
                found.setdefault(("", t.code), t)
    return found


def _threshold_extensions(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in action.get("extension") or () if e.get("url") == EXT_RULE_THRESHOLD]


def _threshold(extension: Mapping[str, Any]) -> tuple[RuleThreshold | None, list[str]]:
    """The threshold of a ``rule-threshold`` extension, and what is wrong with it (nothing: a usable one)."""
    parts: dict[str, Any] = {}
    for part in extension.get("extension") or ():
        parts.update({part.get("url"): v for k, v in part.items() if k.startswith("value")})
    code, comparator, quantity, source = (parts.get(name) for name in ("code", "comparator", "value", "source"))
    problems = []
    if code not in THRESHOLDS:
        problems.append(f"code {code!r}: no check reads such a threshold (known: {', '.join(THRESHOLDS)})")
    if comparator not in COMPARATORS:
        problems.append(f"comparator {comparator!r}: must be one of {' '.join(COMPARATORS)}")
    quantity = quantity if isinstance(quantity, Mapping) else {}
    value = quantity.get("value")
    unit = THRESHOLDS.get(str(code), ("", ""))[1]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        problems.append("value: a valueQuantity with a number is required")
        value = 0
    if code in THRESHOLDS and (quantity.get("system") != UCUM or quantity.get("code") != unit):
        problems.append(f"value: the unit must be UCUM {unit!r} (system {UCUM}), the unit the check reads it in")
    if not isinstance(source, str) or not source.strip():
        problems.append("source: where the number comes from is required")
    if problems:
        return None, problems
    return RuleThreshold(str(code), str(comparator), value, unit, str(source)), []


def threshold_problems(entries: Sequence[tuple[Path, Mapping[str, Any]]]) -> list[Problem]:
    """What keeps the registries' fixed thresholds from being read: a malformed ``rule-threshold`` extension, one
    on another rule than the one that reads it (``THRESHOLDS``), and a threshold no registry declares."""
    problems: list[Problem] = []
    declared: set[str] = set()
    for path, plan in entries:
        if plan.get("resourceType") != "PlanDefinition" or not is_registry(plan):
            continue
        for found, action in zip(_read(plan), plan.get("action") or (), strict=True):
            for extension in _threshold_extensions(action):
                where = f"PlanDefinition.action[{found.id}].extension[rule-threshold]"
                parsed, wrong = _threshold(extension)
                problems += [Problem(str(path), where, message) for message in wrong]
                if parsed is None:
                    continue
                key = THRESHOLDS[parsed.code][0]
                if found.key != key:
                    problems.append(Problem(str(path), where, f"the threshold {parsed.code!r} belongs to the "
                                                              f"action of rule {key}, not of {found.key}"))
                else:
                    declared.add(parsed.code)
    for code, (key, unit) in THRESHOLDS.items():
        if code not in declared:
            problems.append(Problem("knowledge", "PlanDefinition.action.extension[rule-threshold]",
                                    f"no rule registry declares the threshold {code!r} (on the action of rule "
                                    f"{key}, in UCUM {unit!r}): the checks cannot run without it"))
    return problems


def _extension(element: Mapping[str, Any], url: str) -> Any:
    return next((value for e in element.get("extension") or () if e.get("url") == url
                 for key, value in e.items() if key.startswith("value")), None)
