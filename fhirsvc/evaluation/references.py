"""Medication references, resolved in this one place (contract "Recognising a medication").

An order or a medication record names its Medication by ``medicationReference`` (R5: ``medication.reference``).
The reference is looked for, in this order:

1. ``contained``: ``#id`` names a resource contained in the order itself;
2. the same Bundle (the draft orders' Bundle, or the Bundle posted to ``$check-orders``): an entry whose
   ``fullUrl`` is the reference (``urn:uuid:...`` or an absolute URL), else the Medication of that ``Type/id``
   (a relative reference, or the last two segments of an absolute one);
3. prefetch: the Medications held in the ``medications`` and ``statements`` values, the same way;
4. the FHIR server (a relative or absolute reference, never a ``urn:``), bounded, only when the caller gives a
   way to fetch.

The result maps ``recognition.medication_reference_key`` of each resolved record to its Medication; a reference
left unresolved is not there, and the checks read the reference's ``display`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fhirsvc.checks.reading.resources import is_object
from fhirsvc.checks.recognition import medication_reference, medication_reference_key
from fhirsvc.errors import FhirsvcError

log = logging.getLogger(__name__)

Resource = Mapping[str, Any]
MAX_FETCHED = 20  # most Medications read from the FHIR server in one call
_FETCH_THREADS = 5


def type_and_id(reference: str) -> str:
    """``Type/id`` of a relative or absolute reference (``.../Medication/1/_history/2`` -> ``Medication/1``)."""
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:])


@dataclass
class MedicationPool:
    """The Medications of one Bundle (or of the prefetch values), by ``fullUrl`` and by ``Type/id``."""

    by_url: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of_entries(cls, entries: Any) -> MedicationPool:
        """The pool of a Bundle's ``entry`` array (anything else holds none)."""
        pool = cls()
        for entry in entries if isinstance(entries, list) else ():
            resource = entry.get("resource") if is_object(entry) else None
            if isinstance(resource, dict) and resource.get("resourceType") == "Medication":
                pool.add(resource, entry.get("fullUrl"))
        return pool

    @classmethod
    def of_resources(cls, resources: Iterable[Mapping[str, Any]]) -> MedicationPool:
        pool = cls()
        for resource in resources:
            if isinstance(resource, dict) and resource.get("resourceType") == "Medication":
                pool.add(resource, None)
        return pool

    def add(self, medication: dict[str, Any], full_url: Any) -> None:
        if isinstance(full_url, str) and full_url:
            self.by_url.setdefault(full_url, medication)
        if isinstance(medication.get("id"), str):
            self.by_id.setdefault(f"Medication/{medication['id']}", medication)

    def find(self, reference: str) -> dict[str, Any] | None:
        found = self.by_url.get(reference)
        if found is None and not reference.startswith("urn:"):
            found = self.by_id.get(type_and_id(reference))
        return found


def bundle_medications(value: Any) -> MedicationPool:
    """The Medications a Bundle (or a single Medication) holds in itself, by fullUrl and ``Type/id``."""
    if not isinstance(value, Mapping):
        return MedicationPool()
    if value.get("resourceType") == "Medication":
        return MedicationPool.of_resources([value])
    return MedicationPool.of_entries(value.get("entry")) if value.get("resourceType") == "Bundle" else MedicationPool()


def _contained(record: Resource, target: str) -> dict[str, Any] | None:
    contained = record.get("contained")
    for resource in contained if isinstance(contained, list) else ():
        if isinstance(resource, dict) and resource.get("id") == target[1:]:
            return resource
    return None


def resolve_medications(records: Iterable[Resource], pools: Iterable[MedicationPool],
                        fetch: Callable[[str], dict[str, Any]] | None = None,
                        known: Mapping[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The Medications the ``records`` (orders, medication records) name, by ``medication_reference_key``:
    ``known`` ones, contained, in the ``pools`` (the same Bundle first, then prefetch), else read with ``fetch``
    (the FHIR server's GET; None: nothing is fetched), at most MAX_FETCHED of them. ``pools`` is read only for a
    reference that is not contained, once: it may be a generator that gathers them then."""
    searched: list[MedicationPool] | None = None
    resolved: dict[str, dict[str, Any]] = dict(known or {})
    wanted: dict[str, str] = {}  # key -> reference to fetch
    for record in records:
        key = medication_reference_key(record)
        if key is None or key in resolved:
            continue
        target = str(medication_reference(record)["reference"])
        if target.startswith("#"):
            found = _contained(record, target)
        else:
            searched = list(pools) if searched is None else searched
            found = next((m for pool in searched if (m := pool.find(target)) is not None), None)
        if found is not None:
            resolved[key] = dict(found)
        elif not target.startswith(("#", "urn:")):
            wanted.setdefault(key, target)
    if wanted and fetch is not None:
        resolved.update(_fetched(list(wanted.items())[:MAX_FETCHED], fetch))
    return resolved


def _fetched(wanted: list[tuple[str, str]], fetch: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as threads:
        for key, future in [(key, threads.submit(fetch, target)) for key, target in wanted]:
            try:
                medication = future.result()
            except FhirsvcError as exc:  # the fetch failed (FetchError): the reference stays unresolved
                log.info("medicationReference not resolved: %s", exc)
                continue
            if medication.get("resourceType") == "Medication":
                out[key] = medication
    return out


def names_elsewhere(records: Iterable[Resource]) -> bool:
    """Whether one of the records names its Medication by a reference that is not contained (not ``#id``): the only
    kind that is looked for in a Bundle or the prefetch (so their Medications are gathered only then)."""
    for record in records:
        target = medication_reference(record).get("reference")
        if isinstance(target, str) and target and not target.startswith("#"):
            return True
    return False


def unresolved(records: Iterable[Resource], referenced: Mapping[str, Any]) -> list[Resource]:
    """The records whose medication reference could still be read from the FHIR server (not contained, not a
    ``urn:``) and is not resolved yet."""
    out = []
    for record in records:
        key = medication_reference_key(record)
        target = medication_reference(record).get("reference")
        if key is not None and key not in referenced and not str(target).startswith(("#", "urn:")):
            out.append(record)
    return out
