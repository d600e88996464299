"""The monograph page model: the FHIR knowledge of one drug turned into plain sections.

Nothing here knows a particular drug. A page is built from one MedicationKnowledge and what it points to
(or what points to its products): ClinicalUseDefinitions, ValueSets, the monitoring PlanDefinition, the
patient-information Composition, the products and packs, and the source DocumentReference (its
metadata only: the page never reads the source text). Every section lists the resources it comes from.
The model holds only text and numbers; the templates turn it into HTML (and escape it).
"""

from __future__ import annotations

from fhirsvc.fhirtypes import concept_text
from fhirsvc.knowledge import Knowledge
from fhirsvc.monograph.blocks import (
    DoseCell,
    DrugEntry,
    Heading,
    ItemList,
    LabelNote,
    Link,
    Page,
    Paragraph,
    Section,
    SourceRef,
    Table,
    Timeline,
    TimelineEntry,
    WeightDoseTable,
    WeightRow,
)
from fhirsvc.monograph.builder import build
from fhirsvc.monograph.sections.dosing import TABLE_WEIGHTS_KG
from fhirsvc.monograph.text import drug_names


def list_drugs(knowledge: Knowledge) -> tuple[DrugEntry, ...]:
    """Every MedicationKnowledge, by name."""
    entries = []
    for mk in knowledge.of_type("MedicationKnowledge"):
        names = drug_names(mk)
        entries.append(DrugEntry(mk["id"], names[0], tuple(names[1:]), concept_text(mk.get("code")) or None,
                                 mk.get("status")))
    return tuple(sorted(entries, key=lambda entry: (entry.name.lower(), entry.id)))


def build_page(knowledge: Knowledge, drug_id: str) -> Page | None:
    """The page of one MedicationKnowledge, or None when the knowledge has no such drug."""
    mk = knowledge.get("MedicationKnowledge", drug_id)
    if mk is None:
        return None
    return build(knowledge, mk)


__all__ = ["TABLE_WEIGHTS_KG", "DoseCell", "DrugEntry", "Heading", "ItemList", "LabelNote", "Link", "Page", "Paragraph",
           "Section", "SourceRef", "Table", "Timeline", "TimelineEntry", "WeightDoseTable", "WeightRow", "build_page",
           "list_drugs"]
