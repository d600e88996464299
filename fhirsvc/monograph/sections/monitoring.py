"""Monitoring: the plans' timelines, the suggested orders and the monitoring programs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Heading, ItemList, Paragraph, Timeline
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.timeline import plan_actions, timeline_entries


def monitoring(drug: DrugSources, draft: Draft) -> None:
    for plan in drug.plans:
        entries = timeline_entries(plan)
        if entries:
            draft.add(Timeline(plan.get("title") or "Monitoring schedule", tuple(entries)))
        draft.cite(plan)
        if plan.get("description"):
            draft.add(Paragraph(plan["description"]))
        orders: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        for action in plan_actions(plan):
            definition = drug.resolve(action.get("definitionCanonical"))
            if definition is not None:
                uses = orders.setdefault(definition["id"], (definition, []))[1]
                uses.append(action.get("title") or concept_text(action.get("code")))
        for definition, uses in orders.values():
            order = definition.get("title") or concept_text(definition.get("code"))
            draft.add(Paragraph(f"{order}, for: {'; '.join(filter(None, uses))}", label="Suggested order"))
            draft.cite(definition)
    programs = [p.get("name") or concept_text(p.get("type")) for p in drug.mk.get("monitoringProgram") or ()]
    if programs:
        draft.add(Heading("Monitoring programs"), ItemList(tuple(filter(None, programs))))
        draft.cite(drug.mk)
