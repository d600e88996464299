"""The committed required bindings (fhirsvc/fhir/data/required-bindings-*.json) are what tools/bindings/generate.py
makes from HL7's definitions, which `make validator` installs into .validator/ (tools/bindings/BINDINGS.mk)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
R4_DEFINITIONS = ROOT / ".validator" / "r4-definitions" / "package" / "dist" / "fhir" / "r4"
R5_PACKAGE = ROOT / ".validator" / "hl7.fhir.r5.core" / "package"
DATA = ROOT / "fhirsvc" / "fhir" / "data"


@pytest.mark.skipif(not (R4_DEFINITIONS / "version.info").exists() or not R5_PACKAGE.exists(),
                    reason="HL7's definitions are not installed: run `make validator`")
def test_the_committed_bindings_are_regenerated_identically(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "bindings" / "generate.py"), "--r4", str(R4_DEFINITIONS),
                    "--r5", str(R5_PACKAGE), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("required-bindings-r4.json", "required-bindings-r5.json"):
        assert (tmp_path / name).read_text(encoding="utf-8") == (DATA / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize(("version", "fhir_version", "comparators"), [
    ("r4", "4.0.1", ["<", "<=", ">", ">="]), ("r5", "5.0.0", ["<", "<=", ">", ">=", "ad"]),  # R5 added "ad"
])
def test_the_bindings_are_the_versions_own_and_say_where_they_come_from(version, fhir_version, comparators):
    data = json.loads((DATA / f"required-bindings-{version}.json").read_text(encoding="utf-8"))
    assert data["source"]["fhirVersion"] == fhir_version and data["source"]["package"]
    assert "http://hl7.org/fhir/ValueSet/mimetypes" in data["unchecked"]  # a whole external system (BCP-13)
    assert data["valueSets"]["http://hl7.org/fhir/ValueSet/quantity-comparator"] == {
        "http://hl7.org/fhir/quantity-comparator": comparators}
