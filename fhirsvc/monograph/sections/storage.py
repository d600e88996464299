"""Storage and travel, and self-injection and supplies."""

from __future__ import annotations

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Heading, ItemList, Paragraph, Table
from fhirsvc.monograph.clinical_use import TRAVEL, source_sections
from fhirsvc.monograph.markup import markdown_blocks, money_text
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import capitalized, signed_quantity_text, value_text


def storage(drug: DrugSources, storage: Draft, travel: Draft) -> None:
    for guideline in drug.mk.get("storageGuideline") or ():
        texts = [n.get("text") or "" for n in guideline.get("note") or ()] + [
            concept_text(s.get("type")) + " " + value_text(s) for s in guideline.get("environmentalSetting") or ()]
        is_travel = any(TRAVEL.search(text) for text in texts + source_sections(guideline))
        draft = travel if is_travel else storage
        rows = tuple((capitalized(concept_text(s.get("type"))), value_text(s))
                     for s in guideline.get("environmentalSetting") or ())
        if rows:
            draft.add(Table("When travelling" if is_travel else "Storage conditions", ("Condition", "Requirement"),
                            rows))
        notes = tuple(n.get("text") for n in guideline.get("note") or () if n.get("text"))
        if notes:
            draft.add(ItemList(notes))
        if guideline.get("stabilityDuration"):
            draft.add(Paragraph(signed_quantity_text(guideline["stabilityDuration"]), label="Stable for"))
        draft.cite(drug.mk)


def self_injection(drug: DrugSources, draft: Draft) -> None:
    instruction = drug.mk.get("preparationInstruction")
    if instruction:
        draft.add(Heading("Preparation and injection"), *markdown_blocks(instruction))
        draft.cite(drug.mk)
    costs = [concept_text(c.get("costCodeableConcept")) or money_text(c.get("costMoney")) for c in drug.mk.get("cost")
             or ()]
    if any(costs):
        draft.add(Heading("Costs"), ItemList(tuple(filter(None, costs))))
        draft.cite(drug.mk)
