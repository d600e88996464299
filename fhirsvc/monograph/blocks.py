"""What a monograph page is made of: sections of plain blocks (paragraphs, headings, lists, tables, the weight-based
dose table, the monitoring timeline, label notes) with the resources they come from. Only text and numbers; the
templates turn them into HTML (and escape them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fhirsvc.fhirtypes import number_text

FHIR_BASE = "/fhir/R5"


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
        return f"{number_text(self.mg)} mg/day"

    @property
    def ml_text(self) -> str:
        return "" if self.ml is None else f"{self.ml:.2f} mL"


@dataclass(frozen=True)
class WeightRow:
    weight_kg: float
    doses: tuple[DoseCell, ...]

    @property
    def weight_text(self) -> str:
        return f"{number_text(self.weight_kg)} kg"


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


def source_ref(resource: Mapping[str, Any]) -> SourceRef:
    return SourceRef(resource["resourceType"], resource["id"])


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
