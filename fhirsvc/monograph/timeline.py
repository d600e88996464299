"""The monitoring timeline of a PlanDefinition as the page shows it: the phases of the drug model's schedule
(``fhirsvc.drugmodel.schedule``) by time point (before starting, months after the start, throughout)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fhirsvc.drugmodel.schedule import Phase, monitoring_schedule
from fhirsvc.drugmodel.units import DAYS_PER_UNIT
from fhirsvc.fhirtypes import concept_text, number_text
from fhirsvc.knowledge.rules import is_registry
from fhirsvc.monograph.blocks import TimelineEntry
from fhirsvc.monograph.text import reference_of


def plan_targets(plan: Mapping[str, Any]) -> list[str | None]:
    if is_registry(plan):  # the rule registry is listed by `fhirsvc rules`, not drawn as a timeline
        return []
    targets = [reference_of(a.get("resourceReference")) for a in plan.get("relatedArtifact") or ()]
    return [*targets, reference_of(plan.get("subjectReference"))]


def plan_actions(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for action in plan.get("action") or ():
        yield action
        yield from plan_actions(action)


def _action_text(action: Mapping[str, Any]) -> str:
    return concept_text(action.get("code")) or action.get("title") or ""


def _months(phase: Phase) -> list[float | None]:
    """When a phase of the drug model's schedule falls, in months after the start: [0] before the start, each
    occurrence of a timed phase, [None] throughout."""
    if phase.kind == "before":
        return [0.0]
    if phase.kind == "after":
        return [round(day / DAYS_PER_UNIT["mo"], 2) for day in phase.occurrences()]
    return [None]


def timeline_entries(plan: Mapping[str, Any]) -> list[TimelineEntry]:
    """The plan's actions by time point (``drugmodel.schedule``, the reading the checks use): baseline, each timed
    occurrence (months after the start), throughout."""
    points: dict[float | None, list[str]] = {}
    for phase in monitoring_schedule(plan):
        for month in _months(phase):
            text = phase.action.get("title") if month in (0.0, None) else _action_text(phase.action)
            if month == 0.0 and text and phase.window:
                text = f"{text} (within {number_text(phase.window)} days)"
            if text and text not in points.setdefault(month, []):
                points[month].append(text)
    entries = [TimelineEntry("Baseline (before starting)" if month == 0 else f"Month {number_text(month)}", month,
                             tuple(points[month])) for month in sorted(m for m in points if m is not None)]
    if None in points:
        entries.append(TimelineEntry("Throughout treatment", None, tuple(points[None])))
    return entries
