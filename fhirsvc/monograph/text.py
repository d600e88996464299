"""How the page says FHIR data types in words: concepts, quantities, ranges, timings, doses, maxima, strengths,
patient characteristics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.drugmodel.profile import Strength
from fhirsvc.fhirtypes import UNIT_WORDS, quantity_text, schedule_words
from fhirsvc.fhirtypes import concept_text as _text
from fhirsvc.fhirtypes import number_text as _num

DASH = "\u2013"  # en dash, for ranges


NONE = "\u2013"  # a table cell with nothing to say


def _reference(value: Mapping[str, Any] | None) -> str | None:
    if not value:
        return None
    if "reference" in value and isinstance(value["reference"], Mapping):  # CodeableReference
        return value["reference"].get("reference")
    return value.get("reference")


def _display(reference: Mapping[str, Any] | None) -> str:
    return str((reference or {}).get("display") or (reference or {}).get("reference") or "")


def _names(mk: Mapping[str, Any]) -> list[str]:
    names = list(dict.fromkeys(str(n) for n in mk.get("name") or () if n))
    return names or [_text(mk.get("code")) or mk["id"]]


def _cap(text: str) -> str:
    """The text with its first letter in upper case (the rest unchanged, unlike str.capitalize)."""
    return text[:1].upper() + text[1:]


def _quantity_text(quantity: Mapping[str, Any] | None) -> str:
    """A Quantity as the page prints it: ``≥ 30 mL/min``."""
    return quantity_text(quantity, "sign")


def _range_text(value: Mapping[str, Any] | None) -> str:
    if not value:
        return ""
    low, high = value.get("low") or {}, value.get("high") or {}
    if low.get("value") is not None and high.get("value") is not None:
        unit = high.get("unit") or high.get("code") or ""
        if (low.get("unit") or low.get("code") or "") == unit:
            return f"{_num(low['value'])}{DASH}{_num(high['value'])} {unit}".strip()
        return f"{_quantity_text(low)} {DASH} {_quantity_text(high)}"
    if low.get("value") is not None:
        return f"≥ {_quantity_text(low)}"
    if high.get("value") is not None:
        return f"≤ {_quantity_text(high)}"
    return ""


def _value_text(element: Mapping[str, Any]) -> str:
    """The text of an element's value[x]."""
    for key, value in element.items():
        if not key.startswith("value") or key == "value":
            continue
        kind = key[len("value"):]
        if kind in ("String", "Markdown", "Code", "Uri", "Url", "Canonical", "Id", "Date", "DateTime"):
            return str(value)
        if kind in ("Boolean",):
            return "yes" if value else "no"
        if kind in ("Integer", "Decimal", "PositiveInt", "UnsignedInt"):
            return _num(value)
        if kind in ("Quantity", "Duration", "Age", "Count", "Distance"):
            return _quantity_text(value)
        if kind == "Range":
            return _range_text(value)
        if kind in ("CodeableConcept", "Coding", "CodeableReference"):
            return _text(value) if kind != "Coding" else str(value.get("display") or value.get("code") or "")
        if kind == "Base64Binary":
            return ""
    return ""


def _strength_text(strength: Strength) -> str:
    return f"{_num(strength.mg)} mg/{_num(strength.ml)} mL"


def _characteristic_text(characteristic: Mapping[str, Any]) -> str:
    kind = _text(characteristic.get("type"))
    value = _value_text(characteristic)
    if not value or not kind:
        return kind or value
    return f"{kind}: {value}" if characteristic.get("valueCodeableConcept") else f"{kind} {value}"


def _characteristics_text(dosing: Mapping[str, Any]) -> str:
    return "; ".join(filter(None, (_characteristic_text(c) for c in dosing.get("patientCharacteristic") or ())))


def _guideline_label(dosing: Mapping[str, Any]) -> str:
    first = (dosing.get("dosage") or [{}])[0]
    return _characteristics_text(dosing) or _cap(_text(first.get("type"))) or str(dosing.get("id") or "Dosage")


def _dose_text(dosage: Mapping[str, Any]) -> str:
    doses = []
    for dose_rate in dosage.get("doseAndRate") or ():
        if dose_rate.get("doseQuantity"):
            doses.append(_quantity_text(dose_rate["doseQuantity"]))
        elif dose_rate.get("doseRange"):
            doses.append(_range_text(dose_rate["doseRange"]))
    return "; ".join(filter(None, doses))


def _timing_text(timing: Mapping[str, Any] | None) -> str:
    repeat = (timing or {}).get("repeat") or {}
    if not repeat.get("period") or not repeat.get("periodUnit"):
        return _text((timing or {}).get("code"))
    return schedule_words(repeat.get("frequency") or 1, repeat["period"], repeat["periodUnit"], once=True)


def _max_text(dosage: Mapping[str, Any]) -> str:
    texts = []
    for ratio in dosage.get("maxDosePerPeriod") or ():
        numerator, denominator = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        per = UNIT_WORDS.get(denominator.get("code") or "", denominator.get("unit") or "")
        if denominator.get("value") in (None, 1):
            texts.append(f"{_quantity_text(numerator)} per {per}".strip())
        else:
            texts.append(f"{_quantity_text(numerator)} per {_num(denominator['value'])} {per}s")
    return "; ".join(texts)
