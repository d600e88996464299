"""Administrations per day of a FHIR Timing: the per-day arithmetic every face reads, for the knowledge's dosages
(the page's dose tables, the dose limits) and for the orders the checks judge.

``timing.repeat`` (``frequency``/``frequencyMax`` per ``period`` ``periodUnit``, incl. ``h``, ``d``, ``wk``; a list
of times of day) first, else ``timing.code`` (QD, BID, TID, QID, QOD, Q2D, Q8H, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fhirsvc.drugmodel.units import DAYS_PER_UNIT
from fhirsvc.terminology import codings

# HL7 v3 GTSAbbreviation timing codes (and common EHR spellings) -> administrations per day.
TIMING_CODES: dict[str, float] = {
    "QD": 1, "DAILY": 1, "AM": 1, "PM": 1, "QAM": 1, "QPM": 1, "QHS": 1, "BED": 1, "HS": 1, "ONCE DAILY": 1,
    "BID": 2, "TID": 3, "QID": 4, "QOD": 0.5, "EOD": 0.5, "WK": 1 / 7, "QW": 1 / 7, "QWK": 1 / 7,
    "MO": 1 / DAYS_PER_UNIT["mo"],
}
_Q_EVERY = re.compile(r"^Q(\d+(?:\.\d+)?)(H|HR|D|W|WK|MIN)$")
_Q_UNITS = {"H": "h", "HR": "h", "D": "d", "W": "wk", "WK": "wk", "MIN": "min"}



def timing_code_per_day(code: str | None) -> float | None:
    """Administrations per day of a timing abbreviation (``BID`` -> 2, ``Q2D`` -> 0.5, ``Q8H`` -> 3)."""
    if not code:
        return None
    key = " ".join(str(code).upper().replace(".", "").split())
    if key in TIMING_CODES:
        return float(TIMING_CODES[key])
    match = _Q_EVERY.match(key.replace(" ", ""))
    if match:
        every_days = float(match[1]) * DAYS_PER_UNIT[_Q_UNITS[match[2]]]
        return 1 / every_days if every_days > 0 else None
    return None


def administrations_per_day(timing: Mapping[str, Any] | None) -> float | None:
    """Administrations per day of a Timing: ``repeat`` (frequency[Max] per period periodUnit; a list of
    times of day) first, else its ``code``. None if neither says."""
    if not timing:
        return None
    repeat = timing.get("repeat") or {}
    period, unit = repeat.get("period"), repeat.get("periodUnit")
    frequency = repeat.get("frequencyMax") or repeat.get("frequency")
    if period is not None or unit is not None:
        if unit not in DAYS_PER_UNIT or not period or period <= 0:
            return None
        return (frequency or 1) / (period * DAYS_PER_UNIT[unit])
    if repeat.get("timeOfDay"):
        return float(len(repeat["timeOfDay"]))
    code = timing.get("code") or {}
    for candidate in [*(c.get("code") for c in codings(code)), code.get("text")]:
        per_day = timing_code_per_day(candidate)
        if per_day is not None:
            return per_day
    return None
