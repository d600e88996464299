"""What a check reports: a Finding per problem (or per "Unable to check"), with the facts it used.

The evaluation layer turns each Finding into one card: topic + indicator, summary, detail, a link to the
monograph section, override reasons for warning/critical, and the suggestions as actions. Card and
suggestion uuids are derived from (rule, drug, order id, patient id), so they are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INDICATORS = ("info", "warning", "critical")


@dataclass(frozen=True)
class Action:
    """One change: ``create`` a resource, ``update`` an order (the whole changed resource, same id, never the
    incoming object mutated) or ``delete`` one (``resource_id`` = ``Type/id``)."""

    action: str  # create | update | delete
    description: str
    resource: Mapping[str, Any] | None = None
    resource_id: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """One suggested change (its first action: ``action``, ``description``, ``resource``, ``resource_id``), and
    ``more`` actions taken with it; ``action_selection`` says how a user may choose among several actions (CDS Hooks
    3.0 ``suggestion.actionSelectionBehavior``: ``all``, ``any`` or ``at-most-one``)."""

    label: str
    action: str  # create | update | delete
    description: str
    resource: Mapping[str, Any] | None = None
    resource_id: str | None = None
    recommended: bool = False
    more: tuple[Action, ...] = ()
    action_selection: str = "all"

    @property
    def actions(self) -> tuple[Action, ...]:
        return (Action(self.action, self.description, self.resource, self.resource_id), *self.more)


@dataclass(frozen=True)
class Finding:
    """One problem (or one "Unable to check") about one judged order."""

    rule: str  # stable rule id, e.g. "renal-dosing"; part of the deterministic card uuid
    topic: str  # code from http://terminology.hl7.org/CodeSystem/v3-ActCode (DetectedIssue codes)
    topic_display: str
    indicator: str  # info | warning | critical
    summary: str  # < 140 characters, plain, never the patient's name
    detail: str  # markdown: what was found (values, units, dates) and what the monograph advises
    drug: str  # id of the MedicationKnowledge the finding is about
    section: str  # the monograph section the rule implements (source-section wording)
    anchor: str  # anchor of that section on the monograph page, e.g. "kidney-disease"
    order_id: str | None = None  # the judged draft order
    facts: Mapping[str, Any] = field(default_factory=dict)
    suggestions: tuple[Suggestion, ...] = ()
    unable: bool = False  # an "Unable to check ..." finding (missing, unreadable or stale data)
    # the patient data key whose failure this finding reports for every check it stopped (checks.unavailable)
    data_key: str | None = None

    def __post_init__(self) -> None:
        if self.indicator not in INDICATORS:
            raise ValueError(f"indicator must be one of {INDICATORS}, not {self.indicator!r}")
        if len(self.summary) >= 140:
            raise ValueError(f"summary must be under 140 characters: {self.summary!r}")
