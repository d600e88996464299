"""Each row of the knowledge README's coverage table: the statement is the monograph's, and the element
named in the row carries the value (evaluated with FHIRPath on the loaded resource)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import NamedTuple

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from fhirsvc.knowledge.frozen import thaw
from fhirsvc.knowledge.loader import CANONICAL_BASE
from fhirsvc.terminology import SYSTEM_NAMES
from tests.conftest import KNOWLEDGE_DIR

README = KNOWLEDGE_DIR / "README.md"
CODE_PROVENANCE = CANONICAL_BASE + "StructureDefinition/code-provenance"


class Row(NamedTuple):
    id: str
    section: str
    statement: str
    resource: str
    fhirpath: str
    expected: str


def markdown_table(path: Path, header: str) -> list[list[str]]:
    """The body rows of the first table whose header row starts with ``header``; ``\\|`` is a literal bar."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def coverage_rows(path: Path = README) -> list[Row]:
    return [Row(*(cell.strip("`") for cell in cells))
            for cells in markdown_table(path, "| id | section | statement")]


def normalize(text: str) -> str:
    """Whitespace- and apostrophe-insensitive form, for comparing a quoted statement with the source."""
    return " ".join(text.replace("\u2019", "'").replace("\u00a0", " ").split())


def fhirpath_strings(resource: dict, expression: str) -> list[str]:
    """Evaluate FHIRPath (R5 model) and render each result the way the table writes it."""
    rendered = []
    for value in evaluate(resource, expression, {}, model=models["r5"]):
        if isinstance(value, bool):
            rendered.append(str(value).lower())
        elif isinstance(value, float) and value.is_integer():
            rendered.append(str(int(value)))
        else:
            rendered.append(str(value))
    return rendered


ROWS = coverage_rows()


@pytest.fixture(scope="module")
def source_text(knowledge) -> str:
    attachment = knowledge.get("DocumentReference", "anakinra-monograph-2015")["content"][0]["attachment"]
    return normalize(base64.b64decode(attachment["data"]).decode("utf-8"))


def test_the_table_covers_every_part_of_the_monograph():
    assert len(ROWS) >= 100
    assert len({row.id for row in ROWS}) == len(ROWS), "row ids must be unique"
    for section in ("SECTION 1", "SECTION 2", "SECTION 3", "SECTION 4"):
        assert any(row.section.startswith(section) for row in ROWS), section


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_row_statement_is_quoted_and_its_element_carries_the_value(row, knowledge, source_text):
    assert normalize(row.statement) in source_text, f"not a verbatim excerpt of the monograph: {row.statement!r}"
    resource = knowledge.resolve(row.resource)
    assert resource is not None, f"{row.resource} is not in the knowledge"
    found = fhirpath_strings(thaw(resource), row.fhirpath)
    assert row.expected in found, f"{row.resource} {row.fhirpath} gave {found}"


def test_code_table_lists_every_code_with_its_provenance_status(knowledge):
    """The README's code table and the code-provenance extensions in the knowledge agree."""
    names = {name: system for system, name in SYSTEM_NAMES.items()}
    table = {(names.get(cells[0], cells[0]), cells[1].strip("`"), cells[4])
             for cells in markdown_table(README, "| system | code |")}
    in_knowledge = set()

    def walk(node, system=None):
        if isinstance(node, dict):
            system = node.get("system", system)
            for ext in node.get("extension", ()):
                if ext.get("url") == CODE_PROVENANCE and node.get("code"):
                    status = next(p["valueCode"] for p in ext["extension"] if p["url"] == "status")
                    in_knowledge.add((system, node["code"], status))
            for value in node.values():
                walk(value, system)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, system)

    for resource in knowledge.resources.values():
        walk(thaw(resource))
    assert sorted(in_knowledge - table) == [], "codes in the knowledge missing from the README table"
    assert sorted(table - in_knowledge) == [], "codes in the README table not used by the knowledge"
