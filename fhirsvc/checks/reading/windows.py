"""When a record applies, and the one way every time window of the contract is measured.

The rules (``docs/reading-patient-data.md``, "Time windows"):

- A FHIR date or date-time is read as written: a date-time is an instant (its zone kept; none means UTC), a
  date (``2026-10-02``), a year-month (``2026-10``) or a year (``2026``) is the whole period it names
  (``When.start`` .. ``When.end``).
- Windows in days (body weight 90 days, kidney function 180 days, blood counts 30/31/92 days) count whole
  calendar days: the age of a record is the date of ``now`` minus the record's date (a date-time's date in
  the time zone of ``now``). A window of N days is inclusive: a record N days old is used, N + 1 days old is
  not ("91 days old; results older than 90 days are not used").
- Windows in hours (fever within 72 hours) are exact: a temperature taken 72 hours ago is used, one
  72 hours and a minute ago is not.
- A record dated after ``now`` counts as taken now (the EHR's clock and local date may run ahead).
- Where a date is imprecise (a date, year-month or year where the window is in hours, or a year or
  year-month where it is in days), it is placed where the check says something rather than stays silent:
  ``place="first"`` (its first instant: the oldest it can be) for data that must be recent enough to be
  used; ``place="last"`` (its last instant) for an event that makes a check fire when it is recent (a fever,
  the end of a treatment before a live vaccine).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from fhirsvc.fhirtypes import date_bounds, parse_instant

# FHIR's extended form (seconds and zone may be left out: EHRs do; no zone means UTC)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?$")
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class When:
    """When a record applies, as precisely as it was written: ``start`` (its first instant), ``end`` (the first
    instant after it; ``start`` itself for a date-time) and ``precision`` (``time``, ``day``, ``month``,
    ``year``). ``text`` is the value as written."""

    start: datetime
    end: datetime
    precision: str
    text: str

    @property
    def exact(self) -> bool:
        return self.precision == "time"

    def instant(self, place: str = "first") -> datetime:
        """The instant the record is placed at: its first, or (``place="last"``) its last instant."""
        if self.exact or place == "first":
            return self.start
        return self.end - _TICK

    def day(self, now: datetime, place: str = "first") -> date:
        """The calendar day the record is placed on: a date-time's date in the time zone of ``now``, a date's
        own day, a year-month's or year's first (or last) day."""
        if self.exact:
            return self.start.astimezone(now.tzinfo or UTC).date()
        return self.instant(place).date()

    def label(self) -> str:
        """The date for card text: ``2026-10-02`` (a date-time's date), or a partial date as written."""
        return self.start.date().isoformat() if self.precision in ("time", "day") else self.text


def parse_when(value: object) -> When | None:
    """A FHIR date, dateTime or instant as a ``When`` (None if it is not one)."""
    if not value or not isinstance(value, str):
        return None
    if len(value) > 16 and value[4] == "-" and value[7] == "-" and value[10] == "T":  # a date-time: the common case
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if not parsed.tzinfo:
            parsed = parsed.replace(tzinfo=UTC)
        return When(parsed, parsed, "time", value)
    text = value.strip()
    bounds = date_bounds(text)  # a date, year-month or year: the whole period it names
    if bounds:
        return When(*bounds, text)
    if not _DATE_TIME.match(text):
        return None
    try:
        parsed = parse_instant(text)
    except ValueError:
        return None
    if not parsed.tzinfo:
        parsed = parsed.replace(tzinfo=UTC)
    return When(parsed, parsed, "time", text)


def when_start(value: object) -> datetime | None:
    """``parse_when(value).start`` (None if it is not a date): the common date-time read without building its
    ``When``."""
    if isinstance(value, str) and len(value) > 16 and value[4] == "-" and value[7] == "-" and value[10] == "T":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    when = parse_when(value)
    return when.start if when else None


def whole_days(since: datetime, now: datetime) -> int:
    """Whole calendar days from an instant's date to the date of ``now`` (both in the time zone of ``now``)."""
    zone = now.tzinfo or UTC
    return (now.astimezone(zone).date() - since.astimezone(zone).date()).days


def _plural(amount: float, unit: str) -> str:
    shown = f"{amount:g}"
    return f"{shown} {unit if shown == '1' else unit + 's'}"


@dataclass(frozen=True)
class Window:
    """A window of the contract: records at most ``limit`` ``unit``s (``day`` or ``hour``) old are used.

    ``noun`` names what it selects in messages ("results", "counts", "temperatures")."""

    limit: float  # whole days or hours (a plan may write them as decimals: 30.0)
    unit: str = "day"
    noun: str = "results"

    @classmethod
    def of(cls, span: timedelta, noun: str = "results") -> Window:
        """The window of a timedelta: whole hours if it is not a whole number of days."""
        hours = span.total_seconds() / 3600
        if hours % 24:
            return cls(math.ceil(hours), "hour", noun)
        return cls(int(hours // 24), "day", noun)

    @cached_property
    def span(self) -> timedelta:
        """The window as a duration (read once per window: ``contains`` asks it of every record)."""
        return timedelta(days=self.limit) if self.unit == "day" else timedelta(hours=self.limit)

    def age(self, when: When, now: datetime, place: str = "first") -> float:
        """How old the record is at ``now``, in this window's unit: whole calendar days, or hours (to the
        minute); never negative (a record dated after ``now`` is taken as made now)."""
        if self.unit == "day":
            today = now.astimezone(now.tzinfo or UTC).date()
            return max((today - when.day(now, place)).days, 0)
        seconds = (now - when.instant(place)).total_seconds()
        return max(math.floor(seconds / 60) / 60, 0.0)

    def contains(self, when: When | None, now: datetime, place: str = "first") -> bool:
        """Whether the record is within the window (inclusive: a record exactly ``limit`` old is)."""
        if when is None:
            return False
        if self.unit == "day":
            return self.age(when, now, place) <= self.limit
        return now - when.instant(place) <= self.span

    @property
    def rule(self) -> str:
        """The rule as said on a card: ``results older than 90 days are not used``."""
        return f"{self.noun} older than {_plural(self.limit, self.unit)} are not used"

    def too_old(self, when: When, now: datetime, place: str = "first") -> str:
        """``91 days old; results older than 90 days are not used``."""
        return f"{self.how_old(when, now, place)}; {self.rule}"

    def how_old(self, when: When, now: datetime, place: str = "first") -> str:
        """``91 days old`` (``today`` for a record of today in a window of days)."""
        age = self.age(when, now, place)
        if self.unit == "day" and age == 0:
            return "from today"
        return f"{_plural(round(age, 1), self.unit)} old"


def parse_datetime(value: str | None, *, end: bool = False) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (UTC when no zone is given).

    Partial dates (``2026``, ``2026-10``) and plain dates mean their first instant, or with ``end`` the
    first instant after them (so ``end`` dates include the whole day)."""
    when = parse_when(value)
    if when is None:
        return None
    return when.end if end and not when.exact else when.start


def day(value: datetime | None) -> str | None:
    """The ISO date of a datetime (for card text and facts)."""
    return value.date().isoformat() if value else None
