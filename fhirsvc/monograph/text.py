"""How the page says FHIR data types in words: concepts, quantities, ranges, timings, doses, maxima, strengths,
patient characteristics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.drugmodel.profile import Strength
from fhirsvc.fhirtypes import UNIT_WORDS, concept_text, number_text, quantity_text, schedule_words

DASH = "\u2013"  # en dash, for ranges


NONE = "\u2013"  # a table cell with nothing to say


def reference_of(value: Mapping[str, Any] | None) -> str | None:
    if not value:
        return None
    if "reference" in value and isinstance(value["reference"], Mapping):  # CodeableReference
        return value["reference"].get("reference")
    return value.get("reference")


def reference_display(reference: Mapping[str, Any] | None) -> str:
    return str((reference or {}).get("display") or (reference or {}).get("reference") or "")


def drug_names(mk: Mapping[str, Any]) -> list[str]:
    names = list(dict.fromkeys(str(n) for n in mk.get("name") or () if n))
    return names or [concept_text(mk.get("code")) or mk["id"]]


def capitalized(text: str) -> str:
    """The text with its first letter in upper case (the rest unchanged, unlike str.capitalize)."""
    return text[:1].upper() + text[1:]


def signed_quantity_text(quantity: Mapping[str, Any] | None) -> str:
    """A Quantity as the page prints it: ``≥ 30 mL/min``."""
    return quantity_text(quantity, "sign")


def range_text(value: Mapping[str, Any] | None) -> str:
    if not value:
        return ""
    low, high = value.get("low") or {}, value.get("high") or {}
    if low.get("value") is not None and high.get("value") is not None:
        unit = high.get("unit") or high.get("code") or ""
        if (low.get("unit") or low.get("code") or "") == unit:
            return f"{number_text(low['value'])}{DASH}{number_text(high['value'])} {unit}".strip()
        return f"{signed_quantity_text(low)} {DASH} {signed_quantity_text(high)}"
    if low.get("value") is not None:
        return f"≥ {signed_quantity_text(low)}"
    if high.get("value") is not None:
        return f"≤ {signed_quantity_text(high)}"
    return ""


def value_text(element: Mapping[str, Any]) -> str:
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
            return number_text(value)
        if kind in ("Quantity", "Duration", "Age", "Count", "Distance"):
            return signed_quantity_text(value)
        if kind == "Range":
            return range_text(value)
        if kind in ("CodeableConcept", "Coding", "CodeableReference"):
            return concept_text(value) if kind != "Coding" else str(value.get("display") or value.get("code") or "")
        if kind == "Base64Binary":
            return ""
    return ""


def strength_text(strength: Strength) -> str:
    return f"{number_text(strength.mg)} mg/{number_text(strength.ml)} mL"


def _characteristic_text(characteristic: Mapping[str, Any]) -> str:
    kind = concept_text(characteristic.get("type"))
    value = value_text(characteristic)
    if not value or not kind:
        return kind or value
    return f"{kind}: {value}" if characteristic.get("valueCodeableConcept") else f"{kind} {value}"


def characteristics_text(dosing: Mapping[str, Any]) -> str:
    return "; ".join(filter(None, (_characteristic_text(c) for c in dosing.get("patientCharacteristic") or ())))


def guideline_label(dosing: Mapping[str, Any]) -> str:
    first = (dosing.get("dosage") or [{}])[0]
    return (characteristics_text(dosing) or capitalized(concept_text(first.get("type")))
            or str(dosing.get("id") or "Dosage"))


def dose_text(dosage: Mapping[str, Any]) -> str:
    doses = []
    for dose_rate in dosage.get("doseAndRate") or ():
        if dose_rate.get("doseQuantity"):
            doses.append(signed_quantity_text(dose_rate["doseQuantity"]))
        elif dose_rate.get("doseRange"):
            doses.append(range_text(dose_rate["doseRange"]))
    return "; ".join(filter(None, doses))


def timing_text(timing: Mapping[str, Any] | None) -> str:
    repeat = (timing or {}).get("repeat") or {}
    if not repeat.get("period") or not repeat.get("periodUnit"):
        return concept_text((timing or {}).get("code"))
    return schedule_words(repeat.get("frequency") or 1, repeat["period"], repeat["periodUnit"], once=True)


def max_text(dosage: Mapping[str, Any]) -> str:
    texts = []
    for ratio in dosage.get("maxDosePerPeriod") or ():
        numerator, denominator = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        per = UNIT_WORDS.get(denominator.get("code") or "", denominator.get("unit") or "")
        if denominator.get("value") in (None, 1):
            texts.append(f"{signed_quantity_text(numerator)} per {per}".strip())
        else:
            texts.append(f"{signed_quantity_text(numerator)} per {number_text(denominator['value'])} {per}s")
    return "; ".join(texts)
