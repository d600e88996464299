"""Monitoring: the plans' timelines, the suggested orders and the monitoring programs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.monograph.blocks import Heading, ItemList, Paragraph, Timeline
from fhirsvc.monograph.sources import Draft, DrugSources
from fhirsvc.monograph.text import _text
from fhirsvc.monograph.timeline import _actions, _timeline


def monitoring(drug: DrugSources, draft: Draft) -> None:
    for plan in drug.plans:
        entries = _timeline(plan)
        if entries:
            draft.add(Timeline(plan.get("title") or "Monitoring schedule", tuple(entries)))
        draft.cite(plan)
        if plan.get("description"):
            draft.add(Paragraph(plan["description"]))
        orders: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        for action in _actions(plan):
            definition = drug.resolve(action.get("definitionCanonical"))
            if definition is not None:
                uses = orders.setdefault(definition["id"], (definition, []))[1]
                uses.append(action.get("title") or _text(action.get("code")))
        for definition, uses in orders.values():
            order = definition.get("title") or _text(definition.get("code"))
            draft.add(Paragraph(f"{order}, for: {'; '.join(filter(None, uses))}", label="Suggested order"))
            draft.cite(definition)
    programs = [p.get("name") or _text(p.get("type")) for p in drug.mk.get("monitoringProgram") or ()]
    if programs:
        draft.add(Heading("Monitoring programs"), ItemList(tuple(filter(None, programs))))
        draft.cite(drug.mk)
