"""The layers import one way: the checks (and the knowledge they read) load neither Flask nor requests, even
transitively, nor any face (CDS Hooks, FHIR REST, pages)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PURE = ["fhirsvc.canonical", "fhirsvc.fhirtypes", "fhirsvc.checks.engine",
        "fhirsvc.checks.monitoring", "fhirsvc.drugmodel.profile", "fhirsvc.drugmodel.schedule",
        "fhirsvc.drugmodel.timing", "fhirsvc.knowledge", "fhirsvc.errors"]
FORBIDDEN = ["flask", "werkzeug", "requests", "fhirsvc.cds", "fhirsvc.fhir", "fhirsvc.monograph", "fhirsvc.app"]
FACES = ("fhirsvc.cds", "fhirsvc.fhir", "fhirsvc.monograph", "fhirsvc.app", "fhirsvc.handlers", "fhirsvc.cli")


def test_the_checks_load_no_web_framework_and_no_face():
    code = (f"import importlib, json, sys\nfor name in {PURE!r}: importlib.import_module(name)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') "
            f"for f in {FORBIDDEN!r}))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(result.stdout) == []


def test_the_package_still_offers_create_app():
    code = "import sys, fhirsvc; assert 'flask' not in sys.modules; from fhirsvc import create_app; print(create_app)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_drug_model_imports_neither_the_checks_nor_a_face():
    code = ("import json, sys\nimport fhirsvc.drugmodel.profile, fhirsvc.drugmodel.schedule, fhirsvc.drugmodel.timing\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('fhirsvc.checks', 'flask')))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(result.stdout) == []


def test_imports_point_one_way():
    """No module of the checks or the drug model names a face (CDS Hooks, FHIR REST, pages, app, command line)."""
    offenders = []
    for layer in ("checks", "drugmodel"):
        for path in sorted((ROOT / "fhirsvc" / layer).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                module = line.split()[1] if line.startswith(("from fhirsvc.", "import fhirsvc.")) else ""
                if any(module == f or module.startswith(f + ".") for f in FACES):  # fhirsvc.fhirtypes is no face
                    offenders.append(f"{path.name}: {line}")
    assert offenders == []


def test_the_datatype_helpers_and_the_urls_import_nothing_of_the_package():
    """``fhirsvc.fhirtypes`` and ``fhirsvc.canonical`` are below everything: every layer may read them."""
    code = ("import json, sys\nimport fhirsvc.canonical, fhirsvc.fhirtypes\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('fhirsvc.')"
            " and m not in ('fhirsvc.canonical', 'fhirsvc.fhirtypes'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(result.stdout) == []


CANONICAL_BASE = "https://" + "fhirsvc.org/fhir/"  # in two pieces: this file is not a module of the package
# Being moved into the evaluation layer; its URLs are in fhirsvc.canonical already (CHECK_ORDERS_OPERATION,
# CHECK_OUTCOME, PROPOSED_CHANGE, V3_ACT_CODE), read from there once it has moved.
MOVING = {"fhirsvc/fhir/check_orders.py"}


def test_the_canonical_base_is_written_in_one_module():
    """Every URL under the service's canonical base is built from ``fhirsvc.canonical``."""
    writers = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "fhirsvc").rglob("*.py")
                     if CANONICAL_BASE in path.read_text(encoding="utf-8")
                     and str(path.relative_to(ROOT)) not in MOVING)
    assert writers == ["fhirsvc/canonical.py"]
