"""Kidney disease: the renal dosing and the kidney tests of the monitoring plan."""

from __future__ import annotations

from fhirsvc.monograph.blocks import Heading, ItemList, Link, Table
from fhirsvc.monograph.clinical_use import KIDNEY
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import NONE, characteristics_text, dose_text, timing_text


def kidney(drug: DrugSources, draft: Draft) -> None:
    rows = []
    for guide in drug.guides:
        for dosing in guide.guideline.get("dosingGuideline") or ():
            if not drug.renal(dosing):
                continue
            for group in dosing.get("dosage") or ():
                for dosage in group.get("dosage") or ():
                    rows.append((guide.name, characteristics_text(dosing) or NONE,
                                 dose_text(dosage) or "as prescribed", timing_text(dosage.get("timing")) or NONE))
            draft.cite(drug.mk)
    if rows:
        draft.add(Table("Dosing in kidney disease", ("Indication", "When", "Dose", "How often"),
                        tuple(dict.fromkeys(rows))))
        draft.add(ItemList(tuple(Link(f"Dosing: {guide.name}", f"#{guide.anchor}") for guide in drug.guides
                                 if any(drug.renal(d) for d in guide.guideline.get("dosingGuideline") or ()))))
    checks = [entry for entry in drug.plan_entries() if KIDNEY.search(entry[1])]
    if checks:
        draft.add(Heading("Kidney tests"), ItemList(tuple(f"{when}: {what}" for when, what, _ in checks)),
                  ItemList((Link("Monitoring schedule", "#monitoring"),)))
        draft.cite(*(plan for _, _, plan in checks))
