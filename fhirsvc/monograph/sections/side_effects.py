"""Side effects: common, serious and other."""

from __future__ import annotations

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Heading, ItemList, LabelNote, Paragraph
from fhirsvc.monograph.sources import Draft, DrugSources


def side_effects(drug: DrugSources, draft: Draft) -> None:
    serious, common, other = [], [], []
    notes: list[LabelNote] = []
    for cud in drug.cuds:
        if cud.get("type") != "undesirable-effect":
            continue
        effect = cud.get("undesirableEffect") or {}
        text = concept_text((effect.get("symptomConditionEffect") or {}).get("concept"))
        classification = effect.get("classification") or {}
        if any(c.get("code") == "serious" for c in classification.get("coding") or ()):
            serious.append((text, concept_text(classification)))
        elif effect.get("frequencyOfOccurrence"):
            common.append((text, concept_text(effect["frequencyOfOccurrence"])))
        else:
            other.append((text, concept_text(classification)))
        draft.cite(cud)
        notes += drug.label_notes(cud)
    for title, effects in (("Common side effects", common), ("Serious side effects", serious),
                           ("Other side effects", other)):
        if effects:
            draft.add(Heading(title), ItemList(tuple(text for text, _ in effects)))
            draft.add(*(Paragraph(note, label="Frequency" if effects is common else None)
                        for note in dict.fromkeys(note for _, note in effects) if note))
    draft.add(*notes)
