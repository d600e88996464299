"""A dosing section per indication guideline (with the weight-based dose table) and the children's section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.fhirtypes import concept_text, number_text
from fhirsvc.monograph.blocks import DoseCell, Heading, ItemList, Link, Paragraph, Table, WeightDoseTable, WeightRow
from fhirsvc.monograph.sources import Draft, DrugSources, Guide
from fhirsvc.monograph.text import (
    NONE,
    capitalized,
    characteristics_text,
    dose_text,
    guideline_label,
    max_text,
    strength_text,
    timing_text,
)

TABLE_WEIGHTS_KG = (5, 10, 15, 20, 30, 40, 50, 60, 70)
ADULT_AGE_YEARS = 18  # "For children": the guidelines for patients younger than this


def guide_section(drug: DrugSources, guide: Guide) -> Draft:
    """The dosing section of one indication guideline: each dosing guideline's doses, the weight-based dose
    table and the instructions for taking the doses."""
    draft = Draft(guide.anchor, f"Dosing: {guide.name}")
    draft.cite(drug.mk, guide.indication)
    instructions: list[str] = []
    for dosing in guide.guideline.get("dosingGuideline") or ():
        draft.add(Heading(guideline_label(dosing)))
        intent = concept_text(dosing.get("treatmentIntent"))
        draft.add(Paragraph(intent, label="Aim") if intent else None)
        rows, texts = [], []
        for group in dosing.get("dosage") or ():
            for dosage in group.get("dosage") or ():
                rows.append((capitalized(concept_text(group.get("type"))) or "Dose", dose_text(dosage) or NONE,
                             timing_text(dosage.get("timing")) or NONE, concept_text(dosage.get("route")) or NONE,
                             max_text(dosage) or NONE))
                if dosage.get("text"):
                    texts.append(dosage["text"])
                if dosage.get("patientInstruction") and dosage["patientInstruction"] not in instructions:
                    instructions.append(dosage["patientInstruction"])
        if rows and any(cell != NONE for row in rows for cell in row[1:]):
            routes = {row[3] for row in rows}
            if len(routes) == 1:  # one route: said once, the table stays narrow enough for a phone
                draft.add(Table(f"Dose: {guideline_label(dosing)}", ("Dosage", "Dose", "How often", "Maximum"),
                                tuple((*row[:3], row[4]) for row in rows)))
                draft.add(Paragraph(routes.pop(), label="Route") if routes != {NONE} else None)
            else:
                draft.add(Table(f"Dose: {guideline_label(dosing)}",
                                ("Dosage", "Dose", "How often", "Route", "Maximum"), tuple(rows)))
        draft.add(*(Paragraph(text) for text in dict.fromkeys(texts)))
        draft.add(_weight_table(drug, dosing))
        draft.add(*drug.label_notes(dosing, drug.mk))
    if instructions:
        draft.add(Heading("Taking the doses"), *(Paragraph(text) for text in instructions))
    return draft


def _weight_table(drug: DrugSources, dosing: Mapping[str, Any]) -> WeightDoseTable | None:
    """Daily doses by body weight for a guideline dosed in mg/kg: the drug model's daily rates
    (``Guideline.weight_rates``) x each weight of the table, and the volume of each with its strength."""
    guide = drug.model(dosing)
    rates = [(capitalized(label), rate) for label, rate in guide.weight_rates] if guide else []
    if not guide or not rates:
        return None
    mg_per_ml = drug.strength.mg_per_ml if drug.strength else None
    rows = tuple(WeightRow(float(kg), tuple(
        DoseCell(kg * rate, None if mg_per_ml is None else round(kg * rate / mg_per_ml, 2))
        for _, rate in rates)) for kg in TABLE_WEIGHTS_KG)
    columns = tuple(f"{label}: {number_text(rate)} mg/kg/day" for label, rate in rates)
    notes = ["Doses are daily totals."]
    split = [timing_text(d.dosage.get("timing")) for d in guide.split_dosages]
    if split:
        notes.append(f"When given {' or '.join(dict.fromkeys(split))}, the total is divided between the "
                     "injections.")
    strength = strength_text(drug.strength) if drug.strength else None
    if strength:
        notes.append(f"Volumes are of the {strength} solution.")
    return WeightDoseTable(f"Daily dose by body weight ({guideline_label(dosing)})", columns,
                           tuple(rate for _, rate in rates), rows, strength, " ".join(notes))


def children(drug: DrugSources, draft: Draft) -> None:
    """Dosing guidelines for patients under 18 (an age range or limit below 18 years)."""
    items: list[str | Link] = []
    for guide in drug.guides:
        for dosing in guide.guideline.get("dosingGuideline") or ():
            model = drug.model(dosing)
            if model is not None and model.below_age(ADULT_AGE_YEARS):
                texts = [d.get("text") for g in dosing.get("dosage") or () for d in g.get("dosage") or ()
                         if d.get("text")]
                summary = f"{guide.name}, {characteristics_text(dosing)}"
                items.append(Link(f"{summary}: {texts[0]}" if texts else summary, f"#{guide.anchor}"))
    if items:
        draft.add(Heading("Dosing for children"), ItemList(tuple(items)))
        draft.cite(drug.mk)
