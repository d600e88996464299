"""Warnings and contraindications, each in its topic's section, and the product's allergy facts."""

from __future__ import annotations

from fhirsvc.monograph.blocks import Heading, Paragraph
from fhirsvc.monograph.clinical_use import (
    CUD_TOPICS,
    DRUG_CHARACTERISTIC_TOPICS,
    _cud_body,
    _cud_title,
    _cud_topic_text,
    _topic,
)
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import _text, _value_text


def topic_cuds(drug: DrugSources, drafts: dict[str, Draft]) -> None:
    """Warnings and contraindications, each in its topic's section (else "warnings")."""
    for cud in drug.cuds:
        if cud.get("type") not in ("warning", "contraindication"):
            continue
        anchor = _topic(_cud_topic_text(cud), CUD_TOPICS) or "warnings"
        draft = drafts[anchor]
        draft.add(Heading(_cud_title(cud)), *_cud_body(cud), *drug.label_notes(cud))
        draft.cite(cud)


def drug_characteristics(drug: DrugSources, drafts: dict[str, Draft]) -> None:
    for characteristic in (drug.mk.get("definitional") or {}).get("drugCharacteristic") or ():
        kind = _text(characteristic.get("type"))
        if _topic(kind, DRUG_CHARACTERISTIC_TOPICS) == "allergies":
            drafts["allergies"].add(Heading(f"Product: {kind}"), Paragraph(_value_text(characteristic)),
                                    *drug.label_notes(characteristic, drug.mk))
            drafts["allergies"].cite(drug.mk)
