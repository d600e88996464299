"""The layers import one way: the checks (and the knowledge they read) load neither Flask nor requests, even
transitively, nor any face (CDS Hooks, FHIR REST, pages); no face imports another face, the evaluation layer and
the storage import no face, and a hook is named by the service table alone."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import ROOT

PURE = ["fhirsvc.canonical", "fhirsvc.fhirtypes", "fhirsvc.checks.engine",
        "fhirsvc.checks.monitoring", "fhirsvc.drugmodel.profile", "fhirsvc.drugmodel.schedule",
        "fhirsvc.drugmodel.timing", "fhirsvc.knowledge", "fhirsvc.errors"]
FORBIDDEN = ["flask", "werkzeug", "requests", "fhirsvc.cds", "fhirsvc.fhir", "fhirsvc.monograph", "fhirsvc.app",
             "fhirsvc.evaluation", "fhirsvc.governance"]
FACES = ("fhirsvc.cds", "fhirsvc.fhir", "fhirsvc.monograph", "fhirsvc.app", "fhirsvc.handlers", "fhirsvc.cli",
         "fhirsvc.evaluation", "fhirsvc.governance")


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


def test_the_canonical_base_is_written_in_one_module():
    """Every URL under the service's canonical base is built from ``fhirsvc.canonical``."""
    writers = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "fhirsvc").rglob("*.py")
                     if CANONICAL_BASE in path.read_text(encoding="utf-8"))
    assert writers == ["fhirsvc/canonical.py"]


# The faces: what serves a route or a command (a module, or a package with all its modules: "fhirsvc.fhir.*").
# Each is free to use every layer below it, never another face; the composition roots (the app factory, the
# package) put them together. Below them: the evaluation, the checks, the knowledge, the storage, the CDS Hooks
# trust (cds.auth, asked by the FHIR operations too), the governance report (the page's and the CLI's), the
# monograph model.
FACE_MODULES = {
    "cds": ("fhirsvc.cds", "fhirsvc.cds.views", "fhirsvc.cds.feedback"),
    "fhir": ("fhirsvc.fhir.*",),
    "monograph": ("fhirsvc.monograph", "fhirsvc.monograph.views"),
    "governance": ("fhirsvc.governance", "fhirsvc.governance.views", "fhirsvc.governance.charts"),
    "cli": ("fhirsvc.cli",),
}
ROOTS = ("fhirsvc", "fhirsvc.app")
# Layers below the faces, with what each must not import.
BELOW = {
    "fhirsvc.evaluation": ("fhirsvc.cds", "fhirsvc.fhir", "fhirsvc.monograph", "fhirsvc.governance", "fhirsvc.cli",
                           "fhirsvc.app", "fhirsvc.storage"),
    "fhirsvc.storage": ("fhirsvc.cds", "fhirsvc.evaluation", "fhirsvc.checks", "fhirsvc.fhir", "fhirsvc.monograph",
                        "fhirsvc.governance", "fhirsvc.cli", "fhirsvc.app"),
}
HOOK_NAMES = {"order-select", "order-sign", "patient-view"}


def _module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted((ROOT / "fhirsvc").rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The fhirsvc modules ``name`` imports anywhere in its code (in functions and TYPE_CHECKING blocks too);
    ``from fhirsvc.x import y`` counts as ``fhirsvc.x.y`` when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                         for alias in node.names)
    return {module for module in found if module == "fhirsvc" or module.startswith("fhirsvc.")}


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _face_of(module: str) -> str | None:
    return next((face for face, names in FACE_MODULES.items() if module in names
                 or _within(module, [n.removesuffix(".*") for n in names if n.endswith(".*")])), None)


def test_the_import_reader_sees_imports():
    """The rules below read every import; here they must see the ones known to exist, so they cannot pass vacuously."""
    assert "fhirsvc.cds.auth" in _imports("fhirsvc.fhir.views")
    assert "fhirsvc.cds.views" in _imports("fhirsvc.app")  # `from fhirsvc.cds import views`
    assert "fhirsvc.evaluation.offline" in _imports("fhirsvc.cli")  # imported inside a function
    assert all(_face_of(m) is None for m in _imports("fhirsvc.evaluation.services"))
    assert _face_of("fhirsvc.fhir.check_orders") == "fhir" and _face_of("fhirsvc.cds.auth") is None


def test_no_face_imports_another_face():
    offenders = [f"{name} -> {module}" for name in MODULES if (face := _face_of(name))
                 for module in sorted(_imports(name)) if _face_of(module) not in (None, face)]
    assert offenders == []


def test_nothing_below_the_faces_imports_a_face():
    offenders = [f"{name} -> {module}" for name in MODULES if _face_of(name) is None and name not in ROOTS
                 for module in sorted(_imports(name)) if _face_of(module) is not None]
    assert offenders == []


def test_the_evaluation_and_the_storage_import_nothing_above_them():
    offenders = [f"{name} -> {module}" for layer, forbidden in BELOW.items() for name in MODULES
                 if _within(name, (layer,)) for module in sorted(_imports(name)) if _within(module, forbidden)]
    assert offenders == []


def test_a_hook_is_named_only_by_the_service_table():
    """The hooks are dispatched through ``evaluation.services`` alone: no other module names one in its code (a
    Bundle's order request, ``evaluation.bundles``, says which order hook it is)."""
    offenders = []
    for name, path in MODULES.items():
        if name in ("fhirsvc.evaluation.services", "fhirsvc.evaluation.bundles"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        offenders += [f"{name}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and node.value in HOOK_NAMES and id(node) not in docstrings]
    assert offenders == []
