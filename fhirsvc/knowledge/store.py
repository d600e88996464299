"""The immutable, indexed knowledge store built once at start-up."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from fhirsvc.knowledge.frozen import FrozenDict, freeze
from fhirsvc.ndc import NdcDirectory
from fhirsvc.terminology import ValueSetMatcher, codings, knowledge_keys, ndc_directory, normalize_name

Key = tuple[str, str]  # (resourceType, id)
T = TypeVar("T")


@dataclass(frozen=True)
class Knowledge:
    """Every knowledge resource, by key, canonical URL, code (``system|code``) and name."""

    version: str
    resources: Mapping[Key, FrozenDict]
    files: Mapping[Key, Path]
    by_url: Mapping[str, Key]
    by_code: Mapping[str, tuple[Key, ...]]
    by_name: Mapping[str, tuple[Key, ...]]
    value_sets: Mapping[str, ValueSetMatcher]
    by_type: Mapping[str, tuple[FrozenDict, ...]]  # the resources of each type, in id order
    ndc: NdcDirectory  # every NDC the knowledge names, canonical (resolves unhyphenated 10-digit NDCs)
    _derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def get(self, resource_type: str, resource_id: str) -> Mapping[str, Any] | None:
        """The resource with this type and id, or None."""
        return self.resources.get((resource_type, resource_id))

    def of_type(self, resource_type: str) -> tuple[FrozenDict, ...]:
        """Every resource of one type, in id order."""
        return self.by_type.get(resource_type, ())

    def derived(self, name: str, build: Callable[[Knowledge], T]) -> T:
        """What ``build`` computes from this knowledge (e.g. the checks' drug profiles), computed once and kept:
        the knowledge never changes, so neither does anything derived from it."""
        if name not in self._derived:
            self._derived[name] = build(self)
        return self._derived[name]

    def resolve(self, reference: str) -> Mapping[str, Any] | None:
        """The resource a relative reference (``Type/id``) or canonical URL names, or None."""
        if reference in self.by_url:
            return self.resources[self.by_url[reference]]
        rtype, _, rid = reference.partition("/")
        return self.get(rtype, rid)

    def value_set(self, url: str) -> ValueSetMatcher:
        """The compiled matcher of a knowledge ValueSet (KeyError if the knowledge has none)."""
        return self.value_sets[url.split("|", 1)[0]]

    def counts(self) -> dict[str, int]:
        """Number of resources per type."""
        return dict(sorted(Counter(rtype for rtype, _ in self.resources).items()))

    @classmethod
    def build(cls, version: str, entries: Iterable[tuple[Path, Mapping[str, Any]]]) -> Knowledge:
        """Index resources that have already been validated (unique keys, resolvable references)."""
        resources: dict[Key, FrozenDict] = {}
        files: dict[Key, Path] = {}
        by_url: dict[str, Key] = {}
        by_code: defaultdict[str, list[Key]] = defaultdict(list)
        by_name: defaultdict[str, list[Key]] = defaultdict(list)
        value_set_resources: list[Mapping[str, Any]] = []
        terms: list[tuple[str | None, str | None]] = []
        for path, resource in entries:
            key = (resource["resourceType"], resource["id"])
            resources[key] = resource if isinstance(resource, FrozenDict) else freeze(resource)
            files[key] = path
            if "url" in resource:
                by_url[resource["url"]] = key
                if resource.get("version"):
                    by_url[f"{resource['url']}|{resource['version']}"] = key
            for system, code, name in _terms(resource):
                if code:
                    terms.append((system, code))
                    for code_key in knowledge_keys(system, code):
                        by_code[code_key].append(key)
                if name:
                    by_name[normalize_name(name)].append(key)
            if key[0] == "ValueSet":
                value_set_resources.append(resource)
        ndc = ndc_directory(terms)
        value_sets = {vs["url"]: ValueSetMatcher.from_value_set(vs, ndc) for vs in value_set_resources}
        return cls(
            version=version,
            resources=MappingProxyType(resources),
            files=MappingProxyType(files),
            by_url=MappingProxyType(by_url),
            by_code=MappingProxyType({k: tuple(dict.fromkeys(v)) for k, v in by_code.items()}),
            by_name=MappingProxyType({k: tuple(dict.fromkeys(v)) for k, v in by_name.items()}),
            value_sets=MappingProxyType(value_sets),
            by_type=MappingProxyType({rtype: tuple(resources[key] for key in keys) for rtype, keys in
                                      _group_by_type(sorted(resources)).items()}),
            ndc=ndc,
        )


def _group_by_type(keys: Iterable[Key]) -> dict[str, list[Key]]:
    groups: defaultdict[str, list[Key]] = defaultdict(list)
    for key in keys:
        groups[key[0]].append(key)
    return groups


def _terms(resource: Mapping[str, Any]) -> Iterable[tuple[str | None, str | None, str | None]]:
    """The (system, code, name) triples a resource is found by: product codes, names, value-set members."""
    rtype = resource["resourceType"]
    if rtype in ("MedicationKnowledge", "Medication"):
        code = resource.get("code") or {}
        yield None, None, code.get("text")
        for coding in codings(code):
            yield coding.get("system"), coding.get("code"), coding.get("display")
        for name in resource.get("name") or () if rtype == "MedicationKnowledge" else ():
            yield None, None, name
    elif rtype == "ValueSet":
        for include in (resource.get("compose") or {}).get("include") or ():
            for concept in include.get("concept") or ():
                yield include.get("system"), concept.get("code"), concept.get("display")
                for designation in concept.get("designation") or ():
                    yield None, None, designation.get("value")
