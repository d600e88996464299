"""Patient data selection: which records count, and the newest usable measurement of a kind.

Shared by every rule: age at ``context.now``; active (not refuted, not entered-in-error) conditions and
allergies; the newest observation of a value set within a window, with its value converted to the unit
the rule compares in; MedicationRequest/MedicationStatement status (current vs past) and their start and
end dates. Resources are FHIR R4 JSON mappings; nothing here knows about a particular drug.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhirsvc.drugmodel.units import unit_of
from fhirsvc.terminology import ValueSetMatcher, codings, concept_key

Resource = Mapping[str, Any]

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_datetime(value: str | None, *, end: bool = False) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (UTC when no zone is given).

    Partial dates (``2026``, ``2026-10``) and plain dates mean their first instant, or with ``end`` the
    first instant after them (so ``end`` dates include the whole day)."""
    if not value or not isinstance(value, str):
        return None
    if len(value) > 10:  # a date and a time, the common case: read at once (what the general path does last)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    match = _DATE.match(value.strip())
    if match:
        year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
        try:
            start = datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            return None
        if not end:
            return start
        if match[3]:
            return start + timedelta(days=1)
        if match[2]:
            return datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        return datetime(year + 1, 1, 1, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day(value: datetime | None) -> str | None:
    """The ISO date of a datetime (for card text and facts)."""
    return value.date().isoformat() if value else None


def concept_codes(concept: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The codings of a CodeableConcept as small {system, code, display} dicts (for facts)."""
    return [{k: str(c[k]) for k in ("system", "code", "display") if c.get(k)} for c in codings(concept)]


def concept_text(concept: Mapping[str, Any] | None) -> str:
    """What a person would call a CodeableConcept: its text, else the first display, else a code."""
    if not concept:
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in codings(concept):
        if coding.get("display"):
            return str(coding["display"])
    for coding in codings(concept):
        if coding.get("code"):
            return str(coding["code"])
    return ""


def has_code_in(matcher: ValueSetMatcher, concept: Mapping[str, Any] | None) -> bool:
    """True if a coding of the concept is a member by code (no name matching: answers like
    "Not pregnant" contain member names)."""
    return any(matcher.has_code(c.get("system"), c.get("code")) for c in codings(concept))


# --- Age ------------------------------------------------------------------------------------------------

def birth_date(patient: Resource | None) -> date | None:
    """The patient's birth date; a partial one (``1980``, ``1980-05``) counts from its first day."""
    if not patient:
        return None
    parsed = parse_datetime(patient.get("birthDate"))
    return parsed.date() if parsed else None


def age_years(patient: Resource | None, now: datetime) -> int | None:
    """Completed years of age at ``now``, or None without a birth date."""
    born = birth_date(patient)
    if born is None:
        return None
    today = now.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# --- Conditions and allergies ----------------------------------------------------------------------------

_INACTIVE_CLINICAL = {"inactive", "resolved", "remission"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}


def _status_code(concept: Any) -> str | None:
    if isinstance(concept, str):
        return concept
    for coding in codings(concept):
        if coding.get("code"):
            return str(coding["code"])
    return None


def is_active_condition(condition: Resource) -> bool:
    """Active (or recurrence/relapse; no status counts as active), not refuted, not entered-in-error,
    and not abated."""
    clinical = _status_code(condition.get("clinicalStatus"))
    verification = _status_code(condition.get("verificationStatus"))
    if clinical in _INACTIVE_CLINICAL or verification in _EXCLUDED_VERIFICATION:
        return False
    return not (clinical is None and any(k.startswith("abatement") for k in condition))


def is_active_allergy(allergy: Resource) -> bool:
    """An AllergyIntolerance that is active (or has no clinical status), not refuted, not entered-in-error."""
    clinical = _status_code(allergy.get("clinicalStatus"))
    verification = _status_code(allergy.get("verificationStatus"))
    return clinical not in _INACTIVE_CLINICAL and verification not in _EXCLUDED_VERIFICATION


def allergy_concepts(allergy: Resource) -> list[Mapping[str, Any]]:
    """What an allergy is to: its code and each reaction's substance."""
    found = [allergy["code"]] if allergy.get("code") else []
    found += [r["substance"] for r in allergy.get("reaction") or () if r.get("substance")]
    return found


def matching(records: Iterable[Resource], matcher: ValueSetMatcher,
             concepts: Callable[[Resource], Sequence[Mapping[str, Any] | None]]) -> list[Resource]:
    """The records with a concept in the value set (by code or whole-word name)."""
    return [r for r in records if any(matcher.matches_concept(c) for c in concepts(r))]


def condition_concepts(condition: Resource) -> list[Mapping[str, Any] | None]:
    return [condition.get("code")]


# --- Observations -------------------------------------------------------------------------------------

_EXCLUDED_OBSERVATION = {"entered-in-error", "cancelled", "registered"}


def observation_time(observation: Resource) -> datetime | None:
    """When the observation applies: effective[x] (a period's end, else start), else ``issued``."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        if observation.get(key):
            return parse_datetime(observation[key])
    period = observation.get("effectivePeriod") or {}
    return parse_datetime(period.get("end") or period.get("start") or observation.get("issued"))


@dataclass(frozen=True)
class Measurement:
    """The observation chosen for a rule, its time and its value in the rule's unit (None if the value
    could not be converted), and how it stands: ``found`` (usable and recent enough), ``stale`` (the
    newest usable one is too old), ``missing`` (none at all), ``unusable`` (only values in units that
    cannot be converted, e.g. a neutrophil percentage)."""

    status: str
    observation: Resource | None = None
    when: datetime | None = None
    value: float | None = None
    unit: str = ""
    age: timedelta | None = None

    @property
    def found(self) -> bool:
        return self.status == "found"

    def facts(self, label: str) -> dict[str, Any]:
        """The measurement as card facts."""
        out: dict[str, Any] = {f"{label}_status": self.status}
        if self.observation is not None:
            out[label] = {"value": self.value, "unit": self.unit, "date": day(self.when),
                          "observation": f"Observation/{self.observation.get('id', '')}",
                          "code": concept_codes(self.observation.get("code"))}
            raw = self.observation.get("valueQuantity") or {}
            if raw:
                out[label]["reported"] = {"value": raw.get("value"), "unit": unit_of(raw)}
        if self.age is not None:
            out[f"{label}_age_days"] = self.age.days
        return out


def observations_of(observations: Iterable[Resource] | ObservationIndex, matcher: ValueSetMatcher) -> list[Resource]:
    """The observations whose code is in the value set (by code or name), newest first, without
    entered-in-error, cancelled or undated ones."""
    index = observations if isinstance(observations, ObservationIndex) else ObservationIndex(observations)
    return index.of(matcher)


class ObservationIndex:
    """One call's observations, for ``observations_of`` over several value sets: observations of the same code
    (the same ``concept_key``) are matched against a value set once, an observation's time is read only when
    a value set selects it, and each value set's observations are selected once."""

    def __init__(self, observations: Iterable[Resource]) -> None:
        self.observations = tuple(observations)
        self._groups: list[tuple[Any, Any, list[tuple[int, Resource]]]] | None = None
        self._times: dict[int, datetime | None] = {}
        self._selected: dict[ValueSetMatcher, list[Resource]] = {}

    def groups(self) -> list[tuple[Any, Any, list[tuple[int, Resource]]]]:
        """(code, its ``concept_key``, [(position, observation)]) of the observations not excluded by their
        status, one group per code (an observation whose code has no key is a group of its own)."""
        if self._groups is None:
            groups, by_key = [], {}
            for position, obs in enumerate(self.observations):
                if obs.get("status") in _EXCLUDED_OBSERVATION:
                    continue
                code = obs.get("code")
                key = concept_key(code)
                if key is not None and key in by_key:
                    by_key[key].append((position, obs))
                    continue
                members = [(position, obs)]
                groups.append((code, key, members))
                if key is not None:
                    by_key[key] = members
            self._groups = groups
        return self._groups

    def time(self, position: int, observation: Resource) -> datetime | None:
        if position not in self._times:
            self._times[position] = observation_time(observation)
        return self._times[position]

    def of(self, matcher: ValueSetMatcher) -> list[Resource]:
        if matcher not in self._selected:
            chosen = [(when, -position, obs) for code, key, members in self.groups() if matcher.matches_keyed(code, key)
                      for position, obs in members if (when := self.time(position, obs)) is not None]
            chosen.sort(key=lambda row: row[:2], reverse=True)  # newest first; at the same time, in sent order
            self._selected[matcher] = [obs for _, _, obs in chosen]
        return list(self._selected[matcher])


def quantity_value(observation: Resource, convert: Callable[[float, str], float | None]) -> float | None:
    """The observation's valueQuantity converted by ``convert`` (None if absent or unconvertible)."""
    quantity = observation.get("valueQuantity") or {}
    value = quantity.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return convert(float(value), unit_of(quantity))


def newest_measurement(observations: Iterable[Resource], matcher: ValueSetMatcher, now: datetime,
                       convert: Callable[[float, str], float | None], unit: str,
                       max_age: timedelta | None = None) -> Measurement:
    """The newest observation of the value set whose value converts; ``stale`` if older than
    ``max_age``; ``unusable`` if there are only values that do not convert; ``missing`` if none."""
    candidates = observations_of(observations, matcher)
    if not candidates:
        return Measurement("missing")
    for obs in candidates:
        value = quantity_value(obs, convert)
        if value is None:
            continue
        when = observation_time(obs)
        assert when is not None
        age = now - when
        status = "stale" if max_age is not None and age > max_age else "found"
        return Measurement(status, obs, when, round(value, 6), unit, age)
    newest = candidates[0]
    when = observation_time(newest)
    return Measurement("unusable", newest, when, None, unit, now - when if when else None)


def observations_within(observations: Iterable[Resource], matcher: ValueSetMatcher, now: datetime,
                        window: timedelta) -> list[Resource]:
    """The observations of the value set taken in the window before ``now`` (not in the future)."""
    out = []
    for obs in observations_of(observations, matcher):
        when = observation_time(obs)
        if when is not None and now - window <= when <= now + timedelta(minutes=5):
            out.append(obs)
    return out


# --- Medications --------------------------------------------------------------------------------------

CURRENT_STATUSES = {"active", "on-hold"}
PAST_STATUSES = {"stopped", "completed"}
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


def medication_end(resource: Resource) -> datetime | None:
    """When a medication ended: the latest ``dosageInstruction.timing.repeat.boundsPeriod.end``, else
    ``dispenseRequest.validityPeriod.end`` (a MedicationStatement: ``effectivePeriod.end``)."""
    ends = [parse_datetime(b.get("end"), end=True) for b in _bounds(resource) if b.get("end")]
    ends = [e for e in ends if e is not None]
    if ends:
        return max(ends)
    validity = (resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
    if validity.get("end"):
        return parse_datetime(validity["end"], end=True)
    effective = resource.get("effectivePeriod") or {}
    return parse_datetime(effective.get("end"), end=True) if effective.get("end") else None


def medication_start(resource: Resource) -> datetime | None:
    """When a medication started: the earliest ``boundsPeriod.start``, else
    ``dispenseRequest.validityPeriod.start``, else ``authoredOn`` (a MedicationStatement: effective[x])."""
    starts = [parse_datetime(b.get("start")) for b in _bounds(resource) if b.get("start")]
    starts = [s for s in starts if s is not None]
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


def reference_key(resource: Resource) -> str:
    """``Type/id`` of a resource (for facts and to tell orders apart)."""
    return f"{resource.get('resourceType', '')}/{resource.get('id', '')}"
