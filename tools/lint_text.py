"""Text rules over the repository's files, run by `make lint` (``python tools/lint_text.py [--root DIR]``).

- ``provenance``: each code-provenance note of the shipped knowledge names the authority the code was checked
  against (SNOMED CT, LOINC, ...) and never how it was looked up (a lookup tool, notes, recollection);
- ``lookup``: the READMEs (the repository's and bench/'s), the code, the docs and the fixtures (knowledge and
  scenarios) name no lookup either;
- ``outside``: no tracked file reads or cites a path outside the repository (a shared folder beside the checkout,
  an absolute path of a machine): ``make clone-test`` proves the repository stands alone only if none does.

Prints ``file:line: rule: message`` for each finding; exit status 0 if none, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from fhirsvc.canonical import ATC, CVX, ICD10CM, LOINC, NDC, RXNORM, SNOMED, STRUCTURE_DEFINITION

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = Path("fhirsvc", "knowledge", "data")
CODE_PROVENANCE = STRUCTURE_DEFINITION + "code-provenance"
URL = re.compile(r"https?://\S+")
# Provenance text: none of these may describe where a code came from.
LOOKUP_WORDS = re.compile(r"search tool|find_string|find_files|read_file|\bresearch\b|\bnotes\b|from memory"
                          r"|code index|public index|\bsearched\b", re.IGNORECASE)
# Code and documentation: the unambiguous lookup phrases (``notes`` is an ordinary identifier there).
LOOKUP_PHRASES = re.compile(r"search tool|find_string|find_files|code index|from memory|research notes"
                            r"|research §", re.IGNORECASE)
AUTHORITY = {SNOMED: "SNOMED CT", LOINC: "LOINC", RXNORM: "RxNorm", ATC: "ATC", CVX: "CVX", ICD10CM: "ICD-10-CM",
             NDC: "NDC"}
# a shared folder beside the checkout (by a relative path, or ROOT.parent), or an absolute path of this machine
OUTSIDE = re.compile(r"\.\./shared\b|parents?\[?\d*\]?\s*/\s*\"shared\"|\.parent\s*/\s*\"shared\"|/(?:work)/")
OUTSIDE_EXEMPT = ("tests/conformance/",)  # payloads reproduced verbatim from elsewhere, with their provenance


def lookup_words(text: str, pattern: re.Pattern[str] = LOOKUP_WORDS) -> list[str]:
    """The lookup words of ``text``, URLs left out (``.../research/umls/rxnorm`` is an address, not a lookup)."""
    return pattern.findall(URL.sub("", text))


def provenance_notes(knowledge: Path) -> list[tuple[str, str | None, str | None, str]]:
    """(file, system, code, source) of every code-provenance extension in the knowledge directory."""
    found: list[tuple[str, str | None, str | None, str]] = []

    def walk(node: object, name: str, system: str | None = None) -> None:
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

    for path in sorted(knowledge.glob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")), path.name)
    return found


def check_provenance(root: Path) -> Iterator[str]:
    for name, system, code, source in provenance_notes(root / KNOWLEDGE):
        where = f"{KNOWLEDGE / name}: provenance: {system}|{code}"
        if found := lookup_words(source):
            yield f"{where} names a lookup {found}: {source!r}"
        if system in AUTHORITY and AUTHORITY[system] not in source:
            yield f"{where} does not name {AUTHORITY[system]}: {source!r}"


def code_and_docs(root: Path) -> list[Path]:
    """The READMEs, the code, the docs and every fixture (knowledge descriptions, scenarios)."""
    fixtures = [p for folder in (root / "fixtures", root / KNOWLEDGE) for p in sorted(folder.rglob("*"))
                if p.suffix in {".json", ".md"}]
    return [root / "README.md", root / "bench" / "README.md", *sorted((root / "fhirsvc").rglob("*.py")),
            *sorted((root / "docs").rglob("*.md")), *fixtures]


def check_lookup(root: Path) -> Iterator[str]:
    for path in code_and_docs(root):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for line, content in enumerate(text.splitlines(), 1):
            if found := lookup_words(content, LOOKUP_PHRASES):
                yield f"{path.relative_to(root)}:{line}: lookup: names a lookup {found}"


def tracked_files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and not name.startswith(OUTSIDE_EXEMPT)]


def check_outside(root: Path) -> Iterator[str]:
    for name in tracked_files(root):
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted and not yet committed
        for match in OUTSIDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{name}:{line}: outside: points outside the repository: {match.group(0)}"


def lint(root: Path) -> list[str]:
    """Every finding of every rule over the repository at ``root``."""
    return [*check_provenance(root), *check_lookup(root), *check_outside(root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lint_text.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    root = parser.parse_args(argv).root.resolve()
    findings = lint(root)
    for finding in findings:
        print(finding)
    print(f"lint_text: {len(findings)} finding(s)" if findings else "lint_text: clean", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
