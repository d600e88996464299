"""Builds the page of one drug: each section from the knowledge and from the drug model (``fhirsvc.drugmodel``)
that the checks read too (dose arithmetic, strength, renal and children's guidelines)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhirsvc.canonical import EXT_LABEL_DIFFERENCE
from fhirsvc.checks.config import dosing_anchor
from fhirsvc.drugmodel.profile import DrugProfile, Guideline, Strength, profile_of
from fhirsvc.knowledge import Knowledge
from fhirsvc.monograph.blocks import (
    Block,
    DoseCell,
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
    WeightDoseTable,
    WeightRow,
    _ref,
)
from fhirsvc.monograph.clinical_use import (
    CUD_TOPICS,
    DRUG_CHARACTERISTIC_TOPICS,
    KIDNEY,
    PATIENT_TOPICS,
    TRAVEL,
    _all_label_notes,
    _cud_body,
    _cud_title,
    _cud_topic_text,
    _indication_name,
    _interactant_text,
    _is_vaccine_set,
    _label_note,
    _sections,
    _short_name,
    _statement,
    _statement_topic,
    _topic,
    _value_sets,
    _washout,
)
from fhirsvc.monograph.markup import _composition_sections, _markdown_blocks, _money_text, _xhtml_blocks
from fhirsvc.monograph.text import (
    NONE,
    _cap,
    _characteristics_text,
    _display,
    _dose_text,
    _guideline_label,
    _max_text,
    _names,
    _num,
    _quantity_text,
    _range_text,
    _reference,
    _strength_text,
    _text,
    _timing_text,
    _value_text,
)
from fhirsvc.monograph.timeline import _actions, _plan_targets, _timeline
from fhirsvc.terminology import SYSTEM_NAMES

TABLE_WEIGHTS_KG = (5, 10, 15, 20, 30, 40, 50, 60, 70)


ADULT_AGE_YEARS = 18  # "For children": the guidelines for patients younger than this


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
class _Draft:
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
            ref = resource if isinstance(resource, SourceRef) else _ref(resource)
            if ref not in self.sources:
                self.sources.append(ref)

    def done(self, empty: str) -> Section:
        blocks = self.blocks or [Paragraph(empty)]
        return Section(self.anchor, self.title, tuple(blocks), tuple(self.sources), tuple(self.aliases))


@dataclass(frozen=True)
class _Guide:
    """One indication guideline: its indication CUD (if any), dosing guidelines and section anchor."""

    indication: Mapping[str, Any] | None
    guideline: Mapping[str, Any]
    anchor: str
    name: str


class _Builder:
    def __init__(self, knowledge: Knowledge, mk: Mapping[str, Any]):
        self.k = knowledge
        self.mk = mk
        self.mk_ref = f"MedicationKnowledge/{mk['id']}"
        self.names = _names(mk)
        self.products = self._products()
        self.product_refs = {self.mk_ref} | {f"Medication/{p['id']}" for p in self.products}
        self.cuds = self._cuds()
        self.compositions = self._linked("Composition", lambda r: [s.get("reference") for s in r.get("subject") or ()])
        self.plans = self._linked("PlanDefinition", _plan_targets)
        self.packs = [pack for pack in (self._resolve(_reference(p.get("packagedProduct")))
                                        for p in mk.get("packaging") or ()) if pack is not None]
        self.guides = self._guides()
        # the drug model the checks read: the page's dose arithmetic, strength and guideline kinds come from it
        self.profile: DrugProfile | None = profile_of(knowledge, str(mk["id"]))
        self.strength: Strength | None = self.profile.strength if self.profile else None
        self.model_guidelines = {id(g.source): g for g in self.profile.guidelines} if self.profile else {}

    def _model(self, dosing: Mapping[str, Any]) -> Guideline | None:
        """The drug model's reading of a dosingGuideline element."""
        return self.model_guidelines.get(id(dosing))

    def _renal(self, dosing: Mapping[str, Any]) -> bool:
        model = self._model(dosing)
        return model is not None and model.renal

    # Related resources

    def _resolve(self, reference: str | None) -> Mapping[str, Any] | None:
        return self.k.resolve(reference) if reference else None

    def _products(self) -> list[Mapping[str, Any]]:
        found = {}
        for assoc in self.mk.get("associatedMedication") or ():
            product = self._resolve(assoc.get("reference"))
            if product is not None and product.get("resourceType") == "Medication":
                found[product["id"]] = product
        for product in self.k.of_type("Medication"):
            if _reference(product.get("definition")) == self.mk_ref:
                found[product["id"]] = product
        return list(found.values())

    def _cuds(self) -> list[Mapping[str, Any]]:
        found = {}
        for issue in self.mk.get("clinicalUseIssue") or ():
            cud = self._resolve(issue.get("reference"))
            if cud is not None and cud.get("resourceType") == "ClinicalUseDefinition":
                found[cud["id"]] = cud
        for cud in self.k.of_type("ClinicalUseDefinition"):
            if any(_reference(subject) in self.product_refs for subject in cud.get("subject") or ()):
                found.setdefault(cud["id"], cud)
        return sorted(found.values(), key=lambda cud: cud["id"])

    def _linked(self, rtype: str, targets) -> list[Mapping[str, Any]]:
        return [res for res in self.k.of_type(rtype) if self.product_refs & set(filter(None, targets(res)))]

    def _guides(self) -> list[_Guide]:
        guides: list[_Guide] = []
        used: set[str] = {a for a, _ in HEAD_SECTIONS + TAIL_SECTIONS}
        for guideline in self.mk.get("indicationGuideline") or ():
            indication = next((cud for cud in (self._resolve(_reference(ind.get("reference")))
                                               for ind in guideline.get("indication") or ())
                               if cud is not None and cud.get("resourceType") == "ClinicalUseDefinition"), None)
            dosing_ids = [d.get("id") for d in guideline.get("dosingGuideline") or () if d.get("id")]
            short = _short_name(indication["id"], self.mk["id"]) if indication else None
            anchor = f"dosing-{short}" if short else dosing_anchor(dosing_ids[0]) if dosing_ids else "dosing"
            if anchor in used:  # two guidelines for one indication, or a name clash: keep anchors unique
                anchor = next(f"{anchor}-{n}" for n in range(2, 100) if f"{anchor}-{n}" not in used)
            used.add(anchor)
            name = _indication_name(indication) if indication else (short or anchor.removeprefix("dosing-"))
            guides.append(_Guide(indication, guideline, anchor, name))
        return guides

    # The page

    def page(self) -> Page:
        drafts = {anchor: _Draft(anchor, title) for anchor, title in HEAD_SECTIONS + TAIL_SECTIONS}
        self._summary(drafts["summary"])
        self._how_it_works(drafts["how-it-works"])
        dosing = [self._dosing(guide) for guide in self.guides]
        self._side_effects(drafts["side-effects"])
        self._interactions(drafts["interactions"], drafts["live-vaccines"])
        self._monitoring(drafts["monitoring"])  # the schedule first, then the warnings about tests
        self._topic_cuds(drafts)
        self._kidney(drafts["kidney-disease"])  # the warning first, then the dosing and the tests
        self._children(drafts["children"])
        self._drug_characteristics(drafts)
        self._storage(drafts["storage"], drafts["travel"])
        self._self_injection(drafts["self-injection"])
        self._patient_information(drafts)
        self._source(drafts["source"])
        # The aliases: anchors the CDS cards build from dosing guideline ids, where they differ.
        taken = set(drafts) | {d.anchor for d in dosing}
        for draft, guide in zip(dosing, self.guides, strict=True):
            for dosing_guideline in guide.guideline.get("dosingGuideline") or ():
                alias = dosing_anchor(dosing_guideline.get("id"))
                if alias not in taken:
                    draft.aliases.append(alias)
                    taken.add(alias)
        empty = {
            "live-vaccines": "The knowledge records no interaction with live vaccines.",
            "kidney-disease": "The knowledge records nothing about kidney disease.",
            "source": "The knowledge names no source document.",
        }
        ordered = [drafts["summary"], drafts["how-it-works"], *dosing,
                   *(drafts[anchor] for anchor, _ in TAIL_SECTIONS)]
        for draft in ordered:
            if not draft.blocks:  # "nothing recorded" is a statement about the drug's knowledge
                draft.cite(self.mk)
        sections = tuple(d.done(empty.get(d.anchor, "The knowledge records nothing for this section."))
                         for d in ordered)
        title = self.names[0] + (f" ({', '.join(self.names[1:])})" if len(self.names) > 1 else "")
        return Page(self.mk["id"], title, _text(self.mk.get("code")) or None, self.mk.get("language") or "en",
                    sections, self.k.version)

    def _summary(self, draft: _Draft) -> None:
        draft.cite(self.mk)
        rows = self._at_a_glance()
        if rows:
            draft.add(Table("At a glance", ("Feature", "Value"), tuple(rows)))
        self._uses(draft)
        products = [_text(p.get("code")) for p in self.products] + [p.get("name") or p.get("description") or ""
                                                                    for p in self.packs]
        if any(products):
            draft.add(Heading("Products and packs"), ItemList(tuple(filter(None, products))))
            draft.cite(*self.products, *self.packs)

    def _at_a_glance(self) -> list[tuple[str, ...]]:
        """The summary table's rows: names, form, route, strength, classes and the drug's features that no
        other section shows."""
        mk = self.mk
        definitional = mk.get("definitional") or {}
        rows: list[tuple[str, ...]] = []
        if len(self.names) > 1:
            rows.append(("Names", ", ".join(self.names)))
        if definitional.get("doseForm"):
            rows.append(("Form", _text(definitional["doseForm"])))
        routes = [_text(route) for route in definitional.get("intendedRoute") or ()]
        if routes:
            rows.append(("Route", "; ".join(routes)))
        if self.strength:
            rows.append(("Strength", _strength_text(self.strength)))
        for classification in mk.get("medicineClassification") or ():
            values = [_text(c) for c in classification.get("classification") or ()]
            codes = [f"{c.get('code')} {c.get('display') or ''}".strip() for cc in classification.get("classification")
                     or () for c in cc.get("coding") or () if not cc.get("text")]
            rows.append((_cap(_text(classification.get("type"))) or "Class", "; ".join(codes or values)))
        for characteristic in definitional.get("drugCharacteristic") or ():
            kind = _text(characteristic.get("type"))
            if not _topic(kind, DRUG_CHARACTERISTIC_TOPICS) and _value_text(characteristic):
                rows.append((_cap(kind) or "Feature", _value_text(characteristic)))
        return rows

    def _uses(self, draft: _Draft) -> None:
        """The indications, the dosed ones first (in the order of their dosing sections)."""
        guided = [guide.indication["id"] for guide in self.guides if guide.indication]
        indications = sorted((cud for cud in self.cuds if cud.get("type") == "indication"),  # dosed ones first
                             key=lambda cud: (cud["id"] not in guided, guided.index(cud["id"]) if cud["id"] in guided
                                              else 0, cud["id"]))
        if indications:
            draft.add(Heading("Uses"))
        by_indication = {guide.indication["id"]: guide for guide in self.guides if guide.indication}
        for cud in indications:
            self._use(draft, cud, by_indication.get(cud["id"]))

    def _use(self, draft: _Draft, cud: Mapping[str, Any], guide: _Guide | None) -> None:
        """One indication: its aim, duration, other therapy, status and a link to its dosing section."""
        indication = cud.get("indication") or {}
        draft.add(Paragraph(_indication_name(cud), label="Use"))
        effect = _text((indication.get("intendedEffect") or {}).get("concept"))
        draft.add(Paragraph(effect, label="Aim") if effect else None)
        duration = indication.get("durationString") or _range_text(indication.get("durationRange"))
        draft.add(Paragraph(duration, label="Duration") if duration else None)
        for other in indication.get("otherTherapy") or ():
            treatment = _text((other.get("treatment") or {}).get("concept"))
            draft.add(Paragraph(f"{_text(other.get('relationshipType'))}: {treatment}".strip(": "),
                                label="Other treatment"))
        status = _text(cud.get("status"))
        draft.add(Paragraph(status, label="Status") if status else None)
        if guide:
            draft.add(ItemList((Link(f"Dosing: {guide.name}", f"#{guide.anchor}"),)))
        draft.add(*self._label_notes(cud))
        draft.cite(cud)

    def _how_it_works(self, draft: _Draft) -> None:
        for characteristic in (self.mk.get("definitional") or {}).get("drugCharacteristic") or ():
            if _topic(_text(characteristic.get("type")), DRUG_CHARACTERISTIC_TOPICS) == "how-it-works":
                draft.add(Paragraph(_value_text(characteristic)), *self._label_notes(characteristic, self.mk))
                draft.cite(self.mk)
        classes = [_text(c) for classification in self.mk.get("medicineClassification") or ()
                   for c in classification.get("classification") or () if c.get("text")]
        if classes:
            draft.add(Paragraph("; ".join(classes), label="Drug class"))
            draft.cite(self.mk)

    def _dosing(self, guide: _Guide) -> _Draft:
        draft = _Draft(guide.anchor, f"Dosing: {guide.name}")
        draft.cite(self.mk, guide.indication)
        instructions: list[str] = []
        for dosing in guide.guideline.get("dosingGuideline") or ():
            draft.add(Heading(_guideline_label(dosing)))
            intent = _text(dosing.get("treatmentIntent"))
            draft.add(Paragraph(intent, label="Aim") if intent else None)
            rows, texts = [], []
            for group in dosing.get("dosage") or ():
                for dosage in group.get("dosage") or ():
                    rows.append((_cap(_text(group.get("type"))) or "Dose", _dose_text(dosage) or NONE,
                                 _timing_text(dosage.get("timing")) or NONE, _text(dosage.get("route")) or NONE,
                                 _max_text(dosage) or NONE))
                    if dosage.get("text"):
                        texts.append(dosage["text"])
                    if dosage.get("patientInstruction") and dosage["patientInstruction"] not in instructions:
                        instructions.append(dosage["patientInstruction"])
            if rows and any(cell != NONE for row in rows for cell in row[1:]):
                routes = {row[3] for row in rows}
                if len(routes) == 1:  # one route: said once, the table stays narrow enough for a phone
                    draft.add(Table(f"Dose: {_guideline_label(dosing)}", ("Dosage", "Dose", "How often", "Maximum"),
                                    tuple((*row[:3], row[4]) for row in rows)))
                    draft.add(Paragraph(routes.pop(), label="Route") if routes != {NONE} else None)
                else:
                    draft.add(Table(f"Dose: {_guideline_label(dosing)}",
                                    ("Dosage", "Dose", "How often", "Route", "Maximum"), tuple(rows)))
            draft.add(*(Paragraph(text) for text in dict.fromkeys(texts)))
            draft.add(self._weight_table(dosing))
            draft.add(*self._label_notes(dosing, self.mk))
        if instructions:
            draft.add(Heading("Taking the doses"), *(Paragraph(text) for text in instructions))
        return draft

    def _weight_table(self, dosing: Mapping[str, Any]) -> WeightDoseTable | None:
        """Daily doses by body weight for a guideline dosed in mg/kg: the drug model's daily rates
        (``Guideline.weight_rates``) x each weight of the table, and the volume of each with its strength."""
        guide = self._model(dosing)
        rates = [(_cap(label), rate) for label, rate in guide.weight_rates] if guide else []
        if not guide or not rates:
            return None
        mg_per_ml = self.strength.mg_per_ml if self.strength else None
        rows = tuple(WeightRow(float(kg), tuple(
            DoseCell(kg * rate, None if mg_per_ml is None else round(kg * rate / mg_per_ml, 2))
            for _, rate in rates)) for kg in TABLE_WEIGHTS_KG)
        columns = tuple(f"{label}: {_num(rate)} mg/kg/day" for label, rate in rates)
        notes = ["Doses are daily totals."]
        split = [_timing_text(d.dosage.get("timing")) for d in guide.split_dosages]
        if split:
            notes.append(f"When given {' or '.join(dict.fromkeys(split))}, the total is divided between the "
                         "injections.")
        strength = _strength_text(self.strength) if self.strength else None
        if strength:
            notes.append(f"Volumes are of the {strength} solution.")
        return WeightDoseTable(f"Daily dose by body weight ({_guideline_label(dosing)})", columns,
                               tuple(rate for _, rate in rates), rows, strength, " ".join(notes))

    def _kidney(self, draft: _Draft) -> None:
        rows = []
        for guide in self.guides:
            for dosing in guide.guideline.get("dosingGuideline") or ():
                if not self._renal(dosing):
                    continue
                for group in dosing.get("dosage") or ():
                    for dosage in group.get("dosage") or ():
                        rows.append((guide.name, _characteristics_text(dosing) or NONE,
                                     _dose_text(dosage) or "as prescribed", _timing_text(dosage.get("timing")) or NONE))
                draft.cite(self.mk)
        if rows:
            draft.add(Table("Dosing in kidney disease", ("Indication", "When", "Dose", "How often"),
                            tuple(dict.fromkeys(rows))))
            draft.add(ItemList(tuple(Link(f"Dosing: {guide.name}", f"#{guide.anchor}") for guide in self.guides
                                     if any(self._renal(d) for d in guide.guideline.get("dosingGuideline") or ()))))
        checks = [entry for entry in self._plan_entries() if KIDNEY.search(entry[1])]
        if checks:
            draft.add(Heading("Kidney tests"), ItemList(tuple(f"{when}: {what}" for when, what, _ in checks)),
                      ItemList((Link("Monitoring schedule", "#monitoring"),)))
            draft.cite(*(plan for _, _, plan in checks))

    def _side_effects(self, draft: _Draft) -> None:
        serious, common, other = [], [], []
        notes: list[LabelNote] = []
        for cud in self.cuds:
            if cud.get("type") != "undesirable-effect":
                continue
            effect = cud.get("undesirableEffect") or {}
            text = _text((effect.get("symptomConditionEffect") or {}).get("concept"))
            classification = effect.get("classification") or {}
            if any(c.get("code") == "serious" for c in classification.get("coding") or ()):
                serious.append((text, _text(classification)))
            elif effect.get("frequencyOfOccurrence"):
                common.append((text, _text(effect["frequencyOfOccurrence"])))
            else:
                other.append((text, _text(classification)))
            draft.cite(cud)
            notes += self._label_notes(cud)
        for title, effects in (("Common side effects", common), ("Serious side effects", serious),
                               ("Other side effects", other)):
            if effects:
                draft.add(Heading(title), ItemList(tuple(text for text, _ in effects)))
                draft.add(*(Paragraph(note, label="Frequency" if effects is common else None)
                            for note in dict.fromkeys(note for _, note in effects) if note))
        draft.add(*notes)

    def _interactions(self, draft: _Draft, vaccines: _Draft) -> None:
        for cud in self.cuds:
            if cud.get("type") != "interaction":
                continue
            interaction = cud.get("interaction") or {}
            others = [i for i in interaction.get("interactant") or ()
                      if _reference(i.get("itemReference")) not in self.product_refs]
            name = "; ".join(_interactant_text(i) for i in others) or "Other medicines"
            value_sets = [vs for vs in (self._resolve(url) for i in others for url in _value_sets(
                i.get("itemCodeableConcept"))) if vs is not None]
            live = [vs for vs in value_sets if _is_vaccine_set(vs)]
            blocks: list[Block] = [Heading(name)]
            kind = _text(interaction.get("type"))
            blocks.append(Paragraph(kind, label="Type") if kind else None)
            effect = _text((interaction.get("effect") or {}).get("concept"))
            blocks.append(Paragraph(effect, label="Effect") if effect else None)
            blocks.append(Paragraph(_text(interaction.get("incidence")), label="Incidence")
                          if interaction.get("incidence") else None)
            management = [_text(m) for m in interaction.get("management") or ()]
            if management:
                blocks.append(ItemList(tuple(management), label="What to do"))
            washout = _washout(interaction)
            if washout:
                blocks.append(Paragraph(f"at least {washout} after stopping", label="Washout"))
            for vs in value_sets:
                if not _is_vaccine_set(vs) and vs.get("title"):
                    blocks.append(Paragraph(vs["title"], label="Includes"))
            if live:
                blocks.append(ItemList((Link("The live vaccines", "#live-vaccines"),)))
            blocks += self._label_notes(cud)
            draft.add(*(block for block in blocks if block is not None))
            draft.cite(cud, *value_sets)
            if live:
                self._live_vaccines(vaccines, cud, effect, management, washout, live)

    def _live_vaccines(self, draft: _Draft, cud, effect: str, management: list[str], washout: str | None,
                       value_sets: list[Mapping[str, Any]]) -> None:
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
        draft.add(*self._label_notes(cud))

    def _topic_cuds(self, drafts: dict[str, _Draft]) -> None:
        """Warnings and contraindications, each in its topic's section (else "warnings")."""
        for cud in self.cuds:
            if cud.get("type") not in ("warning", "contraindication"):
                continue
            anchor = _topic(_cud_topic_text(cud), CUD_TOPICS) or "warnings"
            draft = drafts[anchor]
            draft.add(Heading(_cud_title(cud)), *_cud_body(cud), *self._label_notes(cud))
            draft.cite(cud)

    def _children(self, draft: _Draft) -> None:
        """Dosing guidelines for patients under 18 (an age range or limit below 18 years)."""
        items: list[str | Link] = []
        for guide in self.guides:
            for dosing in guide.guideline.get("dosingGuideline") or ():
                model = self._model(dosing)
                if model is not None and model.below_age(ADULT_AGE_YEARS):
                    texts = [d.get("text") for g in dosing.get("dosage") or () for d in g.get("dosage") or ()
                             if d.get("text")]
                    summary = f"{guide.name}, {_characteristics_text(dosing)}"
                    items.append(Link(f"{summary}: {texts[0]}" if texts else summary, f"#{guide.anchor}"))
        if items:
            draft.add(Heading("Dosing for children"), ItemList(tuple(items)))
            draft.cite(self.mk)

    def _drug_characteristics(self, drafts: dict[str, _Draft]) -> None:
        for characteristic in (self.mk.get("definitional") or {}).get("drugCharacteristic") or ():
            kind = _text(characteristic.get("type"))
            if _topic(kind, DRUG_CHARACTERISTIC_TOPICS) == "allergies":
                drafts["allergies"].add(Heading(f"Product: {kind}"), Paragraph(_value_text(characteristic)),
                                        *self._label_notes(characteristic, self.mk))
                drafts["allergies"].cite(self.mk)

    def _plan_entries(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        """(when, what, plan) for each action of the monitoring plans, in timeline order."""
        return [(entry.when, item, plan) for plan in self.plans for entry in _timeline(plan)
                for item in entry.items]

    def _monitoring(self, draft: _Draft) -> None:
        for plan in self.plans:
            entries = _timeline(plan)
            if entries:
                draft.add(Timeline(plan.get("title") or "Monitoring schedule", tuple(entries)))
            draft.cite(plan)
            if plan.get("description"):
                draft.add(Paragraph(plan["description"]))
            orders: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
            for action in _actions(plan):
                definition = self._resolve(action.get("definitionCanonical"))
                if definition is not None:
                    uses = orders.setdefault(definition["id"], (definition, []))[1]
                    uses.append(action.get("title") or _text(action.get("code")))
            for definition, uses in orders.values():
                order = definition.get("title") or _text(definition.get("code"))
                draft.add(Paragraph(f"{order}, for: {'; '.join(filter(None, uses))}", label="Suggested order"))
                draft.cite(definition)
        programs = [p.get("name") or _text(p.get("type")) for p in self.mk.get("monitoringProgram") or ()]
        if programs:
            draft.add(Heading("Monitoring programs"), ItemList(tuple(filter(None, programs))))
            draft.cite(self.mk)

    def _storage(self, storage: _Draft, travel: _Draft) -> None:
        for guideline in self.mk.get("storageGuideline") or ():
            texts = [n.get("text") or "" for n in guideline.get("note") or ()] + [
                _text(s.get("type")) + " " + _value_text(s) for s in guideline.get("environmentalSetting") or ()]
            is_travel = any(TRAVEL.search(text) for text in texts + _sections(guideline))
            draft = travel if is_travel else storage
            rows = tuple((_cap(_text(s.get("type"))), _value_text(s))
                         for s in guideline.get("environmentalSetting") or ())
            if rows:
                draft.add(Table("When travelling" if is_travel else "Storage conditions", ("Condition", "Requirement"),
                                rows))
            notes = tuple(n.get("text") for n in guideline.get("note") or () if n.get("text"))
            if notes:
                draft.add(ItemList(notes))
            if guideline.get("stabilityDuration"):
                draft.add(Paragraph(_quantity_text(guideline["stabilityDuration"]), label="Stable for"))
            draft.cite(self.mk)

    def _self_injection(self, draft: _Draft) -> None:
        instruction = self.mk.get("preparationInstruction")
        if instruction:
            draft.add(Heading("Preparation and injection"), *_markdown_blocks(instruction))
            draft.cite(self.mk)
        costs = [_text(c.get("costCodeableConcept")) or _money_text(c.get("costMoney")) for c in self.mk.get("cost")
                 or ()]
        if any(costs):
            draft.add(Heading("Costs"), ItemList(tuple(filter(None, costs))))
            draft.cite(self.mk)

    def _patient_information(self, drafts: dict[str, _Draft]) -> None:
        for composition in self.compositions:
            for section in _composition_sections(composition.get("section") or ()):
                anchor = _topic(section.get("title") or "", PATIENT_TOPICS) or "summary"
                blocks = _xhtml_blocks(((section.get("text") or {}).get("div")) or "")
                title = section.get("title") or ""
                same = title.lower() == drafts[anchor].title.lower()
                blocks.insert(0, Heading("Patient information" if same or not title else title))
                drafts[anchor].add(*blocks)
                drafts[anchor].cite(composition)

    def _source(self, draft: _Draft) -> None:
        for monograph in self.mk.get("monograph") or ():
            document = self._resolve(_reference(monograph.get("source")))
            if document is None or document.get("resourceType") != "DocumentReference":
                continue
            attachments = [c.get("attachment") or {} for c in document.get("content") or ()]
            rows = [("Document", "; ".join(a["title"] for a in attachments if a.get("title"))
                     or _text(document.get("type")))]
            if monograph.get("type"):
                rows.append(("Kind", _text(monograph["type"])))
            authors = [_display(a) for a in document.get("author") or ()]
            if any(authors):
                rows.append(("Authors", "; ".join(filter(None, authors))))
            for attester in document.get("attester") or ():
                what = _cap(_text(attester.get("mode")) or "attested")
                who = _display(attester.get("party"))
                rows.append((what, " by ".join(filter(None, [attester.get("time"), who]))))
            if document.get("description"):
                rows.append(("Description", document["description"]))
            if document.get("date"):
                rows.append(("Recorded", document["date"][:10]))
            draft.add(Table("Source document", ("Field", "Value"), tuple(rows)))
            draft.cite(document)
        for composition in self.compositions:
            authors = "; ".join(filter(None, (_display(a) for a in composition.get("author") or ())))
            text = ", ".join(filter(None, [composition.get("title"), authors and f"by {authors}",
                                           composition.get("date")]))
            draft.add(Paragraph(text, label="Patient information"))
            draft.cite(composition)
        draft.add(Paragraph(self.k.version, label="Knowledge version"))
        notes = [note for resource in [self.mk, *self.cuds, *self.products, *self.plans, *self.compositions,
                                       *self.packs] for note in _all_label_notes(resource, self.mk_ref)]
        if notes:
            draft.add(Heading("Where the current label differs"), *notes)
            draft.cite(*(note.source for note in notes))

    def _label_notes(self, element: Mapping[str, Any], resource: Mapping[str, Any] | None = None) -> list[LabelNote]:
        """The label differences on an element (not inside it) or, for a resource, on its root."""
        owner = resource or element
        return [_label_note(ext, _cud_title(owner) if owner is element else _statement_topic(element),
                            _statement(element, owner), _ref(owner))
                for ext in element.get("extension") or () if ext.get("url") == EXT_LABEL_DIFFERENCE]
