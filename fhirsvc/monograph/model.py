"""The monograph page model: the FHIR knowledge of one drug turned into plain sections.

Nothing here knows a particular drug. A page is built from one MedicationKnowledge and what it points to
(or what points to its products): ClinicalUseDefinitions, ValueSets, the monitoring PlanDefinition, the
patient-information Composition, the products and packs, and the source DocumentReference (its
metadata only: the page never reads the source text). Every section lists the resources it comes from.
The model holds only text and numbers; the templates turn it into HTML (and escape it).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fhirsvc.checks.config import dosing_anchor
from fhirsvc.drugmodel.profile import DrugProfile, Guideline, Strength, profile_of
from fhirsvc.knowledge import Knowledge

FHIR_BASE = "/fhir/R5"
EXT = "https://fhirsvc.org/fhir/StructureDefinition/"
LABEL_DIFFERENCE = EXT + "label-difference"
VALUE_SET = EXT + "value-set"
WASHOUT = EXT + "washout-period"
LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"
BODY_WEIGHT_CODES = frozenset({"29463-7", "3141-9"})  # LOINC body weight (measured, stated)
TABLE_WEIGHTS_KG = (5, 10, 15, 20, 30, 40, 50, 60, 70)
ADULT_AGE_YEARS = 18  # "For children": the guidelines for patients younger than this
SYSTEM_NAMES = {
    CVX: "CVX",
    "http://snomed.info/sct": "SNOMED CT",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://www.whocc.no/atc": "ATC",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    LOINC: "LOINC",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
}
UNIT_WORDS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}
DAYS_PER_UNIT = {"h": 1 / 24, "d": 1.0, "wk": 7.0}
DASH = "\u2013"  # en dash, for ranges
NONE = "\u2013"  # a table cell with nothing to say
COMPARATORS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "ad": ""}

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

# Which section a warning or contraindication belongs to, read from its code, category and condition
# (first match wins; anything else goes to "warnings"). Generic clinical words, no drug names.
CUD_TOPICS = (
    ("breastfeeding", re.compile(r"breast|nursing|lactat", re.I)),
    ("pregnancy", re.compile(r"pregnan", re.I)),
    ("seniors", re.compile(r"senior|elderly|geriatric|older adult|age (?:over|above|of|≥|>=) ?[6-9]\d", re.I)),
    ("children", re.compile(r"child|pediatric|paediatric|infant|adolescen", re.I)),
    ("allergies", re.compile(r"allerg|latex|hypersensitiv", re.I)),
    ("side-effects", re.compile(r"side effect", re.I)),
    ("monitoring", re.compile(r"\btests?\b|\bcounts?\b|monitor", re.I)),
    ("kidney-disease", re.compile(r"kidney|renal|creatinine|\be?gfr\b", re.I)),
)
KIDNEY = CUD_TOPICS[-1][1]
# Which section a patient-information (Composition) section belongs to, by its title.
PATIENT_TOPICS = (
    ("side-effects", re.compile(r"side effect", re.I)),
    ("interactions", re.compile(r"interact", re.I)),
    ("storage", re.compile(r"storage|\bstore|refrigerat", re.I)),
    ("travel", re.compile(r"travel", re.I)),
    ("monitoring", re.compile(r"monitor|blood test", re.I)),
    ("self-injection", re.compile(r"inject|suppl|miss|dose|taking|take it|cost|insurance|how to take", re.I)),
)
DRUG_CHARACTERISTIC_TOPICS = (
    ("how-it-works", re.compile(r"mechanism|how it works", re.I)),
    ("allergies", re.compile(r"allerg|latex", re.I)),
)
TRAVEL = re.compile(r"travel", re.I)


# --- The page model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRef:
    """A knowledge resource a section comes from; shown as a link to the FHIR R5 API."""

    resource_type: str
    id: str

    @property
    def label(self) -> str:
        return f"{self.resource_type}/{self.id}"

    @property
    def href(self) -> str:
        return f"{FHIR_BASE}/{self.resource_type}/{self.id}"


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass(frozen=True)
class Paragraph:
    kind: ClassVar[str] = "paragraph"
    text: str
    label: str | None = None  # a short lead-in shown in bold, e.g. "What to do"


@dataclass(frozen=True)
class Heading:
    """A subheading (h3) inside a section."""

    kind: ClassVar[str] = "heading"
    text: str


@dataclass(frozen=True)
class ItemList:
    kind: ClassVar[str] = "list"
    items: tuple[str | Link, ...]
    ordered: bool = False
    label: str | None = None  # a short lead-in shown before the list


@dataclass(frozen=True)
class Table:
    """A table whose first cell of each row is the row's header."""

    kind: ClassVar[str] = "table"
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class DoseCell:
    mg: float
    ml: float | None  # injection volume of the product strength, when known

    @property
    def mg_text(self) -> str:
        return f"{_num(self.mg)} mg/day"

    @property
    def ml_text(self) -> str:
        return "" if self.ml is None else f"{self.ml:.2f} mL"


@dataclass(frozen=True)
class WeightRow:
    weight_kg: float
    doses: tuple[DoseCell, ...]

    @property
    def weight_text(self) -> str:
        return f"{_num(self.weight_kg)} kg"


@dataclass(frozen=True)
class WeightDoseTable:
    """Daily doses by body weight: one column per mg/kg/day rate (starting low/high, maximum)."""

    kind: ClassVar[str] = "weight-table"
    caption: str
    columns: tuple[str, ...]  # one per rate, e.g. "Starting (low): 1 mg/kg/day"
    rates: tuple[float, ...]  # mg/kg/day of each column
    rows: tuple[WeightRow, ...]
    strength: str | None  # e.g. "100 mg/0.67 mL"
    note: str = ""  # how to read it: daily totals, split doses, the solution the volumes are of

    def row(self, weight_kg: float) -> WeightRow:
        return next(row for row in self.rows if row.weight_kg == weight_kg)


@dataclass(frozen=True)
class TimelineEntry:
    when: str  # "Baseline (before starting)", "Month 1", "Throughout treatment"
    month: float | None  # months after the start (0 = baseline; None = throughout)
    items: tuple[str, ...]


@dataclass(frozen=True)
class Timeline:
    kind: ClassVar[str] = "timeline"
    caption: str
    entries: tuple[TimelineEntry, ...]

    def entry(self, when: str) -> TimelineEntry:
        return next(entry for entry in self.entries if entry.when == when)


@dataclass(frozen=True)
class LabelNote:
    """Where the current label says otherwise than the monograph (a ``label-difference`` extension)."""

    kind: ClassVar[str] = "label-note"
    topic: str
    monograph: str  # what the knowledge (the monograph) states
    label: str  # what the current label says
    date: str | None
    url: str | None  # the label source (http/https only)
    source: SourceRef


Block = Paragraph | Heading | ItemList | Table | WeightDoseTable | Timeline | LabelNote


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    blocks: tuple[Block, ...]
    sources: tuple[SourceRef, ...]
    aliases: tuple[str, ...] = ()  # extra anchors that lead here (card links made from guideline ids)

    def blocks_of(self, kind: type) -> list:
        return [block for block in self.blocks if isinstance(block, kind)]

    @property
    def text(self) -> str:
        """Every word of the section, for searching (tests, debugging)."""
        return "\n".join(_block_text(block) for block in self.blocks)


@dataclass(frozen=True)
class Page:
    drug_id: str
    title: str
    subtitle: str | None
    lang: str
    sections: tuple[Section, ...]
    knowledge_version: str

    def section(self, anchor: str) -> Section:
        return next(section for section in self.sections if section.anchor == anchor)

    @property
    def anchors(self) -> tuple[str, ...]:
        return tuple(section.anchor for section in self.sections)


@dataclass(frozen=True)
class DrugEntry:
    id: str
    name: str
    other_names: tuple[str, ...]
    description: str | None
    status: str | None

    @property
    def href(self) -> str:
        return f"/monographs/{self.id}"


# --- Public functions -----------------------------------------------------------------------------------


def list_drugs(knowledge: Knowledge) -> tuple[DrugEntry, ...]:
    """Every MedicationKnowledge, by name."""
    entries = []
    for mk in knowledge.of_type("MedicationKnowledge"):
        names = _names(mk)
        entries.append(DrugEntry(mk["id"], names[0], tuple(names[1:]), _text(mk.get("code")) or None,
                                 mk.get("status")))
    return tuple(sorted(entries, key=lambda entry: (entry.name.lower(), entry.id)))


def build_page(knowledge: Knowledge, drug_id: str) -> Page | None:
    """The page of one MedicationKnowledge, or None when the knowledge has no such drug."""
    mk = knowledge.get("MedicationKnowledge", drug_id)
    if mk is None:
        return None
    return _Builder(knowledge, mk).page()


# --- Building -------------------------------------------------------------------------------------------


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
        mk = self.mk
        draft.cite(mk)
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
        if rows:
            draft.add(Table("At a glance", ("Feature", "Value"), tuple(rows)))
        guided = [guide.indication["id"] for guide in self.guides if guide.indication]
        indications = sorted((cud for cud in self.cuds if cud.get("type") == "indication"),  # dosed ones first
                             key=lambda cud: (cud["id"] not in guided, guided.index(cud["id"]) if cud["id"] in guided
                                              else 0, cud["id"]))
        if indications:
            draft.add(Heading("Uses"))
        by_indication = {guide.indication["id"]: guide for guide in self.guides if guide.indication}
        for cud in indications:
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
            guide = by_indication.get(cud["id"])
            if guide:
                draft.add(ItemList((Link(f"Dosing: {guide.name}", f"#{guide.anchor}"),)))
            draft.add(*self._label_notes(cud))
            draft.cite(cud)
        products = [_text(p.get("code")) for p in self.products] + [p.get("name") or p.get("description") or ""
                                                                    for p in self.packs]
        if any(products):
            draft.add(Heading("Products and packs"), ItemList(tuple(filter(None, products))))
            draft.cite(*self.products, *self.packs)

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
                for ext in element.get("extension") or () if ext.get("url") == LABEL_DIFFERENCE]


# --- Reading FHIR -------------------------------------------------------------------------------------


def _ref(resource: Mapping[str, Any]) -> SourceRef:
    return SourceRef(resource["resourceType"], resource["id"])


def _reference(value: Mapping[str, Any] | None) -> str | None:
    if not value:
        return None
    if "reference" in value and isinstance(value["reference"], Mapping):  # CodeableReference
        return value["reference"].get("reference")
    return value.get("reference")


def _plan_targets(plan: Mapping[str, Any]) -> list[str | None]:
    targets = [_reference(a.get("resourceReference")) for a in plan.get("relatedArtifact") or ()]
    return [*targets, _reference(plan.get("subjectReference"))]


def _text(concept: Mapping[str, Any] | None) -> str:
    """A CodeableConcept's (or CodeableReference's) text, else its first display or code."""
    if not concept:
        return ""
    if "concept" in concept:
        concept = concept.get("concept") or {}
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _display(reference: Mapping[str, Any] | None) -> str:
    return str((reference or {}).get("display") or (reference or {}).get("reference") or "")


def _names(mk: Mapping[str, Any]) -> list[str]:
    names = list(dict.fromkeys(str(n) for n in mk.get("name") or () if n))
    return names or [_text(mk.get("code")) or mk["id"]]


def _cap(text: str) -> str:
    """The text with its first letter in upper case (the rest unchanged, unlike str.capitalize)."""
    return text[:1].upper() + text[1:]


def _num(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"


def _quantity_text(quantity: Mapping[str, Any] | None) -> str:
    if not quantity or quantity.get("value") is None:
        return ""
    comparator = COMPARATORS.get(quantity.get("comparator") or "", quantity.get("comparator") or "")
    unit = quantity.get("unit") or quantity.get("code") or ""
    return " ".join(filter(None, [comparator, _num(quantity["value"]), unit]))


def _range_text(value: Mapping[str, Any] | None) -> str:
    if not value:
        return ""
    low, high = value.get("low") or {}, value.get("high") or {}
    if low.get("value") is not None and high.get("value") is not None:
        unit = high.get("unit") or high.get("code") or ""
        if (low.get("unit") or low.get("code") or "") == unit:
            return f"{_num(low['value'])}{DASH}{_num(high['value'])} {unit}".strip()
        return f"{_quantity_text(low)} {DASH} {_quantity_text(high)}"
    if low.get("value") is not None:
        return f"≥ {_quantity_text(low)}"
    if high.get("value") is not None:
        return f"≤ {_quantity_text(high)}"
    return ""


def _value_text(element: Mapping[str, Any]) -> str:
    """The text of an element's value[x]."""
    for key, value in element.items():
        if not key.startswith("value") or key == "value":
            continue
        kind = key[len("value"):]
        if kind in ("String", "Markdown", "Code", "Uri", "Url", "Canonical", "Id", "Date", "DateTime"):
            return str(value)
        if kind in ("Boolean",):
            return "yes" if value else "no"
        if kind in ("Integer", "Decimal", "PositiveInt", "UnsignedInt"):
            return _num(value)
        if kind in ("Quantity", "Duration", "Age", "Count", "Distance"):
            return _quantity_text(value)
        if kind == "Range":
            return _range_text(value)
        if kind in ("CodeableConcept", "Coding", "CodeableReference"):
            return _text(value) if kind != "Coding" else str(value.get("display") or value.get("code") or "")
        if kind == "Base64Binary":
            return ""
    return ""


def _sections(element: Mapping[str, Any]) -> list[str]:
    return [str(ext.get("valueString")) for ext in element.get("extension") or ()
            if ext.get("url") == EXT + "source-section" and ext.get("valueString")]


def _value_sets(concept: Mapping[str, Any] | None) -> list[str]:
    return [ext.get("valueCanonical") for ext in (concept or {}).get("extension") or ()
            if ext.get("url") == VALUE_SET and ext.get("valueCanonical")]


def _is_vaccine_set(value_set: Mapping[str, Any]) -> bool:
    return any(include.get("system") == CVX for include in (value_set.get("compose") or {}).get("include") or ())


def _interactant_text(interactant: Mapping[str, Any]) -> str:
    if interactant.get("itemCodeableConcept"):
        return _text(interactant["itemCodeableConcept"])
    return _display(interactant.get("itemReference"))


def _washout(interaction: Mapping[str, Any]) -> str | None:
    for ext in interaction.get("extension") or ():
        if ext.get("url") == WASHOUT:
            for key in ("valueDuration", "valueQuantity"):
                if ext.get(key):
                    return _quantity_text(ext[key])
    return None


def _short_name(cud_id: str, drug_id: str) -> str:
    """The short name of an indication from its CUD id: the part after ``indication-`` (``<drug>-indication-ra``
    -> ``ra``), else the id without the drug's prefix."""
    match = re.search(r"(?:^|-)indication-(.+)$", cud_id)
    if match:
        return match.group(1)
    return cud_id.removeprefix(f"{drug_id}-") or cud_id


def _indication_name(cud: Mapping[str, Any]) -> str:
    indication = cud.get("indication") or {}
    return _text((indication.get("diseaseSymptomProcedure") or {}).get("concept")) or cud["id"]


def _cud_title(cud: Mapping[str, Any]) -> str:
    """A short title of a ClinicalUseDefinition (its code, condition or interactant)."""
    kind = cud.get("type")
    if kind == "warning":
        return _text((cud.get("warning") or {}).get("code")) or "Warning"
    if kind == "contraindication":
        condition = _text(((cud.get("contraindication") or {}).get("diseaseSymptomProcedure") or {}).get("concept"))
        return f"Do not use: {condition}" if condition else "Contraindication"
    if kind == "indication":
        return _indication_name(cud)
    if kind == "interaction":
        items = [_interactant_text(i) for i in (cud.get("interaction") or {}).get("interactant") or ()]
        return "Interaction: " + "; ".join(filter(None, items[1:] or items))
    if kind == "undesirable-effect":
        return _text(((cud.get("undesirableEffect") or {}).get("symptomConditionEffect") or {}).get("concept"))
    return str(cud.get("id", ""))


def _cud_topic_text(cud: Mapping[str, Any]) -> str:
    """The words that decide a warning's or contraindication's section: title, category codes, code displays."""
    words = [_cud_title(cud)]
    for category in cud.get("category") or ():
        words += [str(c.get("code") or "") for c in category.get("coding") or ()]
    concepts = [(cud.get("warning") or {}).get("code"),
                ((cud.get("contraindication") or {}).get("diseaseSymptomProcedure") or {}).get("concept")]
    words += [str(c.get("display") or "") for concept in concepts if concept for c in concept.get("coding") or ()]
    return " ".join(words)


def _cud_body(cud: Mapping[str, Any]) -> list[Block]:
    if cud.get("type") == "warning":
        description = (cud.get("warning") or {}).get("description") or ""
        return _markdown_blocks(re.sub(r"^\s*\*\*[^*\n]{1,80}\*\*\s*", "", description)) if description else []
    contraindication = cud.get("contraindication") or {}
    blocks: list[Block] = []
    for comorbidity in contraindication.get("comorbidity") or ():
        blocks.append(Paragraph(_text(comorbidity), label="With"))
    for other in contraindication.get("otherTherapy") or ():
        blocks.append(Paragraph(_text((other.get("treatment") or {}).get("concept")), label="With"))
    return blocks


def _statement(element: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    """What the knowledge states where a label difference sits."""
    if element is resource and resource.get("resourceType") == "ClinicalUseDefinition":
        kind = resource.get("type")
        if kind == "warning" and (resource.get("warning") or {}).get("description"):
            return _plain(resource["warning"]["description"])
        if kind == "indication":
            effect = _text(((resource.get("indication") or {}).get("intendedEffect") or {}).get("concept"))
            return "; ".join(filter(None, [_indication_name(resource), effect]))
        if kind == "interaction":
            interaction = resource.get("interaction") or {}
            effect = _text((interaction.get("effect") or {}).get("concept"))
            return " ".join(filter(None, [effect and f"{effect}.", *(_text(m) for m in interaction.get("management")
                                                                    or ())]))
        return _cud_title(resource)
    for key in ("valueString", "valueMarkdown", "text", "description", "name", "title"):
        if isinstance(element.get(key), str):
            return _plain(element[key])
    return _value_text(element) or _text(element.get("type"))


def _statement_topic(element: Mapping[str, Any]) -> str:
    return _text(element.get("type")) or str(element.get("id") or element.get("title") or "")


def _label_note(ext: Mapping[str, Any], topic: str, monograph: str, source: SourceRef) -> LabelNote:
    parts = {sub.get("url"): sub for sub in ext.get("extension") or ()}
    label = _plain(str((parts.get("text") or {}).get("valueMarkdown") or (parts.get("text") or {}).get("valueString")
                       or ""))
    date = (parts.get("date") or {}).get("valueDate")
    url = (parts.get("source") or {}).get("valueUri") or (parts.get("source") or {}).get("valueUrl")
    safe = url if isinstance(url, str) and re.match(r"https?://", url) else None
    return LabelNote(topic, monograph, label, date, safe, source)


def _all_label_notes(resource: Mapping[str, Any], mk_ref: str) -> Iterator[LabelNote]:
    """Every label difference anywhere in a resource."""
    for element in _walk(resource):
        for ext in element.get("extension") or ():
            if ext.get("url") == LABEL_DIFFERENCE:
                if element is not resource:
                    topic = _statement_topic(element)
                elif resource.get("resourceType") == "ClinicalUseDefinition":
                    topic = _cud_title(resource)
                else:
                    topic = str(resource.get("title") or resource["id"])
                yield _label_note(ext, topic or resource["id"], _statement(element, resource), _ref(resource))


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for key, item in value.items():
            if key != "extension":
                yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


def _topic(text: str, topics: Sequence[tuple[str, re.Pattern[str]]]) -> str | None:
    return next((anchor for anchor, pattern in topics if pattern.search(text)), None)


# Dosing


def _strength_text(strength: Strength) -> str:
    return f"{_num(strength.mg)} mg/{_num(strength.ml)} mL"


def _characteristic_text(characteristic: Mapping[str, Any]) -> str:
    kind = _text(characteristic.get("type"))
    value = _value_text(characteristic)
    if not value or not kind:
        return kind or value
    return f"{kind}: {value}" if characteristic.get("valueCodeableConcept") else f"{kind} {value}"


def _characteristics_text(dosing: Mapping[str, Any]) -> str:
    return "; ".join(filter(None, (_characteristic_text(c) for c in dosing.get("patientCharacteristic") or ())))


def _guideline_label(dosing: Mapping[str, Any]) -> str:
    first = (dosing.get("dosage") or [{}])[0]
    return _characteristics_text(dosing) or _cap(_text(first.get("type"))) or str(dosing.get("id") or "Dosage")


def _dose_text(dosage: Mapping[str, Any]) -> str:
    doses = []
    for dose_rate in dosage.get("doseAndRate") or ():
        if dose_rate.get("doseQuantity"):
            doses.append(_quantity_text(dose_rate["doseQuantity"]))
        elif dose_rate.get("doseRange"):
            doses.append(_range_text(dose_rate["doseRange"]))
    return "; ".join(filter(None, doses))


def _timing_text(timing: Mapping[str, Any] | None) -> str:
    repeat = (timing or {}).get("repeat") or {}
    if not repeat.get("period") or not repeat.get("periodUnit"):
        return _text((timing or {}).get("code"))
    frequency, period = repeat.get("frequency") or 1, repeat["period"]
    unit = UNIT_WORDS.get(repeat["periodUnit"], repeat["periodUnit"])
    times = {1: "once", 2: "twice"}.get(frequency, f"{_num(frequency)} times")
    return f"{times} a {unit}" if period == 1 else f"{times} every {_num(period)} {unit}s"


def _max_text(dosage: Mapping[str, Any]) -> str:
    texts = []
    for ratio in dosage.get("maxDosePerPeriod") or ():
        numerator, denominator = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        per = UNIT_WORDS.get(denominator.get("code") or "", denominator.get("unit") or "")
        if denominator.get("value") in (None, 1):
            texts.append(f"{_quantity_text(numerator)} per {per}".strip())
        else:
            texts.append(f"{_quantity_text(numerator)} per {_num(denominator['value'])} {per}s")
    return "; ".join(texts)


# Monitoring


def _actions(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for action in plan.get("action") or ():
        yield action
        yield from _actions(action)


def _months(quantity: Mapping[str, Any] | None) -> float | None:
    if not quantity or quantity.get("value") is None:
        return None
    per_month = {"mo": 1.0, "a": 12.0, "wk": 7 / 30.4375, "d": 1 / 30.4375}.get(quantity.get("code") or "")
    return None if per_month is None else float(quantity["value"]) * per_month


def _action_months(action: Mapping[str, Any]) -> list[float | None] | None:
    """When an action falls, in months after the start: [0] before the start, [None] throughout, else the
    occurrences of its timing (count, period and bounds); None when it is the start itself or has no relation."""
    relations = [r.get("relationship") for r in action.get("relatedAction") or ()]
    if not relations:
        return None
    if any(r in ("before-start", "before") for r in relations):
        return [0.0]
    repeat = (action.get("timingTiming") or {}).get("repeat") or {}
    period = _months({"value": repeat.get("period"), "code": repeat.get("periodUnit")})
    if not period:
        return [None]
    offsets = [_months(r.get("offsetDuration")) for r in action.get("relatedAction") or ()]
    bounds = repeat.get("boundsRange") or {}
    start = _months(bounds.get("low")) or next((o for o in offsets if o), 0.0)
    end = _months(bounds.get("high"))
    count = repeat.get("count") or (int((end - start) / period + 1e-9) if end is not None else 1)
    return [round(start + period * n, 2) for n in range(1, count + 1)
            if end is None or start + period * n <= end + 1e-9]


def _action_text(action: Mapping[str, Any]) -> str:
    return _text(action.get("code")) or action.get("title") or ""


def _timeline(plan: Mapping[str, Any]) -> list[TimelineEntry]:
    """The plan's actions by time point: baseline, each timed occurrence (months after the start), throughout."""
    points: dict[float | None, list[str]] = {}
    for action in _actions(plan):
        for month in _action_months(action) or ():
            text = action.get("title") if month in (0.0, None) else _action_text(action)
            if month == 0.0:
                windows = [_range_text(r.get("offsetRange")) for r in action.get("relatedAction") or ()
                           if r.get("offsetRange")]
                text = f"{text} (within {windows[0].removeprefix('0' + DASH)})" if text and windows else text
            if text and text not in points.setdefault(month, []):
                points[month].append(text)
    entries = [TimelineEntry("Baseline (before starting)" if month == 0 else f"Month {_num(month)}", month,
                             tuple(points[month])) for month in sorted(m for m in points if m is not None)]
    if None in points:
        entries.append(TimelineEntry("Throughout treatment", None, tuple(points[None])))
    return entries


# Text


def _plain(markdown: str) -> str:
    """Markdown as one line of plain text: emphasis markers and link targets dropped."""
    text = re.sub(r"\*\*|__|`", "", markdown)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _markdown_blocks(markdown: str) -> list[Block]:
    """Markdown as paragraphs and lists of plain text (no HTML passes through)."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", markdown.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        bullets = [re.match(r"^(?:[-*+]|(\d+)[.)])\s+(.*)$", line) for line in lines]
        if all(bullets):
            blocks.append(ItemList(tuple(_plain(m.group(2)) for m in bullets if m), ordered=bool(bullets[0].group(1))))
        else:
            blocks.append(Paragraph(_plain(" ".join(lines))))
    return blocks


def _xhtml_blocks(div: str) -> list[Block]:
    """A FHIR narrative as paragraphs and lists of plain text (the markup itself is never passed on)."""
    if not div:
        return []
    try:
        root = ET.fromstring(div)
    except ET.ParseError:
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", div)).strip()
        return [Paragraph(text)] if text else []
    blocks: list[Block] = []
    loose = (root.text or "").strip()
    if loose:
        blocks.append(Paragraph(loose))
    for child in root:
        tag = child.tag.rsplit("}", 1)[-1]
        if tag in ("ul", "ol"):
            items = tuple(_squash(item) for item in child if item.tag.rsplit("}", 1)[-1] == "li")
            blocks.append(ItemList(tuple(filter(None, items)), ordered=tag == "ol"))
        elif tag == "table":
            rows = [tuple(_squash(cell) for cell in row) for row in child.iter() if row.tag.rsplit("}", 1)[-1] == "tr"]
            if rows:
                blocks.append(Table("", rows[0], tuple(rows[1:])))
        elif _squash(child):
            blocks.append(Paragraph(_squash(child)))
        if (child.tail or "").strip():
            blocks.append(Paragraph(child.tail.strip()))
    return blocks


def _squash(element: ET.Element) -> str:
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip()


def _money_text(money: Mapping[str, Any] | None) -> str:
    if not money or money.get("value") is None:
        return ""
    return f"{money['value']:.2f} {money.get('currency') or ''}".strip()


def _composition_sections(sections: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for section in sections:
        yield section
        yield from _composition_sections(section.get("section") or ())


def _block_text(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"{block.label}: {block.text}" if block.label else block.text
    if isinstance(block, Heading):
        return block.text
    if isinstance(block, ItemList):
        return "\n".join(item if isinstance(item, str) else item.text for item in block.items)
    if isinstance(block, Table):
        return "\n".join(" | ".join(row) for row in (block.columns, *block.rows))
    if isinstance(block, WeightDoseTable):
        return "\n".join(" | ".join([row.weight_text, *(f"{d.mg_text} {d.ml_text}" for d in row.doses)])
                         for row in block.rows)
    if isinstance(block, Timeline):
        return "\n".join(f"{entry.when}: {', '.join(entry.items)}" for entry in block.entries)
    return f"{block.topic}: {block.monograph} / label: {block.label}"
