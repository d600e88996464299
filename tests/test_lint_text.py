"""``tools/lint_text.py`` (run by ``make lint``): the repository passes its text rules, and each rule catches what
it is for, in a planted repository."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import KNOWLEDGE_DIR, ROOT
from tools.lint_text import CODE_PROVENANCE, KNOWLEDGE, OUTSIDE, lookup_words, provenance_notes

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
