"""Unit conversion for the data the rules compare: doses by mass, time spans, body weight, kidney function,
neutrophil counts, temperature. UCUM codes first, then the spellings real EHRs put in ``unit``.

These are unit facts, not drug facts; every function returns None for a unit it does not know (the
caller then says "Unable to check").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

# UCUM definite-duration units (UCUM: mo = mean Julian month = 30.4375 d, a = 365.25 d).
DAYS_PER_UNIT: dict[str, float] = {
    "s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.4375, "a": 365.25,
}
_DURATION_WORDS = {
    "second": "s", "seconds": "s", "sec": "s", "minute": "min", "minutes": "min", "hour": "h", "hours": "h",
    "hr": "h", "day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo",
    "year": "a", "years": "a", "yr": "a",
}


def _norm(unit: str | None) -> str:
    return (unit or "").strip().replace("\u00b5", "u").replace("\u03bc", "u").replace(" ", "")


def unit_of(quantity: Mapping[str, Any] | None) -> str:
    """The unit of a Quantity: its UCUM ``code`` if given, else its human ``unit``."""
    if not quantity:
        return ""
    return str(quantity.get("code") or quantity.get("unit") or "")


def duration_days(value: float | None, unit: str | None) -> float | None:
    """A duration in days (``3 mo`` -> 91.3125), or None for an unknown unit."""
    if value is None:
        return None
    key = _norm(unit)
    key = _DURATION_WORDS.get(key.lower(), key)
    factor = DAYS_PER_UNIT.get(key)
    return None if factor is None else float(value) * factor


def duration(quantity: Mapping[str, Any] | None) -> timedelta | None:
    """A FHIR Duration/Quantity as a timedelta, or None."""
    if not quantity or quantity.get("value") is None:
        return None
    days = duration_days(quantity["value"], quantity.get("code") or quantity.get("unit"))
    return None if days is None else timedelta(days=days)


# Mass units of a dose, in mg (contract "Dose arithmetic": mass units convert). UCUM ``ug`` (and the micro sign,
# normalised to ``u``), ``mcg``; the words EHRs write. Compared lower-case: ``mg``/``MG``/``Mg`` alike.
_MG = {
    "mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "milligramme": 1.0, "milligrammes": 1.0,
    "g": 1000.0, "gm": 1000.0, "gram": 1000.0, "grams": 1000.0, "gramme": 1000.0, "grammes": 1000.0,
    "ug": 0.001, "mcg": 0.001, "microgram": 0.001, "micrograms": 0.001, "microgramme": 0.001,
    "microgrammes": 0.001,
}


# A dose in volume (converted with the drug's strength) or in prefilled syringes (one syringe's content).
_ML = frozenset({"ml", "milliliter", "milliliters", "millilitre", "millilitres"})
_SYRINGES = frozenset({"syringe", "syringes", "{syringe}", "{syringes}", "prefilled syringe", "prefilled syringes",
                       "pre-filled syringe", "pre-filled syringes", "{prefilled syringe}"})


def _dose_key(unit: str | None) -> str:
    return " ".join((unit or "").strip().replace("\u00b5", "u").replace("\u03bc", "u").lower().split())


def mass_mg(value: float, unit: str | None) -> float | None:
    """A mass in mg (``0.2 g`` -> 200, ``200000 mcg`` -> 200), or None for a unit that is not a mass unit."""
    factor = _MG.get(_dose_key(unit))
    return None if factor is None else value * factor


def dose_unit_kind(unit: str | None) -> str | None:
    """What a dose unit measures (contract "Dose arithmetic"): ``mg`` for any mass unit (``mass_mg`` converts
    it), ``mL``, ``syringe``; None for any other unit (the dose cannot be read)."""
    key = _dose_key(unit)
    if key in _MG:
        return "mg"
    if key in _ML:
        return "mL"
    return "syringe" if key in _SYRINGES else None


_KG = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237, "[oz_av]": 0.028349523125,
       "oz": 0.028349523125}


def weight_kg(value: float, unit: str | None) -> float | None:
    """A body weight in kg (None for a weight that is not positive: not a measurement)."""
    factor = _KG.get(_norm(unit).lower())
    return None if factor is None or value <= 0 else value * factor


_ML_PER_MIN = {
    "ml/min": 1.0, "ml/min/{1.73_m2}": 1.0, "ml/min/1.73m2": 1.0, "ml/min/1.73.m2": 1.0,
    "ml/min/{1.73m2}": 1.0, "ml/min/1.73m^2": 1.0, "ml/min/1.73m²": 1.0, "ml/s": 60.0, "ml/s/{1.73_m2}": 60.0,
    "ml/s/1.73m2": 60.0,
}


def kidney_ml_per_min(value: float, unit: str | None) -> float | None:
    """A creatinine clearance or eGFR in mL/min (per 1.73 m² where the test reports it so)."""
    factor = _ML_PER_MIN.get(_norm(unit).lower())
    return None if factor is None else value * factor


_PER_L_10E9 = {
    # 10^9/L and the equal 10^3/uL (= K/uL, thousand per microlitre, giga per litre)
    "10*9/l": 1.0, "10^9/l": 1.0, "x10^9/l": 1.0, "x10*9/l": 1.0, "10e9/l": 1.0, "x10e9/l": 1.0,
    "giga/l": 1.0, "10*3/ul": 1.0, "10^3/ul": 1.0, "x10^3/ul": 1.0, "x10*3/ul": 1.0, "10e3/ul": 1.0,
    "x10e3/ul": 1.0, "k/ul": 1.0, "thou/ul": 1.0, "10*3/mm3": 1.0, "10^3/mm3": 1.0, "k/mm3": 1.0,
    # cells per microlitre (= per mm3)
    "/ul": 0.001, "cells/ul": 0.001, "{cells}/ul": 0.001, "/mm3": 0.001, "cells/mm3": 0.001,
    "{cells}/mm3": 0.001, "10*6/l": 0.001, "10^6/l": 0.001,
}


def cells_10e9_per_l(value: float, unit: str | None) -> float | None:
    """A blood cell count in 10^9/L; None for a unit that is not an absolute count (``%``).

    UCUM is case-sensitive here: ``G/L`` is giga per litre, ``g/L`` grams per litre (not a count)."""
    key = _norm(unit)
    factor = 1.0 if key == "G/L" else _PER_L_10E9.get(key.lower())
    return None if factor is None else value * factor


def celsius(value: float, unit: str | None) -> float | None:
    """A temperature in °C."""
    key = _norm(unit).lower()
    if key in ("cel", "°c", "c", "degc", "[degc]", "celsius"):
        return value
    if key in ("[degf]", "°f", "f", "degf", "fahrenheit"):
        return (value - 32) * 5 / 9
    return None


def converter_for(unit: str) -> tuple[str, Callable[[float, str | None], float | None]] | None:
    """The conversion to a characteristic's unit (``mL/min``, ``kg``, ``10*9/L``, ``Cel``), or None."""
    key = _norm(unit).lower()
    if key in _ML_PER_MIN:
        return "mL/min", kidney_ml_per_min
    if key in _KG:
        return "kg", weight_kg
    if key in _PER_L_10E9 or unit == "G/L":
        return "10*9/L", cells_10e9_per_l
    if celsius(0.0, unit) is not None:
        return "Cel", celsius
    return None


__all__ = ["DAYS_PER_UNIT", "cells_10e9_per_l", "celsius", "converter_for", "dose_unit_kind", "duration",
           "duration_days", "kidney_ml_per_min", "mass_mg", "unit_of", "weight_kg"]
