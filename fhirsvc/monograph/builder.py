"""Builds the page of one drug: each section from the knowledge and from the drug model (``fhirsvc.drugmodel``)
that the checks read too (dose arithmetic, strength, renal and children's guidelines).

``sources.py`` finds the drug's resources once; each module of ``sections/`` owns its sections; this module puts
them in the page's order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.checks.config import dosing_anchor
from fhirsvc.fhirtypes import concept_text
from fhirsvc.knowledge import Knowledge
from fhirsvc.monograph.blocks import Page
from fhirsvc.monograph.sections import (
    dosing,
    interactions,
    kidney,
    monitoring,
    side_effects,
    source,
    storage,
    summary,
    warnings,
)
from fhirsvc.monograph.sources import HEAD_SECTIONS, TAIL_SECTIONS, Draft, DrugSources

# What a section that the knowledge says nothing about reads (others: EMPTY_SECTION).
EMPTY = {
    "live-vaccines": "The knowledge records no interaction with live vaccines.",
    "kidney-disease": "The knowledge records nothing about kidney disease.",
    "source": "The knowledge names no source document.",
}
EMPTY_SECTION = "The knowledge records nothing for this section."


def build(knowledge: Knowledge, mk: Mapping[str, Any]) -> Page:
    """The page of a MedicationKnowledge: every section, in the page's order."""
    drug = DrugSources(knowledge, mk)
    drafts = {anchor: Draft(anchor, title) for anchor, title in HEAD_SECTIONS + TAIL_SECTIONS}
    summary.summary(drug, drafts["summary"])
    summary.how_it_works(drug, drafts["how-it-works"])
    dosed = [dosing.guide_section(drug, guide) for guide in drug.guides]
    side_effects.side_effects(drug, drafts["side-effects"])
    interactions.interactions(drug, drafts["interactions"], drafts["live-vaccines"])
    monitoring.monitoring(drug, drafts["monitoring"])  # the schedule first, then the warnings about tests
    warnings.topic_cuds(drug, drafts)
    kidney.kidney(drug, drafts["kidney-disease"])  # the warning first, then the dosing and the tests
    dosing.children(drug, drafts["children"])
    warnings.drug_characteristics(drug, drafts)
    storage.storage(drug, drafts["storage"], drafts["travel"])
    storage.self_injection(drug, drafts["self-injection"])
    source.patient_information(drug, drafts)
    source.source(drug, drafts["source"])
    _aliases(drug, drafts, dosed)
    ordered = [drafts["summary"], drafts["how-it-works"], *dosed, *(drafts[anchor] for anchor, _ in TAIL_SECTIONS)]
    for draft in ordered:
        if not draft.blocks:  # "nothing recorded" is a statement about the drug's knowledge
            draft.cite(mk)
    sections = tuple(d.done(EMPTY.get(d.anchor, EMPTY_SECTION)) for d in ordered)
    title = drug.names[0] + (f" ({', '.join(drug.names[1:])})" if len(drug.names) > 1 else "")
    return Page(mk["id"], title, concept_text(mk.get("code")) or None, mk.get("language") or "en", sections,
                knowledge.version)


def _aliases(drug: DrugSources, drafts: dict[str, Draft], dosed: list[Draft]) -> None:
    """The aliases: anchors the CDS cards build from dosing guideline ids, where they differ."""
    taken = set(drafts) | {d.anchor for d in dosed}
    for draft, guide in zip(dosed, drug.guides, strict=True):
        for dosing_guideline in guide.guideline.get("dosingGuideline") or ():
            alias = dosing_anchor(dosing_guideline.get("id"))
            if alias not in taken:
                draft.aliases.append(alias)
                taken.add(alias)
