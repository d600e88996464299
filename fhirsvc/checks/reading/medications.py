"""Medications and draft orders: their status (current, past, a draft that still stands) and when they started
and ended, as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from fhirsvc.checks.context import Resource
from fhirsvc.checks.reading.windows import When, parse_datetime, parse_when

# MedicationRequest active/on-hold; MedicationStatement (R4) active/intended/on-hold (contract "Recognising a
# medication"); entered-in-error, not-taken, draft, unknown count as nothing.
CURRENT_STATUSES = {"active", "on-hold", "intended"}
PAST_STATUSES = {"stopped", "completed"}
R5_RECORDED = "recorded"  # the normal R5 MedicationStatement status: current unless its effective[x] ended
_DRAFT_EXCLUDED = {"entered-in-error", "cancelled", "revoked", "not-done", "stopped", "completed"}


def medication_status(resource: Resource) -> str | None:
    status = resource.get("status")
    return status if isinstance(status, str) else None  # sent data can have any JSON type


def is_current(resource: Resource) -> bool:
    """An active or on-hold MedicationRequest (or MedicationStatement)."""
    return medication_status(resource) in CURRENT_STATUSES


def is_past(resource: Resource) -> bool:
    """A stopped or completed MedicationRequest (or MedicationStatement)."""
    return medication_status(resource) in PAST_STATUSES


def as_therapy_record(resource: Resource, now: datetime) -> Resource:
    """A medication record with the status the checks read: an R5 MedicationStatement ``recorded`` becomes
    ``active`` (current therapy), or ``completed`` (past therapy) when its effective period ended before ``now``;
    anything else as it is."""
    if resource.get("resourceType") != "MedicationStatement" or medication_status(resource) != R5_RECORDED:
        return resource
    end = medication_end(resource)
    return {**resource, "status": "completed" if end is not None and end <= now else "active"}


def is_live_draft(order: Resource) -> bool:
    """A draft order that still stands: not cancelled, entered-in-error, revoked, stopped or completed (an
    Immunization, whose only statuses are completed | entered-in-error | not-done: not entered-in-error or
    not-done)."""
    if order.get("resourceType") == "Immunization":
        return medication_status(order) not in ("entered-in-error", "not-done")
    return medication_status(order) not in _DRAFT_EXCLUDED


def _bounds(resource: Resource) -> list[Mapping[str, Any]]:
    return [((d.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}
            for d in resource.get("dosageInstruction") or resource.get("dosage") or ()]


def medication_end_when(resource: Resource) -> When | None:
    """When a medication ended, as written: the latest ``dosageInstruction.timing.repeat.boundsPeriod.end``,
    else ``dispenseRequest.validityPeriod.end`` (a MedicationStatement: ``effectivePeriod.end``). A Period's end
    includes the whole of its last day (FHIR Period: "the end value includes any matching date/time")."""
    ends = [w for w in (parse_when(b.get("end")) for b in _bounds(resource) if b.get("end")) if w is not None]
    if ends:
        return max(ends, key=lambda w: w.end)
    validity = (resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
    if validity.get("end"):
        return parse_when(validity["end"])
    effective = resource.get("effectivePeriod") or {}
    return parse_when(effective.get("end")) if effective.get("end") else None


def medication_end(resource: Resource) -> datetime | None:
    """``medication_end_when`` as the first instant after it (a date-only end includes its whole day)."""
    when = medication_end_when(resource)
    return None if when is None else (when.start if when.exact else when.end)


def medication_start(resource: Resource) -> datetime | None:
    """When a medication started: the earliest ``boundsPeriod.start``, else
    ``dispenseRequest.validityPeriod.start``, else ``authoredOn`` (a MedicationStatement: effective[x])."""
    starts = [s for b in _bounds(resource) if b.get("start") and (s := parse_datetime(b.get("start"))) is not None]
    if starts:
        return min(starts)
    validity = (resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
    for value in (validity.get("start"), resource.get("authoredOn"),
                  (resource.get("effectivePeriod") or {}).get("start"), resource.get("effectiveDateTime"),
                  resource.get("dateAsserted")):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed
    return None


def course_start(records: Iterable[Resource], gap: timedelta) -> datetime | None:
    """When the course of therapy that the current records belong to began: the earliest start of the current
    records (``is_current``), extended back over every record of the same drug (current or past, ``is_past``)
    whose start is earlier and whose end is at most ``gap`` before the course's start, or later (a renewal
    continues the course; overlapping records too). A past record whose end is not written does not extend
    the course (whether it ran up to the renewal is unknown). None: no current record has a start date."""
    records = list(records)
    start = min((s for s in map(medication_start, filter(is_current, records)) if s is not None), default=None)
    if start is None:
        return None
    ends = [(began, ended) for r in records if is_past(r)
            and (began := medication_start(r)) is not None and (ended := medication_end(r)) is not None]
    extended = True
    while extended:
        extended = False
        for began, ended in ends:
            if began < start and ended >= start - gap:
                start, extended = began, True
    return start
