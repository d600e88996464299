"""FHIR datatypes read and said once, for every layer: a CodeableConcept or a Quantity as text, a partial date
as the period it names, an instant as FHIR writes it, a dosing schedule (Timing) in words.

Below the knowledge, the checks and every face: this module imports nothing of the package.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

# UCUM time units (a Timing's periodUnit, a Duration's code) in words
UNIT_WORDS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}

# A Quantity's comparator as the page writes it (``ad``: "sufficient to achieve this total quantity", not said)
COMPARATOR_SIGNS = {">=": "\u2265", "<=": "\u2264", ">": ">", "<": "<", "ad": ""}

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def number_text(value: Any) -> str:
    """A number as people write it: ``2``, ``0.5``, ``1500000`` (never an exponent for a large one); anything
    else (sent data can hold any JSON) as ``str`` does."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"
    return str(value)


def concept_text(concept: Mapping[str, Any] | None) -> str:
    """What a person would call a CodeableConcept (or a CodeableReference's concept): its text, else the first
    display of its codings, else the first code; empty if none of them."""
    if not concept or not isinstance(concept, Mapping):
        return ""
    if isinstance(concept.get("concept"), Mapping) and "text" not in concept and "coding" not in concept:
        concept = concept["concept"]  # a CodeableReference
    if concept.get("text"):
        return str(concept["text"])
    found = concept.get("coding")
    codings = [c for c in found if isinstance(c, Mapping)] if isinstance(found, (list, tuple)) else []
    for key in ("display", "code"):
        for coding in codings:
            if coding.get(key):
                return str(coding[key])
    return ""


_ANNOTATION = re.compile(r"\{([^{}]*)\}")


def unit_words(unit: Any) -> str:
    """A unit as a person reads it: a UCUM annotation without its braces (``{pill}`` -> ``pill``,
    ``{cells}/uL`` -> ``cells/uL``, ``mg{total}`` -> ``mg total``); anything else as written."""
    text = str(unit or "")

    def spaced(match: re.Match[str]) -> str:
        before = match.start() > 0 and text[match.start() - 1].isalnum()
        after = match.end() < len(text) and text[match.end()].isalnum()
        return f"{' ' if before else ''}{match[1].strip()}{' ' if after else ''}"

    return " ".join(_ANNOTATION.sub(spaced, text).split())


def quantity_text(quantity: Mapping[str, Any] | None,
                  comparator: Literal["code", "sign", "joined", "none"] = "code") -> str:
    """A Quantity as text: its comparator, value and unit (else its code), empty without a value.

    ``comparator`` says how a comparator is written: ``code`` as FHIR codes it, apart (``< 30 mL/min``);
    ``sign`` as the page prints it (``≥ 30 mL/min``); ``joined`` as a reported result reads (``<5 mg/L``);
    ``none`` not at all (a dose: a SimpleQuantity has none)."""
    if not quantity or quantity.get("value") is None:
        return ""
    sign = "" if comparator == "none" else str(quantity.get("comparator") or "")
    if comparator == "sign":
        sign = COMPARATOR_SIGNS.get(sign, sign)
    unit = quantity.get("unit") or quantity.get("code") or ""
    value = number_text(quantity["value"])
    shown = f"{sign}{value}" if comparator == "joined" else " ".join(filter(None, (sign, value)))
    return f"{shown} {unit}" if unit else shown


def date_bounds(text: str) -> tuple[datetime, datetime, str] | None:
    """A FHIR date (``2026-10-02``), year-month (``2026-10``) or year (``2026``) as the whole period it names:
    its first instant, the first instant after it (UTC) and its precision (``day``, ``month``, ``year``). None
    for anything else (a date-time, a day or month that does not exist, a period ending after 9999)."""
    match = _PARTIAL_DATE.match(text)
    if not match:
        return None
    year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
    try:  # ValueError, OverflowError: no such day, or the period ends past the calendar (9999-12)
        start = datetime(year, month, day, tzinfo=UTC)
        if match[3]:
            return start, start + timedelta(days=1), "day"
        if match[2]:
            return start, datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC), "month"
        return start, datetime(year + 1, 1, 1, tzinfo=UTC), "year"
    except (ValueError, OverflowError):
        return None


def parse_instant(value: str) -> datetime:
    """An instant (``Z`` or offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_instant(moment: datetime) -> str:
    """An instant as FHIR writes it: UTC, to the second, ``Z`` (``2026-10-02T08:30:00Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_instant() -> str:
    """This instant as FHIR writes it (a Bundle's ``meta.lastUpdated``, an expansion's ``timestamp``)."""
    return second_instant(int(time.time()))


@lru_cache(maxsize=1)
def second_instant(second: int) -> str:
    """``format_instant`` of a Unix time in whole seconds (the last one remembered: a busy server writes the same
    second many times)."""
    return format_instant(datetime.fromtimestamp(second, UTC))


def random_uuid() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` writes one (a search Bundle's id), from Python's
    generator rather than a system call for ``os.urandom``: the id must be unique, not secret (``random`` is seeded
    from the system at start-up and again in every forked worker)."""
    return uuid4_text(random.getrandbits(128).to_bytes(16))


def uuid4_text(raw: bytes) -> str:
    """The version 4 UUID of 16 random bytes as text, ``str(uuid.UUID(bytes=raw, version=4))`` without building the
    UUID object: the version nibble set to 4 and the variant bits to RFC 4122's ``10``."""
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{'89ab'[int(x[16], 16) & 3]}{x[17:20]}-{x[20:]}"


def schedule_words(frequency: float, period: float, unit: str, once: bool = False) -> str:
    """A dosing or monitoring schedule (a Timing's ``frequency`` per ``period`` ``periodUnit``) in words:
    ``every day``, ``every 3 months``, ``every 8 hours``, ``twice a day``, ``3 times every 2 weeks``.

    ``once``: one each period is said ``once a day`` / ``once every 2 weeks`` (a dose table), not ``every
    day`` / ``every 2 weeks``."""
    word = UNIT_WORDS.get(unit, unit)
    if period == 1:
        span = f"a {word}" if frequency != 1 or once else f"every {word}"
    else:
        span = f"every {number_text(period)} {word}s"
    if frequency == 1:
        return f"once {span}" if once else span
    times = "twice" if frequency == 2 else f"{number_text(frequency)} times"
    return f"{times} {span}"
