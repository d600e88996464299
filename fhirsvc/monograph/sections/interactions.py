"""Interactions, and the live vaccines named by an interaction's value set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Block, Heading, ItemList, Link, Paragraph, Table
from fhirsvc.monograph.clinical_use import concept_value_sets, interactant_text, is_vaccine_set, washout_text
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import reference_of
from fhirsvc.terminology import SYSTEM_NAMES


def interactions(drug: DrugSources, draft: Draft, vaccines: Draft) -> None:
    for cud in drug.cuds:
        if cud.get("type") != "interaction":
            continue
        interaction = cud.get("interaction") or {}
        others = [i for i in interaction.get("interactant") or ()
                  if reference_of(i.get("itemReference")) not in drug.product_refs]
        name = "; ".join(interactant_text(i) for i in others) or "Other medicines"
        value_sets = [vs for vs in (drug.resolve(url) for i in others for url in concept_value_sets(
            i.get("itemCodeableConcept"))) if vs is not None]
        live = [vs for vs in value_sets if is_vaccine_set(vs)]
        blocks: list[Block | None] = [Heading(name)]
        kind = concept_text(interaction.get("type"))
        blocks.append(Paragraph(kind, label="Type") if kind else None)
        effect = concept_text((interaction.get("effect") or {}).get("concept"))
        blocks.append(Paragraph(effect, label="Effect") if effect else None)
        blocks.append(Paragraph(concept_text(interaction.get("incidence")), label="Incidence")
                      if interaction.get("incidence") else None)
        management = [concept_text(m) for m in interaction.get("management") or ()]
        if management:
            blocks.append(ItemList(tuple(management), label="What to do"))
        washout = washout_text(interaction)
        if washout:
            blocks.append(Paragraph(f"at least {washout} after stopping", label="Washout"))
        for vs in value_sets:
            if not is_vaccine_set(vs) and vs.get("title"):
                blocks.append(Paragraph(vs["title"], label="Includes"))
        if live:
            blocks.append(ItemList((Link("The live vaccines", "#live-vaccines"),)))
        blocks += drug.label_notes(cud)
        draft.add(*(block for block in blocks if block is not None))
        draft.cite(cud, *value_sets)
        if live:
            _live_vaccines(drug, vaccines, cud, effect, management, washout, live)


def _live_vaccines(drug: DrugSources, draft: Draft, cud: Mapping[str, Any], effect: str, management: list[str],
                   washout: str | None, value_sets: list[Mapping[str, Any]]) -> None:
    draft.cite(cud, *value_sets)
    if management:
        draft.add(ItemList(tuple(management), label="What to do"))
    if washout:
        draft.add(Paragraph(f"at least {washout} after stopping", label="Washout"))
    draft.add(Paragraph(effect, label="Why") if effect else None)
    for vs in value_sets:
        rows = []
        systems = set()
        for include in (vs.get("compose") or {}).get("include") or ():
            system = include.get("system") or ""
            for concept in include.get("concept") or ():
                systems.add(system)
                others = ", ".join(dict.fromkeys(d["value"] for d in concept.get("designation") or ()
                                                 if d.get("value")))
                rows.append((concept.get("display") or concept.get("code") or "", concept.get("code") or "",
                             others))
        code_column = f"{SYSTEM_NAMES.get(systems.pop(), 'Code')} code" if len(systems) == 1 else "Code"
        draft.add(Table(vs.get("title") or "Live vaccines", ("Vaccine", code_column, "Other names"),
                        tuple(rows)))
    draft.add(*drug.label_notes(cud))
