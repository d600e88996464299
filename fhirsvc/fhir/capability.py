"""The CapabilityStatement of a base, generated from the tables that drive routing and search (``registry.py``)
and the operations (``operations.py``)."""

from __future__ import annotations

from typing import Any

from fhirsvc.fhir.base import FhirBase
from fhirsvc.fhir.operations import OPERATIONS, Operation
from fhirsvc.fhirtypes import format_instant

SOFTWARE_VERSION = "0.1.0"


def capability_statement(base: FhirBase, url: str, operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """What this base can do: every served type with its interactions, search parameters and operations."""
    resources = []
    for rtype, spec in base.specs.items():
        references = [p.name for p in spec.references]
        revincludes = sorted(f"{source}:{p.name}" for source, other in base.specs.items()
                             for p in other.references if rtype in p.targets)
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
            "versioning": "versioned",
            "readHistory": False,
            "conditionalRead": "full-support",
        }
        if references:
            entry["searchInclude"] = [f"{rtype}:{name}" for name in references]
        if revincludes:
            entry["searchRevInclude"] = revincludes
        entry["searchParam"] = [
            {"name": p.name, "type": p.type, **({"definition": p.definition} if p.definition else {}),
             "documentation": p.description} for p in spec.params.values()]
        entry["operation"] = _operations(operations, base.name, rtype)
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": f"fhirsvc-{base.name.lower()}",
        "url": f"{url}/metadata",
        "version": SOFTWARE_VERSION,
        "name": f"Fhirsvc{base.name}",
        "title": f"fhirsvc medication knowledge, FHIR {base.fhir_version}",
        "status": "active",
        "experimental": False,
        "date": format_instant(base.built),
        "publisher": "fhirsvc",
        "description": "Read-only FHIR server for computable drug monograph knowledge (anakinra).",
        "kind": "instance",
        "software": {"name": "fhirsvc", "version": SOFTWARE_VERSION},
        "implementation": {"description": f"fhirsvc FHIR {base.fhir_version} base", "url": url},
        "fhirVersion": base.fhir_version,
        "format": ["json", "application/fhir+json"],
        "rest": [{"mode": "server", "resource": resources,
                  "operation": _operations(operations, base.name, None)}],
    }


def _operations(operations: tuple[Operation, ...], version: str, rtype: str | None) -> list[dict[str, str]]:
    """The operations served on a base of ``version``: at system level (``rtype`` None) or for a type."""
    return [{"name": op.name, "definition": op.definition} for op in operations if op.on(version, rtype)]
