"""Dose arithmetic: the daily dose of an order in mg.

Contract "Dose arithmetic": daily dose = dose per administration x administrations per day, from
``dosageInstruction.timing.repeat`` (``frequency``/``period``/``periodUnit``, incl. ``h``, ``d``, ``wk``)
or ``timing.code`` (QD, BID, TID, QID, QOD, Q2D, Q8H, ...). Units: any mass unit (``mg``, ``g``, ``ug``/``mcg``:
``drugmodel.units.mass_mg``); ``mL`` (converted with the
drug's strength from the knowledge); a prefilled ``syringe`` (the content of one syringe, from the
knowledge). Anything else, or no dose, is unreadable and the rule says "Unable to check dose".
Both R4 shapes are accepted: ``doseAndRate[].doseQuantity`` (an array or a single object) and the older
``doseQuantity`` directly on the dosage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhirsvc.drugmodel.timing import administrations_per_day
from fhirsvc.drugmodel.units import dose_unit_kind, mass_mg
from fhirsvc.fhirtypes import quantity_text, schedule_words, unit_words
from fhirsvc.terminology import codings

Resource = Mapping[str, Any]

def dose_quantity(dosage: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The dose per administration of an R4 Dosage: ``doseAndRate[].doseQuantity`` (the ``ordered`` one
    if types are given), or ``doseQuantity`` directly on the dosage."""
    dose_and_rate = dosage.get("doseAndRate")
    if isinstance(dose_and_rate, Mapping):
        dose_and_rate = [dose_and_rate]
    entries = [d for d in dose_and_rate or () if isinstance(d, Mapping) and d.get("doseQuantity")]
    ordered = [d for d in entries if any(c.get("code") == "ordered" for c in codings(d.get("type")))]
    if ordered or entries:
        return (ordered or entries)[0]["doseQuantity"]
    return dosage.get("doseQuantity")


def dose_range(dosage: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``doseAndRate[].doseRange`` of an R4 Dosage that gives no ``doseQuantity`` (the ``ordered`` one if
    types are given), or None."""
    dose_and_rate = dosage.get("doseAndRate")
    if isinstance(dose_and_rate, Mapping):
        dose_and_rate = [dose_and_rate]
    entries = [d for d in dose_and_rate or () if isinstance(d, Mapping) and isinstance(d.get("doseRange"), Mapping)]
    ordered = [d for d in entries if any(c.get("code") == "ordered" for c in codings(d.get("type")))]
    return (ordered or entries)[0]["doseRange"] if entries else None


unit_kind = dose_unit_kind  # the unit conversions are the drug model's (drugmodel/units.py)


def to_mg(quantity: Mapping[str, Any] | None, mg_per_ml: float | None, mg_per_syringe: float | None) -> float | None:
    """A dose quantity in mg (mL via the strength, syringes via one syringe's content), or None."""
    if not quantity:
        return None
    value = quantity.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        return None
    for unit in (quantity.get("code"), quantity.get("unit")):  # the UCUM code first
        mg = mass_mg(value, unit) if isinstance(unit, str) else None
        if mg is not None:
            return round(mg, 6)
    kind = unit_kind(quantity.get("code")) or unit_kind(quantity.get("unit"))
    factor = {"mL": mg_per_ml, "syringe": mg_per_syringe}.get(kind or "")
    return None if factor is None else round(value * factor, 6)


@dataclass(frozen=True)
class DailyDose:
    """The daily dose of an order, or why it cannot be read (``problem``)."""

    daily_mg: float | None = None
    per_administration_mg: float | None = None
    per_day: float | None = None  # administrations per day (largest of the dosages)
    dose_text: str = ""  # the ordered dose as written, e.g. "0.67 mL"
    problem: str | None = None
    # a doseRange order: ``daily_mg`` is at the range's upper end (the most the order allows), this at its
    # lower end (None without a lower end); for a single dose, None
    low_daily_mg: float | None = None
    ranged: bool = False

    @property
    def readable(self) -> bool:
        return self.problem is None and self.daily_mg is not None

    def facts(self) -> dict[str, Any]:
        return {"daily_dose_mg": self.daily_mg, "dose_per_administration_mg": self.per_administration_mg,
                "administrations_per_day": self.per_day, "ordered_dose": self.dose_text,
                **({"dose_range": {"read_at": "upper end", "low_daily_dose_mg": self.low_daily_mg}}
                   if self.ranged else {}),
                **({"dose_problem": self.problem} if self.problem else {})}

    @property
    def lowest_daily_mg(self) -> float | None:
        """The least the order gives per day: the lower end of a dose range, else the daily dose."""
        return self.low_daily_mg if self.ranged else self.daily_mg


def dose_text(quantity: Mapping[str, Any] | None) -> str:
    """A dose as the prescriber reads it: ``100 mg``, ``1 pill`` (a UCUM annotation in words: ``unit_words``)."""
    if not isinstance(quantity, Mapping):
        return ""
    unit = quantity.get("unit") or quantity.get("code")
    return quantity_text({**quantity, "unit": unit_words(unit)} if unit else quantity)


def range_text(rng: Mapping[str, Any]) -> str:
    """``50-150 mg`` (``up to 150 mg`` without a lower end)."""
    low, high = rng.get("low") or {}, rng.get("high") or {}
    high_text = dose_text(high) if high else "?"
    if not low:
        return f"up to {high_text}"
    same_unit = (low.get("unit"), low.get("code")) == (high.get("unit"), high.get("code"))
    if same_unit and isinstance(low.get("value"), (int, float)):
        return f"{low['value']:g}-{high_text}"
    return f"{dose_text(low)}-{high_text}"


def dosages(order: Resource) -> Sequence[Mapping[str, Any]]:
    """The order's dosage instructions (MedicationRequest ``dosageInstruction``, MedicationStatement
    ``dosage``)."""
    return order.get("dosageInstruction") or order.get("dosage") or ()


def daily_dose(order: Resource, mg_per_ml: float | None, mg_per_syringe: float | None) -> DailyDose:
    """The order's daily dose in mg: per dosage instruction dose x administrations per day, summed over
    instructions that apply together (same ``sequence``), the largest over sequential ones."""
    instructions = [d for d in dosages(order) if isinstance(d, Mapping)]
    if not instructions:
        return DailyDose(problem="no dosage instruction")
    totals: dict[Any, float] = {}
    lows: dict[Any, float | None] = {}
    per_admin: list[float] = []
    per_days: list[float] = []
    texts = []
    ranged = False
    for dosage in instructions:
        quantity, low = dose_quantity(dosage), None
        rng = None if quantity else dose_range(dosage)
        if rng is not None:  # a dose range: the most it allows is checked against maximums, the least against
            ranged = True    # the starting dose
            quantity, low = rng.get("high"), rng.get("low")
            texts.append(range_text(rng))
            if not isinstance(quantity, Mapping) or quantity.get("value") is None:
                return DailyDose(problem="dose range without an upper end", dose_text=", ".join(texts), ranged=True)
        else:
            texts.append(dose_text(quantity))
        if not quantity or quantity.get("value") is None:
            return DailyDose(problem="no dose quantity", dose_text=", ".join(filter(None, texts)))
        mg = to_mg(quantity, mg_per_ml, mg_per_syringe)
        if mg is None:
            unit = unit_words(quantity.get("unit") or quantity.get("code")) or "no unit"
            return DailyDose(problem=f"unit '{unit}' cannot be converted to mg", dose_text=", ".join(texts),
                             ranged=ranged)
        low_mg = to_mg(low, mg_per_ml, mg_per_syringe) if low else (None if rng is not None else mg)
        per_day = administrations_per_day(dosage.get("timing"))
        if per_day is None:
            return DailyDose(per_administration_mg=mg, problem="no readable frequency", dose_text=", ".join(texts),
                             ranged=ranged)
        key = dosage.get("sequence")
        totals[key] = totals.get(key, 0.0) + mg * per_day
        lows[key] = None if low_mg is None or lows.get(key, 0.0) is None else (lows.get(key) or 0.0) + low_mg * per_day
        per_admin.append(mg)
        per_days.append(per_day)
    high_key = max(totals, key=lambda k: totals[k])
    low_total = lows.get(high_key)
    return DailyDose(daily_mg=round(totals[high_key], 6), per_administration_mg=max(per_admin),
                     per_day=max(per_days), dose_text=", ".join(filter(None, texts)),
                     low_daily_mg=round(low_total, 6) if ranged and low_total is not None else None, ranged=ranged)


def order_per_day(order: Resource) -> float | None:
    """The largest number of administrations per day among the order's dosage instructions."""
    values = [administrations_per_day(d.get("timing")) for d in dosages(order) if isinstance(d, Mapping)]
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def describe_per_day(per_day: float | None) -> str:
    """``every day``, ``twice a day``, ``every 2 days``, ``every 8 hours``, ``once a week`` ..."""
    if per_day is None or per_day <= 0:
        return "at an unreadable frequency"
    if abs(per_day - 1) < 1e-9 or abs(per_day - 2) < 1e-9:
        return schedule_words(round(per_day), 1, "d")
    if per_day > 1:
        hours = 24 / per_day
        if per_day > 4 and abs(hours - round(hours)) < 1e-9:
            return schedule_words(1, round(hours), "h")
        return schedule_words(per_day, 1, "d")
    days = 1 / per_day
    if abs(days - 2) < 1e-6:
        return "every other day"
    if abs(days - 7) < 1e-6:
        return schedule_words(1, 1, "wk", once=True)
    if abs(days - round(days)) < 1e-6:
        return schedule_words(1, round(days), "d")
    return schedule_words(1, float(f"{days:.3g}"), "d")
