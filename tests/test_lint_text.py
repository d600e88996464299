"""``tools/lint_text.py`` (run by ``make lint``): the repository passes its text rules, and each rule catches what
it is for, in a planted repository."""

from __future__ import annotations

import json
import subprocess
import sys

from fhirsvc.canonical import EXT_RULE_THRESHOLD, EXT_VALUE_SET
from tests.conftest import KNOWLEDGE_DIR, ROOT
from tools import lint_text
from tools.lint_text import (
    CODE_PROVENANCE,
    KNOWLEDGE,
    OUTSIDE,
    PRIVATE_EXEMPT,
    group_names,
    lookup_words,
    provenance_notes,
)

SCRIPT = ROOT / "tools" / "lint_text.py"


def run(root) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)], capture_output=True, text=True,
                          timeout=120)


def test_the_repository_passes():
    done = run(ROOT)
    assert (done.returncode, done.stdout) == (0, ""), done.stdout
    assert "lint_text: clean" in done.stderr


def test_there_are_notes_to_check():
    assert len(provenance_notes(KNOWLEDGE_DIR)) >= 100


def test_the_words_are_caught():
    assert lookup_words("CVX table in the public code index (search tool, find_string); research §4.4") == [
        "code index", "search tool", "find_string", "research"]
    assert lookup_words("RxCUI from the research notes (from memory); searched '72435'") == [
        "research", "notes", "from memory", "searched"]
    assert lookup_words("system http://www.nlm.nih.gov/research/umls/rxnorm, SNOMED CT release note") == []


def test_the_outside_pattern_catches_what_it_is_for():
    up, shared = "..", '"shared"'  # written in pieces, so that this file does not match its own pattern
    for text in (f"CONFORMANCE = ROOT.parent / {shared} / 'conformance'", f"see {up}/shared/spec/cds-checks.md",
                 f"Path(__file__).resolve().parents[2].parent / {shared}", "/" + "work/main/fixtures"):
        assert OUTSIDE.search(text), text


def test_a_planted_repository_fails_on_each_rule(tmp_path):
    lookup = "search" + " tool"  # in pieces too
    (tmp_path / "README.md").write_text(f"# x\n\nCodes checked with a {lookup}.\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "setup.md").write_text(f"Spec: {'..'}/shared/spec.md\n", encoding="utf-8")
    note = {"url": CODE_PROVENANCE, "extension": [{"url": "source", "valueString": "RxCUI from" + " memory"}]}
    value_set = {"resourceType": "ValueSet", "id": "x", "compose": {"include": [{
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "concept": [{"code": "1", "extension": [note]}]}]}}
    (tmp_path / KNOWLEDGE).mkdir(parents=True)
    (tmp_path / KNOWLEDGE / "ValueSet-x.json").write_text(json.dumps(value_set), encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)

    done = run(tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "README.md:3: lookup: names a lookup ['search tool']" in lines
    assert f"docs/setup.md:1: outside: points outside the repository: {'..'}/shared" in lines
    assert any(line.startswith(f"{KNOWLEDGE / 'ValueSet-x.json'}: provenance:") and "from memory" in line
               for line in lines), lines
    assert any("does not name RxNorm" in line for line in lines), lines
    assert "lint_text: 5 finding(s)" in done.stderr, (done.stdout, done.stderr)


def _plant(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)


def test_a_private_name_imported_from_another_module_is_a_finding(tmp_path):
    _plant(tmp_path, {
        "fhirsvc/words.py": "def _cap(text):\n    return text\n\n\ndef cap(text):\n    return text\n",
        "fhirsvc/pages/a.py": "from fhirsvc.words import _cap\nfrom fhirsvc.words import cap as _own\n",
        "fhirsvc/pages/b.py": "from ..words import (\n    cap,\n    _cap,\n)\nfrom os.path import _joinrealpath\n",
    })
    done = run(tmp_path)
    assert done.stdout.splitlines() == [
        "fhirsvc/pages/a.py:1: private: imports another module's private name _cap",
        "fhirsvc/pages/b.py:1: private: imports another module's private name _cap"]


def test_an_exemption_no_longer_needed_is_a_finding(tmp_path, monkeypatch):
    monkeypatch.setattr(lint_text, "PRIVATE_EXEMPT", {"fhirsvc/pages/a.py": {"_cap", "_gone"}})
    _plant(tmp_path, {"fhirsvc/words.py": "def _cap(text):\n    return text\n",
                      "fhirsvc/pages/a.py": "from fhirsvc.words import _cap\n"})
    assert list(lint_text.check_private(tmp_path)) == [
        "fhirsvc/pages/a.py: private: PRIVATE_EXEMPT lists _gone, which it no longer imports"]


def test_no_module_is_exempt_from_the_private_name_rule():
    assert PRIVATE_EXEMPT == {}
    assert list(lint_text.check_private(ROOT)) == []


def test_drug_facts_in_the_rules_or_the_drug_model_are_findings(tmp_path):
    include = {"system": "http://example.org", "concept": [{"code": "1", "display": "Shingrix"}]}
    group = {"resourceType": "ValueSet", "id": "vs", "url": "http://example.org/ValueSet/live",
             "title": "Zoster vaccines", "compose": {"include": [include]}}
    cud = {"resourceType": "ClinicalUseDefinition", "id": "cud", "type": "interaction", "interaction": {"interactant": [
        {"itemCodeableConcept": {"extension": [{"url": EXT_VALUE_SET, "valueCanonical": group["url"]}]}}]}}
    drug = "ana" + "kinra"  # in pieces: this file is no rule, but keep it from naming the drug whole
    _plant(tmp_path, {
        f"{KNOWLEDGE}/ValueSet-vs.json": json.dumps(group),
        f"{KNOWLEDGE}/ClinicalUseDefinition-cud.json": json.dumps(cud),
        "fhirsvc/checks/rules/dose.py": (
            f'"""Doses; the zoster vaccines are named in the knowledge."""\n# {drug}\n'
            '@check("dose", (18,), "topic")\ndef dose(run):\n    return run.value("4548-4") > 149.25\n'
            'WORDS = "a live vaccine (shingrix)"\n'),
        "fhirsvc/drugmodel/classes.py": 'ATC_CLASS = "L04AC03"\nLIMIT = 8\nSTEP = 7\n',
        "fhirsvc/monograph/page.py": f'TITLE = "{drug}, shingrix: 149.25 mg, 4548-4"\n',  # no rule: free to name drugs
    })
    lines = run(tmp_path).stdout.splitlines()
    assert lines == [
        "fhirsvc/checks/rules/dose.py:2: drug-facts: names a drug fact 'anakinra'",
        "fhirsvc/checks/rules/dose.py:5: drug-facts: a code-like literal '4548-4'",
        "fhirsvc/checks/rules/dose.py:5: drug-facts: a drug number 149.25",
        "fhirsvc/checks/rules/dose.py:6: drug-facts: names a group of the knowledge 'shingrix'",
        "fhirsvc/drugmodel/classes.py:1: drug-facts: a code-like literal 'L04AC03'",
        "fhirsvc/drugmodel/classes.py:2: drug-facts: a drug number 8"], lines


def test_a_rules_fixed_threshold_written_into_the_rules_is_a_finding(tmp_path):
    registry = {"resourceType": "PlanDefinition", "id": "rules", "action": [{"id": "fever", "extension": [
        {"url": EXT_RULE_THRESHOLD, "extension": [
            {"url": "code", "valueCode": "fever-celsius"},
            {"url": "value", "valueQuantity": {"value": 38.0, "code": "Cel"}}]}]}]}
    _plant(tmp_path, {
        f"{KNOWLEDGE}/PlanDefinition-rules.json": json.dumps(registry),
        "fhirsvc/checks/config.py": "FEVER_CELSIUS = 38.0\nSTEP = 37.5\n",
        "fhirsvc/pages/fever.py": "SHOWN = 38\n",  # no rule: free to say the number
    })
    assert lint_text.threshold_numbers(tmp_path / KNOWLEDGE) == {38.0}
    assert list(lint_text.check_drug_facts(tmp_path)) == [
        "fhirsvc/checks/config.py:1: drug-facts: a rule's fixed threshold 38.0 (the knowledge's rule-threshold)"]


def test_the_shipped_thresholds_are_known_to_the_rule():
    assert lint_text.threshold_numbers(KNOWLEDGE_DIR) == {65, 38.0, 1.5, 42}


def test_the_knowledge_names_its_interaction_groups():
    """The group names the drug-facts rule looks for: the shipped knowledge's, many of them."""
    names = group_names(KNOWLEDGE_DIR)
    assert len(names) > 50
    assert all(len(name) >= 3 for name in names)
