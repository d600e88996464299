"""Nothing about the knowledge's drug is written into the rules or the drug model: no drug or indication names, no
codes (LOINC, CVX, RxNorm, NDC, SNOMED CT), no dose numbers in ``fhirsvc/checks/`` or ``fhirsvc/drugmodel/``. The
rules find them in the knowledge (the second-drug test shows the other half: a new drug needs no code change)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import fhirsvc.checks
import fhirsvc.drugmodel

CHECKS_DIR = Path(fhirsvc.checks.__file__).parent
SOURCES = sorted([*CHECKS_DIR.rglob("*.py"), *Path(fhirsvc.drugmodel.__file__).parent.rglob("*.py")])
IDS = [p.relative_to(CHECKS_DIR.parent).as_posix() for p in SOURCES]
FORBIDDEN_WORDS = re.compile(r"anakinra|kineret|\bnomid\b|rheumatoid|etanercept|adalimumab|humira|measles|"
                             r"e\. coli|escherichia|methotrexate", re.IGNORECASE)
CODE_LIKE = re.compile(r"^(?:\d{3,6}-\d|LA\d+-\d|\d{5}-\d{3,4}-\d{1,2}|\d{6,}|[A-Z]\d{2}(?:\.\d+)?|L04A\w*)$")


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_no_drug_names_in_the_rules(path):
    found = FORBIDDEN_WORDS.findall(path.read_text(encoding="utf-8"))
    assert found == [], f"{path.name} names drug facts: {sorted(set(found))}"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_no_codes_or_dose_numbers_in_the_rules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    codes = [s for s in strings if CODE_LIKE.match(s.strip())]
    assert codes == [], f"{path.name} holds code-like literals: {codes}"
    rule_numbers = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call)
                    and getattr(call.func, "id", None) == "check" and len(call.args) > 1
                    for n in ast.walk(call.args[1])}  # the contract's rule numbers, e.g. @check("route", (18,), ...)
    numbers = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in rule_numbers
               and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)}
    drug_numbers = {100, 0.67, 8, 30, 18, 149.25}
    assert not numbers & drug_numbers, f"{path.name} holds drug numbers: {numbers & drug_numbers}"


def _literals(path: Path) -> list[str]:
    """The string literals of a module, its docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_card_wording_takes_group_names_from_the_knowledge(knowledge):
    """Cards name a drug group and its members ("a live vaccine (typhoid, oral)") from the knowledge's value
    sets: no string in the rules or their wording holds a name, label or title of an interaction group."""
    from fhirsvc.drugmodel.profile import value_set_of

    names: set[str] = set()
    for cud in knowledge.of_type("ClinicalUseDefinition"):
        for interactant in (cud.get("interaction") or {}).get("interactant") or ():
            value_set = knowledge.resolve(value_set_of(interactant.get("itemCodeableConcept")) or "")
            if not value_set:
                continue
            names.add(str(value_set.get("title", "")).split(" (")[0])
            names.update(str(e.get("valueString")) for e in value_set.get("extension") or () if e.get("valueString")
                         and "member-name" in e.get("url", ""))
            for include in (value_set.get("compose") or {}).get("include") or ():
                for concept in include.get("concept") or ():
                    names.update([concept.get("display") or "", *(d.get("value") or "" for d in
                                                                   concept.get("designation") or ())])
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in sorted(names) if len(n) >= 3),
                         re.IGNORECASE)
    assert len(names) > 50
    found = {(path.name, s) for path in SOURCES for s in _literals(path) if pattern.search(s)}
    assert not found, found
