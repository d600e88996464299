"""Markdown and XHTML of the knowledge (descriptions, Composition sections) as page blocks, and blocks as plain text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fhirsvc.monograph.blocks import Block, ItemList, Paragraph, Table


def plain_text(markdown: str) -> str:
    """Markdown as one line of plain text: emphasis markers and link targets dropped."""
    text = re.sub(r"\*\*|__|`", "", markdown)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def markdown_blocks(markdown: str) -> list[Block]:
    """Markdown as paragraphs and lists of plain text (no HTML passes through)."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", markdown.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        bullets = [m for line in lines if (m := re.match(r"^(?:[-*+]|(\d+)[.)])\s+(.*)$", line))]
        if len(bullets) == len(lines):
            blocks.append(ItemList(tuple(plain_text(m.group(2)) for m in bullets), ordered=bool(bullets[0].group(1))))
        else:
            blocks.append(Paragraph(plain_text(" ".join(lines))))
    return blocks


def xhtml_blocks(div: str) -> list[Block]:
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
        tail = (child.tail or "").strip()
        if tail:
            blocks.append(Paragraph(tail))
    return blocks


def _squash(element: ET.Element) -> str:
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip()


def money_text(money: Mapping[str, Any] | None) -> str:
    if not money or money.get("value") is None:
        return ""
    return f"{money['value']:.2f} {money.get('currency') or ''}".strip()


def composition_sections(sections: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for section in sections:
        yield section
        yield from composition_sections(section.get("section") or ())
