"""A drug's monitoring schedule, read from its monitoring PlanDefinition (``DrugProfile.monitoring``).

Each action related to the start of therapy (``relatedAction``), nested actions included, becomes phases:

- ``before``: before-start. ``window``: a result within that many days counts (``offsetRange.high`` or
  ``offsetDuration``); None when the plan gives no window ("before starting").
- ``after``: after-start with ``timingTiming.repeat``: from ``start`` to ``end`` days after starting
  (``boundsRange``, else the offset and ``count`` periods), one every ``period`` days (``window``: the period
  rounded up to whole days, the age a result may have).
- ``throughout``: after-start with no timing (watch for signs of infection).

``value_set`` is what the action's code stands for (the ``value-set`` extension: which observations count), or
None; ``definition`` is its ``definitionCanonical`` (the ActivityDefinition to order), or None. The checks read
the phases with a value set; the page shows every phase. Nothing here names a drug.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fhirsvc.canonical import EXT_RENEWAL_GAP
from fhirsvc.drugmodel.profile import section_of, value_set_of
from fhirsvc.drugmodel.units import DAYS_PER_UNIT, duration
from fhirsvc.fhirtypes import schedule_words
from fhirsvc.knowledge.store import Knowledge

Resource = Mapping[str, Any]


@dataclass(frozen=True)
class Phase:
    """One phase of a monitoring schedule (see the module docstring)."""

    kind: str  # before | after | throughout
    action: Resource
    value_set: str | None
    window: float | None  # days
    start: float = 0.0  # days after starting (after phases)
    end: float = math.inf
    definition: str | None = None
    interval: str = ""  # the period as the plan says it: "every month", "every 3 months"
    period: float | None = None  # days between two occurrences (after phases)

    def occurrences(self) -> list[float]:
        """The days after starting an after phase falls on: ``start`` + each whole period up to ``end`` (a phase
        with no end: the first one)."""
        if self.kind != "after" or not self.period:
            return []
        if math.isinf(self.end):
            return [self.start + self.period]
        count = int((self.end - self.start) / self.period + 1e-9)
        return [self.start + self.period * n for n in range(1, count + 1)]

    @property
    def title(self) -> str:
        return str(self.action.get("title") or "")

    def section(self, plan: Resource) -> str:
        return section_of(self.action, plan)


def _days(quantity: Mapping[str, Any] | None) -> float | None:
    span = duration(quantity)
    return None if span is None else span.total_seconds() / 86400


def _actions(parent: Resource) -> list[Resource]:
    return [found for action in parent.get("action") or () for found in (action, *_actions(action))]


def monitoring_schedule(plan: Resource) -> tuple[Phase, ...]:
    """The plan's phases, in action order (nested actions after their parent)."""
    phases = []
    for action in _actions(plan):
        vs = value_set_of(action.get("code"))
        definition = str(action["definitionCanonical"]).split("|")[0] if action.get("definitionCanonical") else None
        for related in action.get("relatedAction") or ():
            rel = related.get("relationship")
            if rel == "before-start":
                window = _days((related.get("offsetRange") or {}).get("high")) or _days(related.get("offsetDuration"))
                phases.append(Phase("before", action, vs, window, definition=definition))
            elif rel == "after-start":
                repeat = (action.get("timingTiming") or {}).get("repeat") or {}
                unit = repeat.get("periodUnit")
                if not repeat.get("period") or unit not in DAYS_PER_UNIT:
                    phases.append(Phase("throughout", action, vs, None, definition=definition))
                    continue
                period = repeat["period"] * DAYS_PER_UNIT[unit] / (repeat.get("frequency") or 1)
                bounds = repeat.get("boundsRange") or {}
                start = _days(bounds.get("low")) or _days(related.get("offsetDuration")) or 0.0
                end = _days(bounds.get("high"))
                if end is None:
                    end = start + period * repeat["count"] if repeat.get("count") else math.inf
                phases.append(Phase("after", action, vs, math.ceil(period - 1e-9), start, end, definition,
                                    schedule_words(repeat.get("frequency") or 1, repeat["period"], unit), period))
    return tuple(phases)


def plan_schedule(knowledge: Knowledge, plan: Resource) -> tuple[Phase, ...]:
    """``monitoring_schedule`` of a plan, read once per knowledge load when the plan is the knowledge's own (kept
    with the knowledge, which never changes: at most one schedule per PlanDefinition); any other plan, each time."""
    plan_id = str(plan.get("id"))
    if knowledge.get("PlanDefinition", plan_id) is not plan:
        return monitoring_schedule(plan)
    schedules: dict[str, tuple[Phase, ...]] = knowledge.derived("drugmodel.schedules", lambda _knowledge: {})
    if plan_id not in schedules:
        schedules[plan_id] = monitoring_schedule(plan)
    return schedules[plan_id]


def renewal_gap(plan: Resource) -> timedelta:
    """The longest gap between one record's end and the next one's start that still continues a course of the
    plan's drug (its ``course-renewal-gap`` extension); none written: only records that meet or overlap do."""
    for ext in plan.get("extension") or ():
        if ext.get("url") == EXT_RENEWAL_GAP:
            return duration(ext.get("valueDuration")) or timedelta(0)
    return timedelta(0)
