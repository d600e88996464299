"""Required bindings for ``$validate``: a code in an element bound with strength ``required`` must be in its value set.

The bindings and the codes of their value sets are those of the FHIR version itself, generated from HL7's published
definitions by tools/bindings/generate.py into ``data/required-bindings-{r4,r5}.json`` (the sources and their
versions are in each file's ``source``). Extensible, preferred and example bindings are not checked, nor the few
required value sets the core package cannot enumerate (each file lists them under ``unchecked``).

A ``code`` must be one of the value set's codes; a Coding, one of its (system, code) pairs (a Coding without a system,
one of its codes); a CodeableConcept must hold such a Coding (FHIR terminologies, "required": the concept SHALL be
from the value set; a CodeableConcept of text alone has none); a CodeableReference, such a concept when it has one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Bindings:
    """The required bindings of one FHIR version: element tree by type, codes by value set."""

    types: Mapping[str, Mapping[str, Mapping[str, Any]]]
    codes: Mapping[str, Mapping[str, frozenset[str]]]  # value set url -> system -> codes
    any_system: Mapping[str, frozenset[str]]  # value set url -> every code, whatever its system


@cache
def bindings(version: str) -> Bindings:
    """The required bindings of ``R4`` or ``R5`` (read once)."""
    data = json.loads((DATA / f"required-bindings-{version.lower()}.json").read_text(encoding="utf-8"))
    codes = {url: {system: frozenset(found) for system, found in systems.items()}
             for url, systems in data["valueSets"].items()}
    return Bindings(data["types"], codes, {url: frozenset().union(*systems.values()) for url, systems in codes.items()})


@dataclass(frozen=True)
class BindingError:
    path: str
    message: str


def binding_errors(version: str, resource: Mapping[str, Any]) -> Iterator[BindingError]:
    """Each code of ``resource`` (already valid in structure) that a required binding does not allow."""
    rtype = resource.get("resourceType")
    if isinstance(rtype, str):
        yield from _walk(bindings(version), rtype, resource, rtype)


def _walk(known: Bindings, container: str, node: Mapping[str, Any], path: str) -> Iterator[BindingError]:
    elements = known.types.get(container)
    if elements is None:
        return
    for name, value in node.items():
        element = elements.get(name)
        if element is None:
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{path}.{name}" + (f"[{index}]" if isinstance(value, list) else "")
            if "valueSet" in element:
                yield from _check(known, element["valueSet"], item, where)
            if not isinstance(item, Mapping):
                continue
            if element.get("resource") and isinstance(item.get("resourceType"), str):
                yield from _walk(known, item["resourceType"], item, where)
            elif "type" in element:
                yield from _walk(known, element["type"], item, where)


def _check(known: Bindings, url: str, value: Any, path: str) -> Iterator[BindingError]:
    if isinstance(value, str):  # a code
        if value not in known.any_system[url]:
            yield BindingError(path, f"{value!r} is not a code of the value set {url} (required binding)")
    elif isinstance(value, Mapping) and "concept" in value:  # a CodeableReference: its concept
        yield from _check(known, url, value["concept"], f"{path}.concept")
    elif isinstance(value, Mapping) and ("coding" in value or "text" in value):  # a CodeableConcept
        codings = [c for c in value.get("coding") or () if isinstance(c, Mapping)]
        if not any(_allowed(known, url, coding) for coding in codings):
            sent = ", ".join(f"{c.get('system', '')}|{c.get('code', '')}" for c in codings) or "text alone"
            yield BindingError(path, f"no coding from the value set {url} (required binding): {sent}")
    elif isinstance(value, Mapping) and "code" in value and not _allowed(known, url, value):  # a Coding
        yield BindingError(path, f"{value.get('system', '')}|{value.get('code')} is not in the value set {url} "
                                     "(required binding)")


def _allowed(known: Bindings, url: str, coding: Mapping[str, Any]) -> bool:
    code, system = coding.get("code"), coding.get("system")
    if not isinstance(code, str):
        return False
    if system is None:
        return code in known.any_system[url]
    return code in known.codes[url].get(system, frozenset())
