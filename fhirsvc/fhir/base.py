"""A FHIR base (R4 or R5): its resources with meta, and the search index built once at start-up."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fhirsvc.errors import ApiError
from fhirsvc.fhir.registry import FHIR_VERSIONS, SearchParam, TypeSpec, type_specs
from fhirsvc.fhirtypes import format_instant, parse_instant
from fhirsvc.knowledge.frozen import FrozenDict, freeze
from fhirsvc.ndc import EMPTY_DIRECTORY, NDC, NdcDirectory
from fhirsvc.terminology import knowledge_keys, ndc_directory

Key = tuple[str, str]


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a string, as FHIR string search compares."""
    if text.isascii():  # nothing to decompose
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def walk(node: Any, path: str, resolve: Callable[[str], Any]) -> list[Any]:
    """The values at a dotted path (arrays flattened); ``->`` resolves references and walks on."""
    hops = path.split("->")
    nodes = [node]
    for number, hop in enumerate(hops):
        if number:
            nodes = [target for ref in nodes if isinstance(ref, str) and (target := resolve(ref)) is not None]
        for step in hop.split("."):
            found: list[Any] = []
            for item in nodes:
                value = item.get(step) if isinstance(item, Mapping) else None
                if isinstance(value, (list, tuple)):
                    found.extend(value)
                elif value is not None:
                    found.append(value)
            nodes = found
    return nodes


@dataclass(frozen=True)
class Token:
    """One token value: a coding (system, code) or a bare code; ``text`` for the :text modifier."""

    system: str | None
    code: str | None
    text: str | None = None


def tokens(value: Any) -> list[Token]:
    """Token values of a primitive, Coding, CodeableConcept or Identifier."""
    if isinstance(value, str):
        return [Token(None, value)]
    if not isinstance(value, Mapping):
        return []
    if "coding" in value or "text" in value:
        found = [Token(c.get("system"), c.get("code"), c.get("display")) for c in value.get("coding") or ()]
        return found + ([Token(None, None, value["text"])] if value.get("text") else [])
    if "value" in value and "system" in value:
        return [Token(value.get("system"), value.get("value"))]
    return [Token(value.get("system"), value.get("code"), value.get("display"))]


def index_values(param: SearchParam, raw: list[Any]) -> tuple[Any, ...]:
    """What a parameter compares against, prepared once: tokens, folded strings, references, instants."""
    if param.type == "token":
        return tuple(t for value in raw for t in tokens(value))
    if param.type == "string":
        return tuple((value, fold(value)) for value in raw if isinstance(value, str))
    if param.type == "date":
        return tuple(parse_instant(value) for value in raw if isinstance(value, str))
    return tuple(value for value in raw if isinstance(value, str))


# json.dumps with these arguments builds this encoder anew on every call; built once, a short value costs a tenth.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact_json(value: Any) -> str:
    """JSON without insignificant whitespace, UTF-8 text kept as is (what ``json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))`` writes)."""
    return _COMPACT.encode(value)


@dataclass(frozen=True)
class TokenLookup:
    """The resources of one token parameter by code: ``codes`` maps each code of a token to the ids holding it,
    ``ndc_keys`` each index key of an NDC token (``terminology.knowledge_keys``) to the ids holding it."""

    codes: Mapping[str, frozenset[str]]
    ndc_keys: Mapping[str, frozenset[str]]

    @classmethod
    def build(cls, indexed: Mapping[str, tuple[Any, ...]]) -> TokenLookup:
        codes: dict[str, set[str]] = {}
        ndc_keys: dict[str, set[str]] = {}
        for rid, values in indexed.items():
            for token in values:
                if token.code is None:  # a text alone: no code to match
                    continue
                codes.setdefault(token.code, set()).add(rid)
                if token.system == NDC:
                    for key in knowledge_keys(NDC, token.code):
                        ndc_keys.setdefault(key, set()).add(rid)
        return cls({code: frozenset(ids) for code, ids in codes.items()},
                   {key: frozenset(ids) for key, ids in ndc_keys.items()})


def version_id(resource: Mapping[str, Any]) -> str:
    """The resource's version: a short hash of its content, stable across restarts, new when it changes."""
    body = json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class FhirBase:
    """The resources one base serves, by type and id, with their search index."""

    name: str  # "R4" | "R5"
    fhir_version: str
    specs: Mapping[str, TypeSpec]
    resources: Mapping[Key, FrozenDict]
    ids: Mapping[str, tuple[str, ...]]
    index: Mapping[tuple[str, str], Mapping[str, tuple[Any, ...]]]
    built: datetime
    texts: Mapping[int, bytes]  # id(resource) -> its compact JSON in UTF-8, serialized once at start-up
    ndc: NdcDirectory = field(default=EMPTY_DIRECTORY)  # the NDCs the token indexes hold (search by any NDC form)
    # (type, token parameter) -> the ids of the resources holding each code, and each NDC index key
    by_code: Mapping[tuple[str, str], TokenLookup] = field(default_factory=dict)

    @classmethod
    def build(cls, name: str, resources: Mapping[Key, Mapping[str, Any]],
              provenance: Mapping[Key, tuple[str, datetime]]) -> FhirBase:
        """Add ``meta.versionId``/``lastUpdated`` (from ``provenance``) and index every search parameter.

        A served resource is a new top-level object around the elements of the (frozen) resource itself: the
        read-only elements are shared, not copied, so a base costs little memory and time beyond its meta."""
        served: dict[Key, FrozenDict] = {}
        for key, resource in resources.items():
            frozen = resource if isinstance(resource, FrozenDict) else freeze(resource)
            vid, updated = provenance[key]
            body = {k: v for k, v in frozen.items() if k not in ("resourceType", "id")}
            body["meta"] = FrozenDict({**frozen.get("meta", {}), "versionId": vid,
                                       "lastUpdated": format_instant(updated)})
            served[key] = FrozenDict({"resourceType": frozen["resourceType"], "id": frozen["id"], **body})
        specs = type_specs(name, {rtype for rtype, _ in served})
        ids = {rtype: tuple(sorted(rid for t, rid in served if t == rtype)) for rtype in specs}

        def resolve(reference: str) -> FrozenDict | None:
            rtype, _, rid = reference.partition("/")
            return served.get((rtype, rid))

        index = {}
        for rtype, spec in specs.items():
            for param in spec.params.values():
                index[(rtype, param.name)] = {
                    rid: index_values(param, [v for path in param.paths[name]
                                              for v in walk(served[(rtype, rid)], path, resolve)])
                    for rid in ids[rtype]}
        texts = {id(resource): compact_json(resource).encode() for resource in served.values()}
        ndc = ndc_directory((t.system, t.code) for values in index.values() for indexed in values.values()
                            for t in indexed if isinstance(t, Token))
        by_code = {key: TokenLookup.build(values) for key, values in index.items()
                   if specs[key[0]].params[key[1]].type == "token"}
        return cls(name, FHIR_VERSIONS[name], specs, served, ids, index, datetime.now(UTC), texts, ndc, by_code)

    def get(self, rtype: str, rid: str) -> FrozenDict | None:
        return self.resources.get((rtype, rid))

    def spec(self, rtype: str) -> TypeSpec:
        """The served type; 404 (not-supported) when this base does not serve it."""
        spec = self.specs.get(rtype)
        if spec is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"resource type {rtype} is not served on FHIR {self.fhir_version}",
                           "not-supported")
        return spec

    def resource(self, rtype: str, rid: str) -> FrozenDict:
        """The served resource; 404 when its type is not served or its id is not known."""
        self.spec(rtype)
        resource = self.get(rtype, rid)
        if resource is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"{rtype}/{rid} is not known", "not-found")
        return resource

    def last_updated(self, resource: Mapping[str, Any]) -> datetime:
        return parse_instant(resource["meta"]["lastUpdated"])

    def of_type(self, rtype: str) -> Iterable[FrozenDict]:
        return (self.resources[(rtype, rid)] for rid in self.ids.get(rtype, ()))
