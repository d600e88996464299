"""Independent R5 validator built on the HL7 R5 core package, since fhir.resources checks far too little.

Two layers, both driven by hl7.fhir.r5.core 5.0.0 (unpacked into .validator/ by `make validator`):

* the official `fhir.schema.json` (jsonschema): unknown elements, JSON types, primitive formats;
* a walker over the core StructureDefinition snapshots: cardinality, choice types, integers, empty
  values (ele-1), reference targets, codes in required bindings (value sets expanded from the core
  CodeSystems) and the FHIRPath invariants of every element and data type (fhirpathpy, R5 model).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import pathlib
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeGuard

from fhirsvc.config import SOURCE_CHECKOUT
from fhirsvc.knowledge.problems import Problem

# .validator/ of the checkout (or of the working directory, for an installed wheel)
PACKAGE_DIR = (SOURCE_CHECKOUT or pathlib.Path()) / ".validator" / "hl7.fhir.r5.core" / "package"
INSTALL_HINT = (
    "run `make validator` (unpacks the npm package hl7.fhir.r5.core@5.0.0 into .validator/; "
    "jsonschema and fhirpathpy come with `make install`, or with pip install 'fhirsvc[validate]')"
)

SD_BASE = "http://hl7.org/fhir/StructureDefinition/"
SYSTEM_TYPE = "http://hl7.org/fhirpath/System."
REFERENCE = re.compile(r"^(?:[a-z]+://\S*/)?([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
DATETIME = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?")
INTEGER_MIN = {"integer": -(2**31), "unsignedInt": 0, "positiveInt": 1}
STRING_TYPES = {"code", "string", "uri", "url", "canonical", "id", "markdown", "oid", "uuid"}
# ele-1 is checked natively (clearer messages, and hasValue() is missing from fhirpathpy). Noise:
# dom-6 only asks for a narrative; eld-24 prefers pattern[x], yet extension urls are fixedUri by custom.
SKIPPED_CONSTRAINTS = {"ele-1", "dom-6", "eld-24"}
EMPTY_OBJECT = "constraint ele-1 failed: empty object (an element needs a value or children)"


class ValidatorNotInstalled(RuntimeError):
    """The R5 core package or the Python packages are missing, so nothing can be checked yet."""


def validate_files(paths: list[pathlib.Path]) -> list[Problem]:
    """Validate R5 JSON files against the core package, sorted by file and path, to judge authored knowledge."""
    defs = _definitions(PACKAGE_DIR)
    problems: set[Problem] = set()
    for path in paths:
        problems.update(_validate_file(defs, pathlib.Path(path)))
    return sorted(problems)


def validate_resource(resource: Any, name: str = "-") -> list[Problem]:
    """Validate one R5 resource given as parsed JSON (e.g. a response body), reported under ``name``."""
    return sorted(set(_validate_resource(_definitions(PACKAGE_DIR), resource, name)))


def _validate_file(defs: Definitions, path: pathlib.Path) -> list[Problem]:
    """Validate one file, noting JSON keys given twice (parsers silently keep the last one)."""
    name = str(path)
    duplicates: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
        resource = json.loads(text, object_pairs_hook=functools.partial(_no_duplicates, duplicates))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [Problem(name, "-", f"not readable as JSON: {exc}")]
    problems = [Problem(name, str(resource.get("resourceType")), f"duplicate JSON key {key!r}") for key in duplicates]
    return problems + _validate_resource(defs, resource, name)


def _validate_resource(defs: Definitions, resource: Any, name: str) -> list[Problem]:
    """Both layers on one resource, dropping a schema enum error the walker already reports."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if rtype not in defs.resource_types:
        return [Problem(name, "resourceType", f"not an R5 resource type: {rtype!r}")]
    problems = [Problem(name, p, m, s) for p, m, s in Walker(defs, resource).run()]
    walked = {p.path for p in problems}
    for spath, message, kind in _schema_problems(defs, resource):
        if not (kind == "enum" and spath in walked):
            problems.append(Problem(name, spath, message))
    return problems


def _no_duplicates(found: list[str], pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, noting keys given twice (JSON parsers silently keep the last one)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            found.append(key)
        obj[key] = value
    return obj


@functools.cache
def _definitions(package: pathlib.Path) -> Definitions:
    """The definitions of one package directory, loaded once per process (about 0.3 s)."""
    return Definitions(package)


class Definitions:
    """The R5 core StructureDefinitions, JSON schema and terminology of the unpacked package."""

    def __init__(self, package: pathlib.Path) -> None:
        missing = [m for m in ("jsonschema", "fhirpathpy") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValidatorNotInstalled(f"Python packages missing: {', '.join(missing)}; {INSTALL_HINT}")
        schema_file = package / "openapi" / "fhir.schema.json"
        if not schema_file.is_file():
            raise ValidatorNotInstalled(f"R5 core package not found in {package}; {INSTALL_HINT}")
        self.package = package
        self.types: dict[str, dict[str, Any]] = {}
        for file in package.glob("StructureDefinition-*.json"):
            sd = json.loads(file.read_text(encoding="utf-8"))
            if sd.get("derivation") != "constraint" and sd.get("url") == SD_BASE + sd.get("type", ""):
                self.types[sd["type"]] = _index(sd)
        self.resource_types = {n for n, t in self.types.items() if t["kind"] == "resource"}
        self.schema = json.loads(schema_file.read_text(encoding="utf-8"))
        self.schema_names = {id(s): n for n, s in self.schema["definitions"].items()}
        self._validators: dict[str, Any] = {}
        self._terminology: dict[str, dict[str, dict[str, Any]]] = {}
        self._expansions: dict[str, frozenset[tuple[str | None, str]] | None] = {}

    def is_primitive(self, code: str) -> bool:
        """Whether a type code is a JSON scalar: a primitive type or a System.* type."""
        return code.startswith(SYSTEM_TYPE) or self.types.get(code, {}).get("kind") == "primitive-type"

    def validator(self, rtype: str) -> Any:
        """A jsonschema validator for one resource type, which gives more readable errors than the oneOf."""
        if rtype not in self._validators:
            from jsonschema import Draft6Validator

            schema = {"$ref": f"#/definitions/{rtype}", "definitions": self.schema["definitions"]}
            self._validators[rtype] = Draft6Validator(schema)
        return self._validators[rtype]

    def expand(self, url: str) -> frozenset[tuple[str | None, str]] | None:
        """The (system, code) pairs of a value set, or None when it cannot be expanded offline."""
        url = url.split("|", 1)[0]
        if url not in self._expansions:
            self._expansions[url] = None  # guards against include cycles
            self._expansions[url] = self._expand(url)
        return self._expansions[url]

    def _expand(self, url: str) -> frozenset[tuple[str | None, str]] | None:
        """Expand a value set's compose from the core CodeSystems."""
        vs = self._load("ValueSet", url)
        if vs is None or "compose" not in vs:
            return None
        codes: set[tuple[str | None, str]] = set()
        for include in vs["compose"].get("include", []):
            part = self._expand_include(include)
            if part is None:
                return None
            codes |= part
        for exclude in vs["compose"].get("exclude", []):
            part = self._expand_include(exclude)
            if part is None:
                return None
            codes -= part
        return frozenset(codes)

    def _expand_include(self, include: dict[str, Any]) -> set[tuple[str | None, str]] | None:
        """The codes of one include; None for filters and for external or partial code systems."""
        system = include.get("system")
        if include.get("filter") or (include.get("valueSet") and system):
            return None
        if include.get("valueSet"):
            codes: set[tuple[str | None, str]] = set()
            for url in include["valueSet"]:
                part = self.expand(url)
                if part is None:
                    return None
                codes |= part
            return codes
        if include.get("concept"):
            return {(system, c["code"]) for c in include["concept"]}
        cs = self._load("CodeSystem", system or "")
        if cs is None or cs.get("content") != "complete":
            return None
        return {(system, code) for code in _concept_codes(cs.get("concept", []))}

    def _load(self, kind: str, url: str) -> dict[str, Any] | None:
        """A CodeSystem or ValueSet of the package by canonical url."""
        if kind not in self._terminology:
            resources = (json.loads(f.read_text(encoding="utf-8")) for f in self.package.glob(f"{kind}-*.json"))
            self._terminology[kind] = {r["url"]: r for r in resources if "url" in r}
        return self._terminology[kind].get(url.split("|", 1)[0])


def _index(sd: dict[str, Any]) -> dict[str, Any]:
    """Index a snapshot by element path and by parent path, leaving slices out."""
    elements: dict[str, dict[str, Any]] = {}
    children: dict[str, list[dict[str, Any]]] = {}
    for ed in sd["snapshot"]["element"]:
        if ":" in ed["id"]:
            continue
        elements[ed["path"]] = ed
        if "." in ed["path"]:
            children.setdefault(ed["path"].rsplit(".", 1)[0], []).append(ed)
    return {"kind": sd["kind"], "elements": elements, "children": children}


def _concept_codes(concepts: list[dict[str, Any]]) -> Iterator[str]:
    """Every code of a CodeSystem concept tree."""
    for concept in concepts:
        yield concept["code"]
        yield from _concept_codes(concept.get("concept", []))


class Walker:
    """Walks one resource alongside the snapshots, collecting (path, message, severity)."""

    def __init__(self, defs: Definitions, resource: dict[str, Any]) -> None:
        self.defs = defs
        self.root = resource
        # FHIRPath %rootResource of each resource walked: itself, or for a contained resource its container (a
        # Bundle entry's resource is its own root, not the Bundle)
        self.roots: dict[int, dict[str, Any]] = {}
        self.found: list[tuple[str, str, str]] = []

    def run(self) -> list[tuple[str, str, str]]:
        """Check the whole resource."""
        self._resource(self.root, self.root["resourceType"])
        return self.found

    def _add(self, path: str, message: str, severity: str = "error") -> None:
        self.found.append((path, message, severity))

    def _resource(self, resource: dict[str, Any], jpath: str) -> None:
        """Check a resource (the root, a contained or a Bundle entry resource) against its type."""
        rtype = resource.get("resourceType")
        if rtype not in self.defs.resource_types:
            self._add(f"{jpath}.resourceType", f"not an R5 resource type: {rtype!r}")
            return
        self._complex(resource, rtype, rtype, jpath, resource)
        self._invariants(resource, rtype, self.defs.types[rtype]["elements"][rtype], jpath, resource)

    def _complex(self, value: Any, tname: str, epath: str, jpath: str, resource: dict[str, Any]) -> None:
        """Check the children of an object defined by element `epath` of type `tname`."""
        if not isinstance(value, dict):
            return  # the schema reports the wrong JSON type
        if "resourceType" not in value and not set(value) - {"id"}:
            self._add(jpath, EMPTY_OBJECT)
            return
        keys: dict[str, tuple[dict[str, Any], str]] = {}
        for ed in self.defs.types[tname]["children"].get(epath, []):
            name = ed["path"].rsplit(".", 1)[1]
            present = []
            for code in sorted({t["code"] for t in ed.get("type", [])}) or [""]:
                key = name[:-3] + code[:1].upper() + code[1:] if name.endswith("[x]") else name
                keys[key] = (ed, code)
                if key in value or "_" + key in value:
                    present.append(key)
            self._cardinality(ed, name, present, value, jpath)
        for key, item in value.items():
            if key.removeprefix("_") in keys:  # unknown keys are the schema's to report
                ed, code = keys[key.removeprefix("_")]
                for vpath, val in self._values(value, key, item, jpath):
                    if key.startswith("_"):
                        self._complex(val, "Element", "Element", vpath, resource)
                    else:
                        self._value(val, ed, code, tname, vpath, resource)

    def _cardinality(self, ed: dict, name: str, present: list[str], value: dict, jpath: str) -> None:
        """Check min and max, and that a choice element is given in one type only."""
        if len(present) > 1:
            self._add(f"{jpath}.{name}", f"choice element {name} given more than once: {', '.join(present)}")
        if not present:
            if ed.get("min", 0) > 0:
                self._add(f"{jpath}.{name}", f"missing required element {name} (min {ed['min']})")
            return
        key = present[0]
        item = value.get(key, value.get("_" + key))
        count = len(item) if isinstance(item, list) else 1
        if ed.get("max") == "0":
            self._add(f"{jpath}.{key}", f"element {key} is not allowed here (max 0)")
        elif ed.get("max", "*") not in ("*", "1") and count > int(ed["max"]):
            self._add(f"{jpath}.{key}", f"too many {key}: {count} (max {ed['max']})")

    def _values(self, parent: dict, key: str, item: Any, jpath: str) -> Iterator[tuple[str, Any]]:
        """The (path, value) pairs of one JSON property, after checking its array form."""
        if not isinstance(item, list):
            if item is not None:
                yield f"{jpath}.{key}", item
            return
        if not item:
            self._add(f"{jpath}.{key}", "empty array: omit the element instead (ele-1)")
        partner = parent.get(key[1:]) if key.startswith("_") else None
        if isinstance(partner, list) and len(partner) != len(item):
            self._add(f"{jpath}.{key}", f"{key} has {len(item)} entries but {key[1:]} has {len(partner)}")
        for index, val in enumerate(item):
            if val is not None:  # nulls align primitives with their extensions; the schema judges the rest
                yield f"{jpath}.{key}[{index}]", val

    def _value(self, val: Any, ed: dict, code: str, tname: str, vpath: str, resource: dict) -> None:
        """Check one value: its type, binding, reference target and the element's own invariants."""
        if self.defs.is_primitive(code):
            self._primitive(val, code, vpath)
        else:
            self._typed(val, ed, code, tname, vpath, resource)
        self._binding(val, ed, code, vpath)
        self._target(val, ed, code, vpath, resource)
        base = code if ed["path"].endswith("[x]") else ed["path"]
        own = {"constraint": [c for c in ed.get("constraint", []) if c.get("source") != SD_BASE + code]}
        self._invariants(val, base, own, vpath, resource)

    def _primitive(self, val: Any, code: str, vpath: str) -> None:
        """Check what the schema cannot: integers are whole numbers within their range."""
        number = isinstance(val, int | float) and not isinstance(val, bool)
        if code in INTEGER_MIN and number and (isinstance(val, float) or not INTEGER_MIN[code] <= val < 2**31):
            self._add(vpath, f"not a valid {code}: {val!r}")

    def _typed(self, val: Any, ed: dict, code: str, tname: str, vpath: str, resource: dict) -> None:
        """Descend into a resource, a content reference, a backbone element or a data type."""
        if code in ("Resource", "DomainResource") or code in self.defs.resource_types:
            if isinstance(val, dict):
                self.roots[id(val)] = (self.roots.get(id(resource), resource) if ed["path"].endswith(".contained")
                                       else val)
                self._resource(val, vpath)
        elif ed.get("contentReference"):
            self._complex(val, tname, ed["contentReference"].split("#", 1)[1], vpath, resource)
        elif ed["path"] in self.defs.types[tname]["children"]:
            self._complex(val, tname, ed["path"], vpath, resource)
        elif code in self.defs.types:
            self._complex(val, code, code, vpath, resource)
            self._invariants(val, code, self.defs.types[code]["elements"][code], vpath, resource)

    def _binding(self, val: Any, ed: dict, code: str, vpath: str) -> None:
        """Check a value against a required binding whose value set expands offline."""
        binding = ed.get("binding", {})
        if binding.get("strength") != "required" or "valueSet" not in binding:
            return
        allowed = self.defs.expand(binding["valueSet"])
        if allowed is None:
            return
        if code == "CodeableReference" and isinstance(val, dict):
            val, code, vpath = val.get("concept"), "CodeableConcept", vpath + ".concept"
        if code in STRING_TYPES and isinstance(val, str):
            if val in {c for _, c in allowed}:
                return
            shown = repr(val)
        elif isinstance(val, dict) and code in ("Coding", "CodeableConcept"):
            codings = [val] if code == "Coding" else [c for c in val.get("coding", []) if isinstance(c, dict)]
            if any((c.get("system"), c.get("code")) in allowed for c in codings):
                return
            shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings) or "no coding"
        else:
            return
        codes = sorted({c for _, c in allowed})
        listing = f" (allowed: {' | '.join(codes)})" if len(codes) <= 12 else ""
        url = binding["valueSet"].split("|", 1)[0]
        self._add(vpath, f"code {shown} is not in the required value set {url}{listing}")

    def _target(self, val: Any, ed: dict, code: str, vpath: str, resource: dict) -> None:
        """Check that a literal reference points to a resource type the element allows."""
        if code == "CodeableReference" and isinstance(val, dict):
            val, vpath = val.get("reference"), vpath + ".reference"
        elif code != "Reference":
            return
        if not isinstance(val, dict) or not isinstance(val.get("reference"), str):
            return
        profiles: list[str] = next((t.get("targetProfile", []) for t in ed.get("type", []) if t["code"] == code), [])
        allowed = sorted({p.rsplit("/", 1)[-1] for p in profiles})
        if not allowed or "Resource" in allowed:
            return
        ref = val["reference"]
        if ref.startswith("#"):
            contained = [r for r in resource.get("contained", []) if isinstance(r, dict) and r.get("id") == ref[1:]]
            target = contained[0].get("resourceType") if contained else None
        else:
            match = REFERENCE.match(ref)
            target = match.group(1) if match else None
        if target and target not in allowed:
            message = f"a reference to {target} is not allowed here (allowed: {', '.join(allowed)})"
            self._add(f"{vpath}.reference", message)

    def _invariants(self, val: Any, base: str, ed: dict, vpath: str, resource: dict) -> None:
        """Evaluate the FHIRPath invariants an element definition lists, on one node."""
        for constraint in ed.get("constraint", []):
            key = constraint.get("key")
            if key in SKIPPED_CONSTRAINTS or not constraint.get("expression"):
                continue
            try:
                if key in NATIVE_CONSTRAINTS:
                    ok = NATIVE_CONSTRAINTS[key](val)
                else:
                    ok = _holds(constraint["expression"], val, base, resource, self.roots.get(id(resource), self.root))
            except Exception as exc:  # fhirpathpy raises plain Exceptions for what it lacks
                self._add(vpath, f"constraint {key} could not be evaluated: {exc}", "warning")
                continue
            if not ok:
                severity = "warning" if constraint.get("severity") == "warning" else "error"
                self._add(vpath, f"constraint {key} failed: {constraint.get('human', '')}", severity)


def _holds(expression: str, val: Any, base: str, resource: dict, root: dict) -> bool:
    """Whether an invariant holds on one node, that is evaluates to a single true."""
    from fhirpathpy.engine.nodes import ResourceNode

    compiled = _compiled(expression)
    if isinstance(compiled, Exception):
        raise compiled
    node = val if isinstance(val, dict) and "resourceType" in val else ResourceNode.create_node(val, base)
    return compiled(node, {"resource": resource, "rootResource": root}) == [True]


@functools.cache
def _compiled(expression: str) -> Any:
    """A compiled FHIRPath expression, or the exception compiling it raised, so it is parsed once.

    A few core expressions quote with double quotes, which FHIRPath does not allow: retried with single.
    fhirpathpy cannot start with `$this`, and resolve() gives nothing, as other files are out of reach.
    """
    import fhirpathpy
    from fhirpathpy.models import models

    table = {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "htmlChecks": {"fn": lambda inputs: [True], "arity": {0: []}},
        "memberOf": {"fn": _member_of, "arity": {1: ["String"]}},
        "resolve": {"fn": lambda inputs: [], "arity": {0: []}},
    }
    options = {"userInvocationTable": table, "traceFn": lambda *args: None}
    expression = expression.removeprefix("$this.")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # antlr prints its error recovery
            return fhirpathpy.compile(expression, model=models["r5"], options=options)
    except Exception as exc:  # the antlr parser raises plain Exceptions
        return _compiled(expression.replace('"', "'")) if '"' in expression else exc


def _has_value(inputs: list) -> list[bool]:
    """FHIRPath hasValue(), which fhirpathpy lacks: a single primitive value."""
    return [len(inputs) == 1 and not isinstance(inputs[0], dict | list)]


def _period_ok(period: Any) -> bool:
    """per-1 (fhirpathpy lacks low/highBoundary()): a period does not end before it starts."""
    if not isinstance(period, dict):
        return True
    start, end = _boundary(period.get("start"), high=False), _boundary(period.get("end"), high=True)
    return start is None or end is None or start <= end


def _boundary(value: Any, high: bool) -> str | None:
    """The low or high boundary of a date or dateTime as a comparable string; offsets are ignored."""
    match = DATETIME.match(value) if isinstance(value, str) else None
    if not match:
        return None
    fill = ("12", "31", "23", "59", "59", "999") if high else ("01", "01", "00", "00", "00", "000")
    parts = [match.group(1)] + [g or fill[i] for i, g in enumerate(match.groups()[1:])]
    return "{}-{}-{}T{}:{}:{}.{}".format(*parts)


def _ordered(low: Any, high: Any) -> bool:
    """rng-2 and ratrng-2 (fhirpathpy lacks comparable()): low <= high when both share a unit."""
    if not isinstance(low, dict) or not isinstance(high, dict):
        return True
    low_value, high_value = low.get("value"), high.get("value")
    if not (_number(low_value) and _number(high_value)):
        return True
    units = [(q.get("system"), q.get("code")) if q.get("code") else (None, q.get("unit")) for q in (low, high)]
    return units[0] != units[1] or low_value <= high_value


def _number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (int or float, not bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range_ok(node: Any) -> bool:
    """rng-2: a Range's low is not above its high."""
    return not isinstance(node, dict) or _ordered(node.get("low"), node.get("high"))


def _ratio_range_ok(node: Any) -> bool:
    """ratrng-2: a RatioRange's low numerator is not above its high numerator."""
    return not isinstance(node, dict) or _ordered(node.get("lowNumerator"), node.get("highNumerator"))


NATIVE_CONSTRAINTS = {"per-1": _period_ok, "rng-2": _range_ok, "ratrng-2": _ratio_range_ok}


def _member_of(inputs: list, url: str) -> list[bool]:
    """FHIRPath memberOf() for value sets that expand offline; empty (unknown) for the others."""
    allowed = _definitions(PACKAGE_DIR).expand(url)
    if allowed is None or len(inputs) != 1:
        return []
    value = inputs[0]
    if isinstance(value, str):
        return [value in {code for _, code in allowed}]
    if isinstance(value, dict):
        codings = value.get("coding", [value])
        return [any((c.get("system"), c.get("code")) in allowed for c in codings if isinstance(c, dict))]
    return []


def _schema_problems(defs: Definitions, resource: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """The JSON schema's findings as (path, message, kind); cardinality is left to the walker."""
    rtype = resource["resourceType"]
    errors = list(_flatten(defs.validator(rtype).iter_errors(resource)))
    type_paths = {_json_path(rtype, e.absolute_path) for e in errors if e.validator == "type"}
    for error in errors:
        path, kind, inst = _json_path(rtype, error.absolute_path), error.validator, error.instance
        if kind in ("required", "oneOf") or (kind == "type" and inst is None and _aligned_null(error.absolute_path)):
            continue
        if kind == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in set(inst) - known if k[1:] not in known):
                yield f"{path}.{extra}", f"unknown element {extra!r}", kind
        elif kind == "type":
            expected = defs.schema_names.get(id(error.schema), error.validator_value)
            got = "null" if inst is None else f"{_json_kind(inst)} {_short(inst)}"
            yield path, f"wrong JSON type: expected {expected}, got {got}", kind
        elif kind == "pattern" and path not in type_paths:
            if inst == "":
                yield path, "empty string: omit the element instead (ele-1)", kind
            else:
                yield path, f"invalid {defs.schema_names.get(id(error.schema), 'value')} format: {_short(inst)}", kind
        elif kind == "enum":
            yield path, f"code {_short(inst)} is not allowed (one of: {' | '.join(error.validator_value)})", kind
        elif kind != "pattern":
            yield path, error.message[:200], kind


def _flatten(errors: Iterable[Any]) -> Iterator[Any]:
    """Replace a failed oneOf over all resource types by the errors of the resource's own type."""
    for error in errors:
        if error.validator != "oneOf" or not isinstance(error.instance, dict):
            yield error
            continue
        rtype = error.instance.get("resourceType")
        branch = [i for i, s in enumerate(error.validator_value) if s.get("$ref", "").endswith(f"/{rtype}")]
        if branch:
            yield from _flatten(e for e in error.context if e.relative_schema_path[0] == branch[0])
        # no branch: the walker reports the unknown resource type


def _aligned_null(path: Iterable[Any]) -> bool:
    """Whether a null sits inside `_name: [...]`, where it aligns extensions with values."""
    parts = list(path)
    return len(parts) >= 2 and isinstance(parts[-1], int) and str(parts[-2]).startswith("_")


def _json_path(rtype: str, parts: Iterable[Any]) -> str:
    """An element path such as `MedicationKnowledge.definitional.ingredient[0].strengthRatio`."""
    return rtype + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _json_kind(value: Any) -> str:
    """The JSON name of a Python value's type."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    """A value for a message, cut to a readable length."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


if __name__ == "__main__":
    for found in validate_files([pathlib.Path(a) for a in sys.argv[1:]]):
        print(f"{found.severity}: {found}")
