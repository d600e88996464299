"""Text rules over the repository's files, run by `make lint` (``python tools/lint_text.py [--root DIR]``).

- ``provenance``: each code-provenance note of the shipped knowledge names the authority the code was checked
  against (SNOMED CT, LOINC, ...) and never how it was looked up (a lookup tool, notes, recollection);
- ``lookup``: the READMEs (the repository's and bench/'s), the code, the docs and the fixtures (knowledge and
  scenarios) name no lookup either;
- ``outside``: no tracked file reads or cites a path outside the repository (a shared folder beside the checkout,
  an absolute path of a machine): ``make clone-test`` proves the repository stands alone only if none does;
- ``private``: no module of the package imports another module's private name (``from fhirsvc.x import _y``):
  what a module shares it names publicly;
- ``drug-facts``: nothing about the knowledge's drugs is written into the rules or the drug model
  (``fhirsvc/checks/``, ``fhirsvc/drugmodel/``): no drug or indication names, no code-like literals (LOINC, CVX,
  RxNorm, NDC, SNOMED CT, ICD-10, ATC), no dose numbers, no number the knowledge declares as a rule's fixed
  threshold (the values of its ``rule-threshold`` extensions: the fever, the neutrophil count, the seniors' age),
  and no string naming an interaction group of the knowledge (its value sets' titles, member names, displays and
  designations): the rules read them from the knowledge, so a new drug needs no code change.

Prints ``file:line: rule: message`` for each finding; exit status 0 if none, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from fhirsvc.canonical import ATC, CVX, EXT_RULE_THRESHOLD, ICD10CM, LOINC, NDC, RXNORM, SNOMED, STRUCTURE_DEFINITION
from fhirsvc.drugmodel.profile import value_set_of

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
# Private names still imported across modules, by importing module: each is to be made public where it is defined.
# An entry that no longer matches an import is itself a finding, so the list only shrinks.
PRIVATE_EXEMPT: dict[str, set[str]] = {}
# The rules and the drug model: what must not know any drug.
RULE_FOLDERS = (Path("fhirsvc", "checks"), Path("fhirsvc", "drugmodel"))
DRUG_WORDS = re.compile(r"anakinra|kineret|\bnomid\b|rheumatoid|etanercept|adalimumab|humira|measles|"
                        r"e\. coli|escherichia|methotrexate", re.IGNORECASE)
CODE_LIKE = re.compile(r"^(?:\d{3,6}-\d|LA\d+-\d|\d{5}-\d{3,4}-\d{1,2}|\d{6,}|[A-Z]\d{2}(?:\.\d+)?|L04A\w*)$")
DRUG_NUMBERS = frozenset({100, 0.67, 8, 30, 18, 149.25})  # the knowledge's doses, limits and ages
GROUP_NAME_MIN = 3  # shorter names of a group ("UK") would match ordinary words


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


def private_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, name) of each private name imported from a module of the package (or a relative import)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "fhirsvc"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield node.lineno, alias.name


def check_private(root: Path) -> Iterator[str]:
    for path in sorted((root / "fhirsvc").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        exempt = PRIVATE_EXEMPT.get(name, set())
        seen = set()
        for line, private in private_imports(ast.parse(path.read_text(encoding="utf-8"))):
            seen.add(private)
            if private not in exempt:
                yield f"{name}:{line}: private: imports another module's private name {private}"
        for stale in sorted(exempt - seen):
            yield f"{name}: private: PRIVATE_EXEMPT lists {stale}, which it no longer imports"


def rule_sources(root: Path) -> list[Path]:
    return sorted(p for folder in RULE_FOLDERS for p in (root / folder).rglob("*.py"))


def _literals(tree: ast.AST, docstrings: bool = True) -> Iterator[tuple[int, str]]:
    """(line, value) of the string constants of a module (without its docstrings unless ``docstrings``)."""
    docs = set() if docstrings else {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    yield from ((n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)
                and isinstance(n.value, str) and id(n) not in docs)


def _numbers(tree: ast.AST) -> Iterator[tuple[int, float]]:
    """The numeric constants of a module, the contract's rule numbers (``@check("route", (18,), ...)``) left out."""
    rule_numbers = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call)
                    and getattr(call.func, "id", None) == "check" and len(call.args) > 1
                    for n in ast.walk(call.args[1])}
    yield from ((n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)
                and id(n) not in rule_numbers and isinstance(n.value, (int, float)) and not isinstance(n.value, bool))


def group_names(knowledge: Path) -> set[str]:
    """Every name of an interaction group of the knowledge: the titles, member names, displays and designations
    of the value sets its ClinicalUseDefinitions' interactants stand for."""
    resources = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(knowledge.glob("*.json"))]
    by_url = {r["url"]: r for r in resources if isinstance(r, dict) and isinstance(r.get("url"), str)}
    names: set[str] = set()
    for cud in (r for r in resources if isinstance(r, dict) and r.get("resourceType") == "ClinicalUseDefinition"):
        for interactant in (cud.get("interaction") or {}).get("interactant") or ():
            value_set = by_url.get(value_set_of(interactant.get("itemCodeableConcept")) or "")
            if not value_set:
                continue
            names.add(str(value_set.get("title", "")).split(" (")[0])
            names.update(str(e.get("valueString")) for e in value_set.get("extension") or () if e.get("valueString")
                         and "member-name" in e.get("url", ""))
            for include in (value_set.get("compose") or {}).get("include") or ():
                for concept in include.get("concept") or ():
                    names.update([concept.get("display") or "", *(d.get("value") or "" for d in
                                                                   concept.get("designation") or ())])
    return {name for name in names if len(name) >= GROUP_NAME_MIN}


def threshold_numbers(knowledge: Path) -> set[float]:
    """The values of every ``rule-threshold`` extension of the knowledge (the rules' fixed thresholds)."""
    found: set[float] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("url") == EXT_RULE_THRESHOLD:
                found.update(p["valueQuantity"]["value"] for p in node.get("extension") or ()
                             if isinstance(p.get("valueQuantity"), dict) and "value" in p["valueQuantity"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted(knowledge.glob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return found


def check_drug_facts(root: Path) -> Iterator[str]:
    thresholds = threshold_numbers(root / KNOWLEDGE)
    names = sorted(group_names(root / KNOWLEDGE))
    groups = re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in names), re.IGNORECASE) if names else None
    for path in rule_sources(root):
        name, text = path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")
        for match in DRUG_WORDS.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{name}:{line}: drug-facts: names a drug fact {match.group(0)!r}"
        tree = ast.parse(text)
        for line, literal in _literals(tree):
            if CODE_LIKE.match(literal.strip()):
                yield f"{name}:{line}: drug-facts: a code-like literal {literal!r}"
        for line, number in _numbers(tree):
            if number in DRUG_NUMBERS:
                yield f"{name}:{line}: drug-facts: a drug number {number!r}"
            elif number in thresholds:
                yield f"{name}:{line}: drug-facts: a rule's fixed threshold {number!r} (the knowledge's rule-threshold)"
        for line, literal in _literals(tree, docstrings=False):
            if groups and (found := groups.search(literal)):
                yield f"{name}:{line}: drug-facts: names a group of the knowledge {found.group(0)!r}"


def lint(root: Path) -> list[str]:
    """Every finding of every rule over the repository at ``root``."""
    return [*check_provenance(root), *check_lookup(root), *check_outside(root), *check_private(root),
            *check_drug_facts(root)]


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
