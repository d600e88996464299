"""Observations: which results can be read, and the newest usable measurement of a kind.

The newest observation of a value set within a window, with its value converted to the unit the rule compares
in (``read_quantity``), or a coded answer (``read_coded``); why a result cannot be used, said on the card.
Each value set's observations are selected once per call (``ObservationIndex``). Resources are FHIR R4 JSON
mappings; nothing here knows about a particular drug.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhirsvc.checks.context import Resource
from fhirsvc.checks.reading.resources import code_pairs, concept_codes, is_object, reference_key
from fhirsvc.checks.reading.windows import When, Window, day, parse_when, when_start
from fhirsvc.drugmodel.units import unit_of
from fhirsvc.fhirtypes import concept_text, quantity_text
from fhirsvc.terminology import ValueSetMatcher, concept_key

# Present but not results at all: never shown, never counted.
_EXCLUDED_OBSERVATION = {"entered-in-error", "cancelled"}

# The statuses of a result that can be used (R4 ObservationStatus); any other (registered, preliminary,
# unknown) is a result present but unreadable.
READABLE_STATUSES = frozenset({"final", "amended", "corrected"})


def observation_when(observation: Resource) -> When | None:
    """When the observation applies: ``effectiveDateTime``/``effectiveInstant``; an ``effectivePeriod``'s end
    (else its start); without effective[x] (or with only ``effectiveTiming``), ``issued``."""
    return parse_when(_applies(observation))


def observation_time(observation: Resource) -> datetime | None:
    """``observation_when`` as its first instant."""
    return when_start(_applies(observation))


def _applies(observation: Resource) -> Any:
    """The date the observation applies at, as written (``observation_when``)."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        if observation.get(key):
            return observation[key]
    period = observation.get("effectivePeriod")
    period = period if is_object(period) else {}
    return period.get("end") or period.get("start") or observation.get("issued")


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@dataclass(frozen=True)
class Threshold:
    """The question a rule asks of a measurement (``holds``: e.g. below 30 mL/min), and how a card says it.

    A value reported with a comparator (eGFR ``>60``, a count ``<0.1``) is a bound, not a value: it is
    readable for a rule only when every value it allows gives the same answer (``decides``)."""

    holds: Callable[[float], bool]
    text: str

    @classmethod
    def compare(cls, comparator: str, threshold: float, unit: str = "") -> Threshold:
        """``value <comparator> threshold`` (``<``, ``<=``, ``>``, ``>=``)."""
        op = _COMPARE[comparator]
        return cls(lambda value: op(value, threshold), f"{comparator} {threshold:g} {unit}".strip())

    def decides(self, comparator: str, bound: float) -> bool | None:
        """The answer for every value ``<comparator> bound`` allows, or None if they differ (checked at the
        bound's edge, just inside it and far beyond it)."""
        below = comparator in ("<", "<=")
        step = max(abs(bound), 1.0) * 1e-9
        answers = {self.holds(bound - step if below else bound + step),
                   self.holds(-1e300 if below else 1e300)}
        if comparator in ("<=", ">="):
            answers.add(self.holds(bound))
        return answers.pop() if len(answers) == 1 else None


@dataclass(frozen=True)
class Reading:
    """One observation as a rule reads it: its time, its value in the rule's unit (None when it cannot be
    read) and, when it cannot, ``problem`` (why) and ``shown`` (what was found: ``5 %``, ``text 'not
    reported: specimen clotted'``). ``meets``: the rule's test on a readable value (None without a test)."""

    observation: Resource
    when: When | None
    value: float | None = None
    comparator: str = ""
    problem: str | None = None
    shown: str = ""
    meets: bool | None = None

    @property
    def readable(self) -> bool:
        return self.problem is None

    @property
    def date(self) -> str | None:
        return self.when.label() if self.when else None

    def described(self) -> str:
        """``5 % on 2026-11-20, a percentage ... cannot be used`` style: what was found and why it is not
        used."""
        return f"{self.shown or 'no value'}, {self.date or 'undated'}: {self.problem}"


def _shown_value(observation: Resource) -> str:
    """What the observation holds instead of a quantity (for messages)."""
    if isinstance(observation.get("valueString"), str):
        return f"text '{observation['valueString'][:60]}'"
    if isinstance(observation.get("valueCodeableConcept"), Mapping):
        return f"'{concept_text(observation['valueCodeableConcept'])[:60]}'"
    for key in ("valueBoolean", "valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime",
                "valueDateTime", "valuePeriod"):
        if key in observation:
            return f"a {key.removeprefix('value')[0].lower() + key.removeprefix('value')[1:]} value"
    return ""


def _status_problem(observation: Resource) -> str | None:
    """Why the observation is not a usable result whatever its value: its status, a dataAbsentReason."""
    status = observation.get("status")
    if not isinstance(status, str) or status not in READABLE_STATUSES:
        return f"its status is {status}, not final" if isinstance(status, str) else "it has no status"
    absent = observation.get("dataAbsentReason")
    if absent:
        # said without brackets: card text puts the whole reading in brackets (docs/card-style.md)
        return f"no value, reported as {(concept_text(absent) if isinstance(absent, Mapping) else '') or 'absent'}"
    return None


def read_quantity(observation: Resource, convert: Callable[[float, str], float | None],
                  test: Threshold | None = None) -> Reading:
    """The observation as a measurement: readable when its status is final, amended or corrected, it has no
    ``dataAbsentReason``, and its ``valueQuantity`` has a number in a unit ``convert`` knows. A value with a
    comparator is readable only for a ``test`` that it decides."""
    return _quantity(observation, observation_when(observation), convert, test)


def _quantity(observation: Resource, when: When | None, convert: Callable[[float, str], float | None],
              test: Threshold | None = None) -> Reading:
    """``read_quantity`` of an observation whose date is already read."""
    quantity = observation.get("valueQuantity")
    quantity = quantity if isinstance(quantity, Mapping) else {}
    shown = quantity_text(quantity, "joined") if quantity else _shown_value(observation)
    problem = _status_problem(observation)
    if problem:
        return Reading(observation, when, problem=problem, shown=shown)
    value = quantity.get("value")
    if not quantity or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return Reading(observation, when, problem="not a number with a unit", shown=shown)
    unit = unit_of(quantity)
    converted = convert(float(value), unit)
    if converted is None:
        return Reading(observation, when, problem=f"the unit '{unit or 'none'}' cannot be converted", shown=shown)
    converted = round(converted, 6)
    comparator = quantity.get("comparator") or ""
    if comparator:
        if test is None or comparator not in ("<", "<=", ">", ">="):
            return Reading(observation, when, problem="a bound, not a value", shown=shown)
        meets = test.decides(comparator, converted)
        if meets is None:
            return Reading(observation, when, problem=f"a bound that does not tell whether it is {test.text}",
                           shown=shown)
        return Reading(observation, when, converted, comparator, shown=shown, meets=meets)
    return Reading(observation, when, converted, shown=shown, meets=test.holds(converted) if test else None)


def read_coded(observation: Resource) -> Reading:
    """The observation as a coded answer (pregnancy or breastfeeding status): readable when its status is
    final, amended or corrected, it has no ``dataAbsentReason``, and it answers with a coded
    ``valueCodeableConcept`` or a ``valueBoolean``."""
    return _coded(observation, observation_when(observation))


def _coded(observation: Resource, when: When | None) -> Reading:
    """``read_coded`` of an observation whose date is already read."""
    shown = _shown_value(observation)
    problem = _status_problem(observation)
    if problem:
        return Reading(observation, when, problem=problem, shown=shown)
    answer = observation.get("valueCodeableConcept")
    if code_pairs(answer) or isinstance(observation.get("valueBoolean"), bool):
        return Reading(observation, when, shown=shown)
    return Reading(observation, when, problem="not a coded answer", shown=shown)


@dataclass(frozen=True)
class Measurement:
    """What a rule reads of one kind of measurement: the newest readable result and how it stands:
    ``found`` (readable and within the window), ``stale`` (the newest readable one is too old), ``unreadable``
    (the newest observation cannot be read and no readable one is recent enough), ``missing`` (none at all).

    ``observation``/``when``/``value``/``age`` are the chosen reading's (for ``unreadable``: the newest
    observation's); ``newest_unreadable`` is the newest observation when it cannot be read and is newer than
    the reading that decides; ``older`` is, for ``unreadable``, the newest readable one if it is too old."""

    status: str
    observation: Resource | None = None
    when: datetime | None = None
    value: float | None = None
    unit: str = ""
    age: timedelta | None = None
    reading: Reading | None = None
    newest_unreadable: Reading | None = None
    older: Reading | None = None
    window: Window | None = None
    now: datetime | None = None

    @property
    def found(self) -> bool:
        return self.status == "found"

    @property
    def meets(self) -> bool | None:
        """The rule's test on the found value (None if nothing is found or no test was given)."""
        return self.reading.meets if self.found and self.reading else None

    @property
    def shown(self) -> str:
        """The value as the rule reads it, with its unit (``1.2 10*9/L``, ``>60 mL/min``)."""
        comparator = self.reading.comparator if self.reading else ""
        return f"{comparator}{self.value:g} {self.unit}" if self.value is not None else ""

    def problem(self, label: str) -> str:
        """What was found, in words, for a card that cannot use it (``label``: "body weight")."""
        if self.status == "missing":
            return f"no {label} is recorded"
        if self.status == "stale" and self.reading and self.reading.when and self.window and self.now:
            return (f"the newest {label} ({self.shown}, {self.reading.date}) is "
                    f"{self.window.too_old(self.reading.when, self.now)}")
        if self.status == "unreadable" and self.reading:
            text = f"the newest {label} cannot be used ({self.reading.described()})"
            if self.older and self.older.when and self.window and self.now:
                text += (f"; the newest usable one ({_shown_reading(self.older, self.unit)}, {self.older.date}) is "
                         f"{self.window.too_old(self.older.when, self.now)}")
            elif self.window:
                text += f"; no usable {label} within {_plural_window(self.window)}"
            return text
        return ""

    def brief(self, label: str) -> str:
        """``problem`` short enough for a card summary."""
        if self.status == "missing":
            return f"no {label} recorded"
        if self.status == "stale" and self.reading and self.reading.when and self.window and self.now:
            return (f"newest {label} is {self.window.how_old(self.reading.when, self.now)} "
                    f"(over {_plural_window(self.window)})")
        if self.status == "unreadable" and self.reading:
            shown = self.reading.shown or "no value"
            shown = shown if len(shown) <= 32 else shown[:31].rstrip() + "\u2026"
            return f"newest {label} cannot be used ({shown}, {self.reading.date})"
        return ""

    def facts(self, label: str) -> dict[str, Any]:
        """The measurement as card facts."""
        out: dict[str, Any] = {f"{label}_status": self.status}
        if self.observation is not None:
            out[label] = {"value": self.value, "unit": self.unit, "date": day(self.when),
                          "observation": f"Observation/{self.observation.get('id', '')}",
                          "code": concept_codes(self.observation.get("code"))}
            raw = self.observation.get("valueQuantity") or {}
            if isinstance(raw, Mapping) and raw:
                out[label]["reported"] = {"value": raw.get("value"), "unit": unit_of(raw),
                                          **({"comparator": raw["comparator"]} if raw.get("comparator") else {})}
        if self.age is not None:
            out[f"{label}_age_days"] = self.age.days
        for name, reading in (("unreadable", self.newest_unreadable if self.found or self.status == "stale"
                               else self.reading), ("older", self.older)):
            if reading is not None and (name == "older" or not reading.readable):
                out[f"{label}_{name}"] = {"observation": reference_key(reading.observation), "date": reading.date,
                                          "found": reading.shown, **({"problem": reading.problem}
                                                                     if reading.problem else {})}
        if self.window is not None:
            out[f"{label}_window"] = {"limit": self.window.limit, "unit": self.window.unit, "inclusive": True}
        return out


def _shown_reading(reading: Reading, unit: str) -> str:
    return f"{reading.comparator}{reading.value:g} {unit}" if reading.value is not None else reading.shown


def _plural_window(window: Window) -> str:
    return f"{window.limit:g} {window.unit}{'' if window.limit == 1 else 's'}"


def observations_of(observations: Iterable[Resource] | ObservationIndex, matcher: ValueSetMatcher) -> list[Resource]:
    """The observations whose code is in the value set (by code or name), newest first, without
    entered-in-error, cancelled or undated ones."""
    return [obs for _, _, obs in _index(observations).dated(matcher)]


def _index(observations: Iterable[Resource] | ObservationIndex) -> ObservationIndex:
    return observations if isinstance(observations, ObservationIndex) else ObservationIndex(observations)


# An observation a value set selects: its first instant, minus its position in the call (the later sent, the lower),
# the observation. Rows sort newest first, at the same time in sent order.
Row = tuple[datetime, int, Resource]


class _Code:
    """The observations of one code (one ``concept_key``; an observation whose code has no key is a code of its
    own), dated once, when a value set first selects them, as rows newest first."""

    __slots__ = ("_rows", "code", "key", "members")

    def __init__(self, code: Mapping[str, Any], key: Any, position: int, observation: Resource) -> None:
        self.code = code
        self.key = key
        self.members = [(position, observation)]
        self._rows: list[Row] | None = None

    def rows(self) -> list[Row]:
        if self._rows is None:
            rows = [(time, -position, obs) for position, obs in self.members
                    if (time := observation_time(obs)) is not None]
            rows.sort(reverse=True)  # by time, then position (never the same): the observations are not compared
            self._rows = rows
        return self._rows


class ObservationIndex:
    """One call's observations, indexed in one pass by code (``concept_key``): a value set is matched against each
    code once (``ValueSetMatcher.matches_keyed``, remembered across calls), an observation is dated once, when a
    value set first selects its code, each value set's observations are selected once, and an observation read
    has when it applies read once (``when``)."""

    def __init__(self, observations: Iterable[Resource]) -> None:
        self.observations = tuple(observations)
        self._codes: list[_Code] | None = None
        self._selected: dict[ValueSetMatcher, list[Row]] = {}
        self._when: dict[int, When | None] = {}

    def codes(self) -> list[_Code]:
        """The codes of the observations not excluded by their status, in the order they first come."""
        if self._codes is None:
            codes: list[_Code] = []
            by_key: dict[Any, _Code] = {}
            for position, obs in enumerate(self.observations):
                status = obs.get("status")
                code = obs.get("code")
                if (isinstance(status, str) and status in _EXCLUDED_OBSERVATION) or not is_object(code):
                    continue  # not a result, or no code: of no value set
                key = concept_key(code)
                found = by_key.get(key) if key is not None else None
                if found is not None:
                    found.members.append((position, obs))
                    continue
                found = _Code(code, key, position, obs)
                codes.append(found)
                if key is not None:
                    by_key[key] = found
            self._codes = codes
        return self._codes

    def dated(self, matcher: ValueSetMatcher) -> list[Row]:
        """The rows of the value set's dated observations, newest first (at the same time, in sent order)."""
        if matcher not in self._selected:
            chosen = [code.rows() for code in self.codes() if matcher.matches_keyed(code.code, code.key)]
            self._selected[matcher] = chosen[0] if len(chosen) == 1 else sorted(
                (row for rows in chosen for row in rows), reverse=True)
        return self._selected[matcher]

    def when(self, row: Row) -> When | None:
        """When the row's observation applies (``observation_when``)."""
        if row[1] not in self._when:
            self._when[row[1]] = observation_when(row[2])
        return self._when[row[1]]


def newest_measurement(observations: Iterable[Resource] | ObservationIndex, matcher: ValueSetMatcher, now: datetime,
                       convert: Callable[[float, str], float | None], unit: str,
                       max_age: timedelta | Window | None = None, test: Threshold | None = None, *,
                       readable_only: bool = False) -> Measurement:
    """The newest readable observation of the value set decides (``read_quantity``): ``found`` if it is within
    ``max_age`` (a window in whole days, inclusive: ``Window``), else ``stale``; ``unreadable`` when the newest
    observation cannot be read and no readable one is within the window; ``missing`` if there is none.
    ``readable_only``: the observations that cannot be read are left out (a newer one is not said)."""
    index = _index(observations)

    def read(row: Row) -> Reading:
        return _quantity(row[2], index.when(row), convert, test)

    rows = index.dated(matcher)
    if readable_only:
        first = next((row for row in rows if read(row).readable), None)
        rows = [first] if first is not None else []
    return _newest(rows, read, now, unit, Window.of(max_age) if isinstance(max_age, timedelta) else max_age)


def newest_coded(observations: Iterable[Resource] | ObservationIndex, matcher: ValueSetMatcher, now: datetime,
                 max_age: timedelta | Window | None = None) -> Measurement:
    """``newest_measurement`` for a coded answer (``read_coded``: pregnancy or breastfeeding status)."""
    index = _index(observations)
    return _newest(index.dated(matcher), lambda row: _coded(row[2], index.when(row)), now, "",
                   Window.of(max_age) if isinstance(max_age, timedelta) else max_age)


def _newest(rows: list[Row], read: Callable[[Row], Reading], now: datetime, unit: str,
            window: Window | None) -> Measurement:
    if not rows:
        return Measurement("missing", window=window, now=now)
    newest = read(rows[0])
    readable = newest if newest.readable else next((r for r in map(read, rows[1:]) if r.readable), None)
    unreadable = None if newest.readable else newest

    def recent(reading: Reading) -> bool:
        return window is None or window.contains(reading.when, now)

    if readable is not None and recent(readable):
        return _measured("found", readable, unit, now, window, newest_unreadable=unreadable)
    if unreadable is not None and (readable is None or recent(unreadable)):
        return _measured("unreadable", unreadable, unit, now, window, newest_unreadable=unreadable, older=readable)
    assert readable is not None
    return _measured("stale", readable, unit, now, window, newest_unreadable=unreadable)


_DAYS = Window(0)  # ages in whole calendar days


def _measured(status: str, reading: Reading, unit: str, now: datetime, window: Window | None,
              newest_unreadable: Reading | None = None, older: Reading | None = None) -> Measurement:
    when = reading.when
    age = timedelta(days=_DAYS.age(when, now)) if when else None
    return Measurement(status, reading.observation, when.start if when else None, reading.value, unit, age,
                       reading, newest_unreadable, older, window, now)


def readings_within(observations: Iterable[Resource] | ObservationIndex, matcher: ValueSetMatcher, now: datetime,
                    window: Window,
                    convert: Callable[[float, str], float | None], test: Threshold | None = None) -> list[Reading]:
    """Every observation of the value set within the window (an imprecise date placed at its last instant:
    ``windows``), read (``read_quantity``), newest first."""
    index = _index(observations)
    return [_quantity(row[2], when, convert, test) for row in index.dated(matcher)
            if window.contains(when := index.when(row), now, place="last")]
