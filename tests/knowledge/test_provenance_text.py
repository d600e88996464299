"""Code provenance names the authority a code was checked against and where it is reproduced, never how it
was looked up: no lookup tool, private notes or recollection in the knowledge, its README or the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fhirsvc.knowledge.loader import CANONICAL_BASE
from fhirsvc.terminology import ATC, CVX, ICD10CM, LOINC, NDC, RXNORM, SNOMED, SYSTEM_NAMES
from tests.conftest import KNOWLEDGE_DIR, ROOT
from tests.knowledge.test_coverage import markdown_table

CODE_PROVENANCE = CANONICAL_BASE + "StructureDefinition/code-provenance"
URL = re.compile(r"https?://\S+")
# Provenance text: none of these may describe where a code came from.
LOOKUP_WORDS = re.compile(r"search tool|find_string|find_files|read_file|\bresearch\b|\bnotes\b|from memory"
                          r"|code index|public index|\bsearched\b", re.IGNORECASE)
# Code and documentation: the unambiguous lookup phrases (``notes`` is an ordinary identifier there).
LOOKUP_PHRASES = re.compile(r"search tool|find_string|find_files|code index|from memory|research notes"
                            r"|research §", re.IGNORECASE)
AUTHORITY = {SNOMED: "SNOMED CT", LOINC: "LOINC", RXNORM: "RxNorm", ATC: "ATC", CVX: "CVX", ICD10CM: "ICD-10-CM",
             NDC: "NDC"}


def provenance_notes() -> list[tuple[str, str, str, str]]:
    """(file, system, code, source) of every code-provenance extension in the shipped knowledge."""
    found = []

    def walk(node, name, system=None):
        if isinstance(node, dict):
            system = node.get("system", system)
            for ext in node.get("extension", ()):
                if ext.get("url") == CODE_PROVENANCE:
                    parts = {p["url"]: p.get("valueString") for p in ext["extension"]}
                    found.append((name, system, node.get("code"), parts.get("source") or ""))
            for value in node.values():
                walk(value, name, system)
        elif isinstance(node, list):
            for item in node:
                walk(item, name, system)

    for path in sorted(KNOWLEDGE_DIR.glob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")), path.name)
    return found


NOTES = provenance_notes()


def lookup_words(text: str, pattern: re.Pattern = LOOKUP_WORDS) -> list[str]:
    return pattern.findall(URL.sub("", text))


def test_the_words_are_caught():
    assert lookup_words("CVX table in the public code index (search tool, find_string); research §4.4") == [
        "code index", "search tool", "find_string", "research"]
    assert lookup_words("RxCUI from the research notes (from memory); searched '72435'") == [
        "research", "notes", "from memory", "searched"]
    assert lookup_words("system http://www.nlm.nih.gov/research/umls/rxnorm, SNOMED CT release note") == []


def test_there_are_notes_to_check():
    assert len(NOTES) >= 100


@pytest.mark.parametrize("name, system, code, source", NOTES, ids=[f"{n[0]}:{n[2]}" for n in NOTES])
def test_provenance_note_cites_the_authority_not_a_lookup(name, system, code, source):
    assert not lookup_words(source), f"{name} {system}|{code}: provenance names a lookup: {source!r}"
    if system in AUTHORITY:
        assert AUTHORITY[system] in source, f"{name} {system}|{code}: provenance does not name {AUTHORITY[system]}"


def test_readme_code_table_cites_the_knowledge_provenance_and_no_lookup():
    """Each row's "verified against" is one of the code's own provenance notes (``|`` written as ``/``)."""
    systems = {name: system for system, name in SYSTEM_NAMES.items()}
    notes: dict[tuple[str, str], set[str]] = {}
    for _, system, code, source in NOTES:
        notes.setdefault((system, code), set()).add(source.replace("|", "/"))
    rows = markdown_table(KNOWLEDGE_DIR / "README.md", "| system | code |")
    assert rows
    for cells in rows:
        key = (systems.get(cells[0], cells[0]), cells[1].strip("`"))
        assert not lookup_words(cells[-1]), f"README provenance of {key}: {cells[-1]!r}"
        assert cells[-1] in notes.get(key, ()), f"README provenance of {key} is not the knowledge's: {cells[-1]!r}"


def _code_and_docs() -> list[Path]:
    """The README, the code, the docs and every fixture (knowledge descriptions, scenarios)."""
    fixtures = [p for folder in (ROOT / "fixtures", KNOWLEDGE_DIR) for p in sorted(folder.rglob("*"))
                if p.suffix in {".json", ".md"}]
    return [ROOT / "README.md", *sorted((ROOT / "fhirsvc").rglob("*.py")), *sorted((ROOT / "docs").rglob("*.md")),
            *fixtures]


@pytest.mark.parametrize("path", _code_and_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_code_and_docs_cite_no_lookup(path):
    found = lookup_words(path.read_text(encoding="utf-8"), LOOKUP_PHRASES)
    assert not found, f"{path.relative_to(ROOT)} names a lookup: {found}"
