"""Warnings and contraindications, each in its topic's section, and the product's allergy facts."""

from __future__ import annotations

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Heading, Paragraph
from fhirsvc.monograph.clinical_use import (
    CUD_TOPICS,
    DRUG_CHARACTERISTIC_TOPICS,
    cud_body,
    cud_title,
    cud_topic_text,
    topic_of,
)
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import value_text


def topic_cuds(drug: DrugSources, drafts: dict[str, Draft]) -> None:
    """Warnings and contraindications, each in its topic's section (else "warnings")."""
    for cud in drug.cuds:
        if cud.get("type") not in ("warning", "contraindication"):
            continue
        anchor = topic_of(cud_topic_text(cud), CUD_TOPICS) or "warnings"
        draft = drafts[anchor]
        draft.add(Heading(cud_title(cud)), *cud_body(cud), *drug.label_notes(cud))
        draft.cite(cud)


def drug_characteristics(drug: DrugSources, drafts: dict[str, Draft]) -> None:
    for characteristic in (drug.mk.get("definitional") or {}).get("drugCharacteristic") or ():
        kind = concept_text(characteristic.get("type"))
        if topic_of(kind, DRUG_CHARACTERISTIC_TOPICS) == "allergies":
            drafts["allergies"].add(Heading(f"Product: {kind}"), Paragraph(value_text(characteristic)),
                                    *drug.label_notes(characteristic, drug.mk))
            drafts["allergies"].cite(drug.mk)
