"""The knowledge resources one drug's page is built from, and the draft of a section while it is built."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhirsvc.canonical import EXT_LABEL_DIFFERENCE
from fhirsvc.checks.config import dosing_anchor
from fhirsvc.drugmodel.profile import DrugProfile, Guideline, Strength, profile_of
from fhirsvc.knowledge import Knowledge
from fhirsvc.monograph.blocks import Block, LabelNote, Paragraph, Section, SourceRef, source_ref
from fhirsvc.monograph.clinical_use import (
    cud_title,
    indication_name,
    label_note,
    short_name,
    statement_text,
    statement_topic,
)
from fhirsvc.monograph.text import drug_names, reference_of
from fhirsvc.monograph.timeline import plan_targets, timeline_entries

# The sections of every page, in order: (anchor, title). Dosing sections (one per indication guideline,
# ``dosing-<short name>``) come after "how-it-works".
HEAD_SECTIONS = (("summary", "Summary and uses"), ("how-it-works", "How it works"))


TAIL_SECTIONS = (
    ("kidney-disease", "Kidney disease"),
    ("side-effects", "Side effects"),
    ("interactions", "Interactions"),
    ("live-vaccines", "Live vaccines"),
    ("warnings", "Warnings"),
    ("pregnancy", "Pregnancy"),
    ("breastfeeding", "Breastfeeding"),
    ("seniors", "Seniors"),
    ("children", "Children"),
    ("allergies", "Allergies"),
    ("monitoring", "Monitoring"),
    ("storage", "Storage"),
    ("travel", "Travel"),
    ("self-injection", "Self-injection and supplies"),
    ("source", "Source and label differences"),
)


@dataclass
class Draft:
    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    sources: list[SourceRef] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    def add(self, *blocks: Block | None) -> None:
        self.blocks.extend(block for block in blocks if block is not None)

    def cite(self, *resources: Mapping[str, Any] | SourceRef | None) -> None:
        for resource in resources:
            if resource is None:
                continue
            ref = resource if isinstance(resource, SourceRef) else source_ref(resource)
            if ref not in self.sources:
                self.sources.append(ref)

    def done(self, empty: str) -> Section:
        blocks = self.blocks or [Paragraph(empty)]
        return Section(self.anchor, self.title, tuple(blocks), tuple(self.sources), tuple(self.aliases))


@dataclass(frozen=True)
class Guide:
    """One indication guideline: its indication CUD (if any), dosing guidelines and section anchor."""

    indication: Mapping[str, Any] | None
    guideline: Mapping[str, Any]
    anchor: str
    name: str


class DrugSources:
    """The knowledge resources of one drug a page is built from, found once: its products, clinical use
    definitions, compositions, plans, packs and indication guidelines, and the drug model the checks read."""

    def __init__(self, knowledge: Knowledge, mk: Mapping[str, Any]):
        self.k = knowledge
        self.mk = mk
        self.mk_ref = f"MedicationKnowledge/{mk['id']}"
        self.names = drug_names(mk)
        self.products = self._products()
        self.product_refs = {self.mk_ref} | {f"Medication/{p['id']}" for p in self.products}
        self.cuds = self._cuds()
        self.compositions = self._linked("Composition", lambda r: [s.get("reference") for s in r.get("subject") or ()])
        self.plans = self._linked("PlanDefinition", plan_targets)
        self.packs = [pack for pack in (self.resolve(reference_of(p.get("packagedProduct")))
                                        for p in mk.get("packaging") or ()) if pack is not None]
        self.guides = self._guides()
        # the drug model the checks read: the page's dose arithmetic, strength and guideline kinds come from it
        self.profile: DrugProfile | None = profile_of(knowledge, str(mk["id"]))
        self.strength: Strength | None = self.profile.strength if self.profile else None
        self.model_guidelines = {id(g.source): g for g in self.profile.guidelines} if self.profile else {}

    def model(self, dosing: Mapping[str, Any]) -> Guideline | None:
        """The drug model's reading of a dosingGuideline element."""
        return self.model_guidelines.get(id(dosing))

    def renal(self, dosing: Mapping[str, Any]) -> bool:
        model = self.model(dosing)
        return model is not None and model.renal

    def resolve(self, reference: str | None) -> Mapping[str, Any] | None:
        return self.k.resolve(reference) if reference else None

    def _products(self) -> list[Mapping[str, Any]]:
        found = {}
        for assoc in self.mk.get("associatedMedication") or ():
            product = self.resolve(assoc.get("reference"))
            if product is not None and product.get("resourceType") == "Medication":
                found[product["id"]] = product
        for product in self.k.of_type("Medication"):
            if reference_of(product.get("definition")) == self.mk_ref:
                found[product["id"]] = product
        return list(found.values())

    def _cuds(self) -> list[Mapping[str, Any]]:
        found = {}
        for issue in self.mk.get("clinicalUseIssue") or ():
            cud = self.resolve(issue.get("reference"))
            if cud is not None and cud.get("resourceType") == "ClinicalUseDefinition":
                found[cud["id"]] = cud
        for cud in self.k.of_type("ClinicalUseDefinition"):
            if any(reference_of(subject) in self.product_refs for subject in cud.get("subject") or ()):
                found.setdefault(cud["id"], cud)
        return sorted(found.values(), key=lambda cud: cud["id"])

    def _linked(self, rtype: str, targets: Callable[[Mapping[str, Any]], Iterable[str | None]]
                ) -> list[Mapping[str, Any]]:
        return [res for res in self.k.of_type(rtype) if self.product_refs & set(filter(None, targets(res)))]

    def _guides(self) -> list[Guide]:
        guides: list[Guide] = []
        used: set[str] = {a for a, _ in HEAD_SECTIONS + TAIL_SECTIONS}
        for guideline in self.mk.get("indicationGuideline") or ():
            indication = next((cud for cud in (self.resolve(reference_of(ind.get("reference")))
                                               for ind in guideline.get("indication") or ())
                               if cud is not None and cud.get("resourceType") == "ClinicalUseDefinition"), None)
            dosing_ids = [d.get("id") for d in guideline.get("dosingGuideline") or () if d.get("id")]
            short = short_name(indication["id"], self.mk["id"]) if indication else None
            anchor = f"dosing-{short}" if short else dosing_anchor(dosing_ids[0]) if dosing_ids else "dosing"
            if anchor in used:  # two guidelines for one indication, or a name clash: keep anchors unique
                anchor = next(f"{anchor}-{n}" for n in range(2, 100) if f"{anchor}-{n}" not in used)
            used.add(anchor)
            name = indication_name(indication) if indication else (short or anchor.removeprefix("dosing-"))
            guides.append(Guide(indication, guideline, anchor, name))
        return guides

    def plan_entries(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        """(when, what, plan) for each action of the monitoring plans, in timeline order."""
        return [(entry.when, item, plan) for plan in self.plans for entry in timeline_entries(plan)
                for item in entry.items]

    def label_notes(self, element: Mapping[str, Any], resource: Mapping[str, Any] | None = None) -> list[LabelNote]:
        """The label differences on an element (not inside it) or, for a resource, on its root."""
        owner = resource or element
        return [label_note(ext, cud_title(owner) if owner is element else statement_topic(element),
                            statement_text(element, owner), source_ref(owner))
                for ext in element.get("extension") or () if ext.get("url") == EXT_LABEL_DIFFERENCE]
