"""The patient information placed by topic, and the source documents and label differences."""

from __future__ import annotations

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Heading, Paragraph, Table
from fhirsvc.monograph.clinical_use import PATIENT_TOPICS, all_label_notes, topic_of
from fhirsvc.monograph.markup import composition_sections, xhtml_blocks
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import capitalized, reference_display, reference_of


def patient_information(drug: DrugSources, drafts: dict[str, Draft]) -> None:
    for composition in drug.compositions:
        for section in composition_sections(composition.get("section") or ()):
            anchor = topic_of(section.get("title") or "", PATIENT_TOPICS) or "summary"
            blocks = xhtml_blocks(((section.get("text") or {}).get("div")) or "")
            title = section.get("title") or ""
            same = title.lower() == drafts[anchor].title.lower()
            blocks.insert(0, Heading("Patient information" if same or not title else title))
            drafts[anchor].add(*blocks)
            drafts[anchor].cite(composition)


def source(drug: DrugSources, draft: Draft) -> None:
    for monograph in drug.mk.get("monograph") or ():
        document = drug.resolve(reference_of(monograph.get("source")))
        if document is None or document.get("resourceType") != "DocumentReference":
            continue
        attachments = [c.get("attachment") or {} for c in document.get("content") or ()]
        rows = [("Document", "; ".join(a["title"] for a in attachments if a.get("title"))
                 or concept_text(document.get("type")))]
        if monograph.get("type"):
            rows.append(("Kind", concept_text(monograph["type"])))
        authors = [reference_display(a) for a in document.get("author") or ()]
        if any(authors):
            rows.append(("Authors", "; ".join(filter(None, authors))))
        for attester in document.get("attester") or ():
            what = capitalized(concept_text(attester.get("mode")) or "attested")
            who = reference_display(attester.get("party"))
            rows.append((what, " by ".join(filter(None, [attester.get("time"), who]))))
        if document.get("description"):
            rows.append(("Description", document["description"]))
        if document.get("date"):
            rows.append(("Recorded", document["date"][:10]))
        draft.add(Table("Source document", ("Field", "Value"), tuple(rows)))
        draft.cite(document)
    for composition in drug.compositions:
        writers = "; ".join(filter(None, (reference_display(a) for a in composition.get("author") or ())))
        text = ", ".join(filter(None, [composition.get("title"), writers and f"by {writers}",
                                       composition.get("date")]))
        draft.add(Paragraph(text, label="Patient information"))
        draft.cite(composition)
    draft.add(Paragraph(drug.k.version, label="Knowledge version"))
    notes = [note for resource in [drug.mk, *drug.cuds, *drug.products, *drug.plans, *drug.compositions,
                                   *drug.packs] for note in all_label_notes(resource, drug.mk_ref)]
    if notes:
        draft.add(Heading("Where the current label differs"), *notes)
        draft.cite(*(note.source for note in notes))
