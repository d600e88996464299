"""The summary (at a glance, the uses, the products and packs) and how the drug works."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Heading, ItemList, Link, Paragraph, Table
from fhirsvc.monograph.clinical_use import DRUG_CHARACTERISTIC_TOPICS, indication_name, topic_of
from fhirsvc.monograph.sources import Draft, DrugSources, Guide
from fhirsvc.monograph.text import capitalized, range_text, strength_text, value_text


def summary(drug: DrugSources, draft: Draft) -> None:
    draft.cite(drug.mk)
    rows = _at_a_glance(drug)
    if rows:
        draft.add(Table("At a glance", ("Feature", "Value"), tuple(rows)))
    _uses(drug, draft)
    products = [concept_text(p.get("code")) for p in drug.products] + [p.get("name") or p.get("description") or ""
                                                                for p in drug.packs]
    if any(products):
        draft.add(Heading("Products and packs"), ItemList(tuple(filter(None, products))))
        draft.cite(*drug.products, *drug.packs)


def _at_a_glance(drug: DrugSources) -> list[tuple[str, ...]]:
    """The summary table's rows: names, form, route, strength, classes and the drug's features that no
    other section shows."""
    mk = drug.mk
    definitional = mk.get("definitional") or {}
    rows: list[tuple[str, ...]] = []
    if len(drug.names) > 1:
        rows.append(("Names", ", ".join(drug.names)))
    if definitional.get("doseForm"):
        rows.append(("Form", concept_text(definitional["doseForm"])))
    routes = [concept_text(route) for route in definitional.get("intendedRoute") or ()]
    if routes:
        rows.append(("Route", "; ".join(routes)))
    if drug.strength:
        rows.append(("Strength", strength_text(drug.strength)))
    for classification in mk.get("medicineClassification") or ():
        values = [concept_text(c) for c in classification.get("classification") or ()]
        codes = [f"{c.get('code')} {c.get('display') or ''}".strip() for cc in classification.get("classification")
                 or () for c in cc.get("coding") or () if not cc.get("text")]
        rows.append((capitalized(concept_text(classification.get("type"))) or "Class", "; ".join(codes or values)))
    for characteristic in definitional.get("drugCharacteristic") or ():
        kind = concept_text(characteristic.get("type"))
        if not topic_of(kind, DRUG_CHARACTERISTIC_TOPICS) and value_text(characteristic):
            rows.append((capitalized(kind) or "Feature", value_text(characteristic)))
    return rows


def _uses(drug: DrugSources, draft: Draft) -> None:
    """The indications, the dosed ones first (in the order of their dosing sections)."""
    guided = [guide.indication["id"] for guide in drug.guides if guide.indication]
    indications = sorted((cud for cud in drug.cuds if cud.get("type") == "indication"),  # dosed ones first
                         key=lambda cud: (cud["id"] not in guided, guided.index(cud["id"]) if cud["id"] in guided
                                          else 0, cud["id"]))
    if indications:
        draft.add(Heading("Uses"))
    by_indication = {guide.indication["id"]: guide for guide in drug.guides if guide.indication}
    for cud in indications:
        _use(drug, draft, cud, by_indication.get(cud["id"]))


def _use(drug: DrugSources, draft: Draft, cud: Mapping[str, Any], guide: Guide | None) -> None:
    """One indication: its aim, duration, other therapy, status and a link to its dosing section."""
    indication = cud.get("indication") or {}
    draft.add(Paragraph(indication_name(cud), label="Use"))
    effect = concept_text((indication.get("intendedEffect") or {}).get("concept"))
    draft.add(Paragraph(effect, label="Aim") if effect else None)
    duration = indication.get("durationString") or range_text(indication.get("durationRange"))
    draft.add(Paragraph(duration, label="Duration") if duration else None)
    for other in indication.get("otherTherapy") or ():
        treatment = concept_text((other.get("treatment") or {}).get("concept"))
        draft.add(Paragraph(f"{concept_text(other.get('relationshipType'))}: {treatment}".strip(": "),
                            label="Other treatment"))
    status = concept_text(cud.get("status"))
    draft.add(Paragraph(status, label="Status") if status else None)
    if guide:
        draft.add(ItemList((Link(f"Dosing: {guide.name}", f"#{guide.anchor}"),)))
    draft.add(*drug.label_notes(cud))
    draft.cite(cud)


def how_it_works(drug: DrugSources, draft: Draft) -> None:
    for characteristic in (drug.mk.get("definitional") or {}).get("drugCharacteristic") or ():
        if topic_of(concept_text(characteristic.get("type")), DRUG_CHARACTERISTIC_TOPICS) == "how-it-works":
            draft.add(Paragraph(value_text(characteristic)), *drug.label_notes(characteristic, drug.mk))
            draft.cite(drug.mk)
    classes = [concept_text(c) for classification in drug.mk.get("medicineClassification") or ()
               for c in classification.get("classification") or () if c.get("text")]
    if classes:
        draft.add(Paragraph("; ".join(classes), label="Drug class"))
        draft.cite(drug.mk)
