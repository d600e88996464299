"""Prefetch templates: their tokens filled, the two styles the service declares, and the window a template asks for.

Two styles (``PREFETCH_STYLE``), the same keys in both:

- ``2.0`` (default): CDS Hooks 2.0.1 tokens only (``{{context.patientId}}``); the observations template asks for
  every result of the LOINC codes the rules read.
- ``3.0``: the 3.0.0 ballot's "Prefetch tokens containing Simpler FHIRPath" ("Simple FHIRPath for Relative Dates":
  ``today()`` and the addition and subtraction of ``days``), so that a 3.0 EHR sends less: the observations of the
  last ``OBSERVATION_DAYS`` days only (``date=ge{{today() - 400 days}}``). The rules' own windows are shorter
  (at most 294 days, the pregnancy status: fhirsvc/checks/config.py); what some rules read beyond them (whether a
  test was ever done, the date of the last one) the service fetches itself (``evaluation.prefetch``).

The service fills the same tokens when it reads a key from ``fhirServer`` itself (``fill_template``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from fhirsvc.knowledge import Knowledge
from fhirsvc.terminology import LOINC

PREFETCH_STYLES = ("2.0", "3.0")
OBSERVATION_DAYS = 400  # 3.0 style: the observations prefetch asks for the last 400 days
_CONTEXT_NAMES = ("patientId", "userId", "encounterId")
_TODAY = re.compile(r"\{\{\s*today\(\)\s*(?:([+-])\s*(\d{1,5})\s*days?\s*)?\}\}")
_WINDOW = re.compile(r"[?&]date=ge(\{\{[^}]*\}\})")


def check_style(style: str) -> str:
    """The prefetch style, or ValueError naming the allowed ones."""
    if style not in PREFETCH_STYLES:
        raise ValueError(f"PREFETCH_STYLE must be one of {', '.join(PREFETCH_STYLES)}, not {style!r}")
    return style


def _relative_date(match: re.Match[str], today: date) -> str:
    sign, days = match[1], int(match[2] or 0)
    return (today + timedelta(days=-days if sign == "-" else days)).isoformat()


def fill_template(template: str, context: Mapping[str, Any], today: date) -> str:
    """The template with its tokens replaced: ``{{context.x}}`` by the context's value, ``{{today()}}`` and
    ``{{today() +/- N days}}`` by the date (``YYYY-MM-DD``), as the 3.0 ballot's example does."""
    for name in _CONTEXT_NAMES:
        template = template.replace("{{context." + name + "}}", str(context.get(name, "")))
    return _TODAY.sub(lambda match: _relative_date(match, today), template)


def window_start(template: str | None, today: date) -> date | None:
    """The first day a template's ``date=ge{{today() - N days}}`` asks for (None: the template has no window)."""
    token = _window_token(template or "")
    return date.fromisoformat(_relative_date(token, today)) if token else None


@lru_cache(maxsize=16)
def _window_token(template: str) -> re.Match[str] | None:
    """The ``{{today() ...}}`` token of a template's window, if it has one: searched once per template (a service's
    own, the same on every call; the observations template is a long list of codes)."""
    found = _WINDOW.search(template)
    return _TODAY.fullmatch(found[1]) if found else None


def observations_template(loinc_codes: str, style: str) -> str:
    """The observations prefetch template of the style: the codes' results, newest first; 3.0: of the last
    ``OBSERVATION_DAYS`` days only."""
    window = f"&date=ge{{{{today() - {OBSERVATION_DAYS} days}}}}" if style == "3.0" else ""
    return f"Observation?patient={{{{context.patientId}}}}&code={loinc_codes}{window}&_sort=-date"


def observation_value_sets(knowledge: Knowledge) -> dict[str, frozenset[str]]:
    """The LOINC observation codes the rules read, by knowledge value set (members of a LOINC include; LOINC
    answer codes LA... excluded): the codes of the observations template, and what a windowed prefetch is
    completed for (``evaluation.prefetch``)."""
    return knowledge.derived("evaluation.observation_value_sets", _observation_value_sets)


def _observation_value_sets(knowledge: Knowledge) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for value_set in knowledge.of_type("ValueSet"):
        codes = {c["code"] for include in (value_set.get("compose") or {}).get("include") or ()
                 if include.get("system") == LOINC for c in include.get("concept") or ()
                 if not c["code"].startswith("LA")}
        if codes:
            found[str(value_set.get("url"))] = frozenset(codes)
    return found
