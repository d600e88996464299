"""The patient's age at ``context.now``, from the birth date as written (a partial one allows two ages).
"""

from __future__ import annotations

from datetime import date, datetime

from fhirsvc.checks.context import Resource
from fhirsvc.checks.reading.windows import parse_datetime, parse_when


def birth_date(patient: Resource | None) -> date | None:
    """The patient's birth date; a partial one (``1980``, ``1980-05``) counts from its first day."""
    if not patient:
        return None
    parsed = parse_datetime(patient.get("birthDate"))
    return parsed.date() if parsed else None


def _completed_years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def age_years(patient: Resource | None, now: datetime) -> int | None:
    """Completed years of age at ``now``, or None without a birth date (a partial birth date: from its first
    day, the oldest the patient can be; ``age_range`` gives both ends)."""
    born = birth_date(patient)
    return None if born is None else _completed_years(born, now.date())


def age_range(patient: Resource | None, now: datetime) -> tuple[int, int] | None:
    """The youngest and oldest completed age at ``now`` the birth date allows: one age for a full date, two
    for a year-month or year near a birthday (``2008`` at 2026-11-24: 17 or 18)."""
    when = parse_when((patient or {}).get("birthDate"))
    if when is None:
        return None
    today = now.date()
    oldest = _completed_years(when.start.date(), today)
    youngest = _completed_years(when.instant("last").date(), today)
    return max(youngest, 0), oldest
