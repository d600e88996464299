"""The monitoring timeline of a PlanDefinition as the page shows it: its actions by time point (before starting,
months after the start, throughout)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fhirsvc.monograph.blocks import TimelineEntry
from fhirsvc.monograph.text import DASH, _num, _range_text, _reference, _text


def _plan_targets(plan: Mapping[str, Any]) -> list[str | None]:
    targets = [_reference(a.get("resourceReference")) for a in plan.get("relatedArtifact") or ()]
    return [*targets, _reference(plan.get("subjectReference"))]


def _actions(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for action in plan.get("action") or ():
        yield action
        yield from _actions(action)


def _months(quantity: Mapping[str, Any] | None) -> float | None:
    if not quantity or quantity.get("value") is None:
        return None
    per_month = {"mo": 1.0, "a": 12.0, "wk": 7 / 30.4375, "d": 1 / 30.4375}.get(quantity.get("code") or "")
    return None if per_month is None else float(quantity["value"]) * per_month


def _action_months(action: Mapping[str, Any]) -> list[float | None] | None:
    """When an action falls, in months after the start: [0] before the start, [None] throughout, else the
    occurrences of its timing (count, period and bounds); None when it is the start itself or has no relation."""
    relations = [r.get("relationship") for r in action.get("relatedAction") or ()]
    if not relations:
        return None
    if any(r in ("before-start", "before") for r in relations):
        return [0.0]
    repeat = (action.get("timingTiming") or {}).get("repeat") or {}
    period = _months({"value": repeat.get("period"), "code": repeat.get("periodUnit")})
    if not period:
        return [None]
    offsets = [_months(r.get("offsetDuration")) for r in action.get("relatedAction") or ()]
    bounds = repeat.get("boundsRange") or {}
    start = _months(bounds.get("low")) or next((o for o in offsets if o), 0.0)
    end = _months(bounds.get("high"))
    count = repeat.get("count") or (int((end - start) / period + 1e-9) if end is not None else 1)
    return [round(start + period * n, 2) for n in range(1, count + 1)
            if end is None or start + period * n <= end + 1e-9]


def _action_text(action: Mapping[str, Any]) -> str:
    return _text(action.get("code")) or action.get("title") or ""


def _timeline(plan: Mapping[str, Any]) -> list[TimelineEntry]:
    """The plan's actions by time point: baseline, each timed occurrence (months after the start), throughout."""
    points: dict[float | None, list[str]] = {}
    for action in _actions(plan):
        for month in _action_months(action) or ():
            text = action.get("title") if month in (0.0, None) else _action_text(action)
            if month == 0.0:
                windows = [_range_text(r.get("offsetRange")) for r in action.get("relatedAction") or ()
                           if r.get("offsetRange")]
                text = f"{text} (within {windows[0].removeprefix('0' + DASH)})" if text and windows else text
            if text and text not in points.setdefault(month, []):
                points[month].append(text)
    entries = [TimelineEntry("Baseline (before starting)" if month == 0 else f"Month {_num(month)}", month,
                             tuple(points[month])) for month in sorted(m for m in points if m is not None)]
    if None in points:
        entries.append(TimelineEntry("Throughout treatment", None, tuple(points[None])))
    return entries
