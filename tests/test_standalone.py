"""The repository stands alone: nothing it ships reads or cites a path outside it. (``make clone-test``, which
CI runs, clones HEAD into an empty directory and runs ``make test`` there.)"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import ROOT

# a shared folder beside the checkout (by a relative path, or ROOT.parent), or an absolute path of this machine
OUTSIDE = re.compile(r"\.\./shared\b|parents?\[?\d*\]?\s*/\s*\"shared\"|\.parent\s*/\s*\"shared\"|/(?:work)/")


def tracked_text_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in listed.decode().split("\0")
            if name and not name.startswith("tests/conformance/")]


def test_no_tracked_file_points_outside_the_repository():
    found = []
    for name in tracked_text_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert found == []


def test_the_pattern_catches_what_it_is_for():
    up, shared = "..", '"shared"'  # written in pieces, so that this file does not match its own pattern
    for text in (f"CONFORMANCE = ROOT.parent / {shared} / 'conformance'", f"see {up}/shared/spec/cds-checks.md",
                 f"Path(__file__).resolve().parents[2].parent / {shared}", "/" + "work/main/fixtures"):
        assert OUTSIDE.search(text), text
