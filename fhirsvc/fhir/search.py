"""FHIR search over a base: parameter parsing, matching, sorting, paging, _include/_revinclude, _summary.

Matching follows the FHIR search rules for the types we serve: token (``code``, ``system|code``,
``|code``, ``system|``, ``:text``, ``:not``), string (starts-with, ``:exact``, ``:contains``; case- and
accent-insensitive), reference (``Type/id``, ``id``, absolute URL), uri (exact), date (prefixes eq ne
gt lt ge le sa eb ap, at the precision given). Comma-separated values are ORed, repeated parameters
ANDed; ``:missing`` works on every parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from http import HTTPStatus
from typing import Any

from fhirsvc.errors import ApiError
from fhirsvc.fhir.base import FhirBase, Token, TokenLookup, fold
from fhirsvc.fhir.registry import R5, SearchParam
from fhirsvc.fhirtypes import date_bounds, parse_instant
from fhirsvc.fhirversion import r4b_class, r5_class
from fhirsvc.knowledge.frozen import FrozenDict
from fhirsvc.ndc import EMPTY_DIRECTORY, NDC, NdcDirectory
from fhirsvc.terminology import knowledge_keys

DEFAULT_COUNT = 50
MAX_COUNT = 500
SUMMARY_MODES = ("true", "false", "text", "data", "count")
TOTAL_MODES = ("none", "estimate", "accurate")  # every total given is accurate: the store is in memory
SORT_COMMON = ("_id", "_lastUpdated")
# Parameters that shape the answer rather than select resources; _format/_pretty are handled by the views.
RESULT_PARAMS = {"_count", "_offset", "_sort", "_summary", "_elements", "_include", "_revinclude", "_total",
                 "_totalMethod", "_format", "_pretty"}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}
_DATE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                   r"(Z|[+-]\d{2}:\d{2})?)?)?)?)$")


def bad_request(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, message)


@dataclass
class SearchRequest:
    """A parsed search: selection criteria plus the result controls."""

    criteria: list[tuple[SearchParam, str | None, list[str]]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (parameter, descending)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    includes: list[tuple[str, str]] = field(default_factory=list)  # (type, param)
    revincludes: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # unknown parameters, reported as an outcome
    notes: list[str] = field(default_factory=list)  # other parts of the request left unused, reported likewise
    used: list[tuple[str, str]] = field(default_factory=list)  # the parameters applied, for the self link


@dataclass
class SearchResult:
    matches: list[FrozenDict]
    total: int
    included: list[FrozenDict]


def parse_search(base: FhirBase, rtype: str, params: Sequence[tuple[str, str]], strict: bool) -> SearchRequest:
    """Parse query/form parameters; unknown ones are ignored (or a 400 when ``strict``)."""
    spec = base.specs[rtype]
    request = SearchRequest()
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if name in RESULT_PARAMS:
            applied = _parse_result_param(base, rtype, request, name, value, strict)
            if applied is not None:
                request.used.append((raw_name, applied))
        elif name in spec.params:
            param = spec.params[name]
            _check_modifier(param, modifier or None)
            values = [v for v in value.split(",") if v != ""] if modifier != "missing" else [value]
            if not values:
                raise bad_request(f"parameter {raw_name} has no value")
            request.criteria.append((param, modifier or None, values))
            request.used.append((raw_name, value))
        elif strict:
            raise bad_request(f"unknown search parameter {raw_name!r} for {rtype}")
        else:
            request.ignored.append(raw_name)
    if request.summary == "count":  # the count alone, as _count=0: no entries, no paging
        request.count = 0
    return request


MODIFIERS = {"token": frozenset({"text", "not", "missing"}), "string": frozenset({"exact", "contains", "missing"})}
OTHER_MODIFIERS = frozenset({"missing"})  # the modifiers of every other type


def _check_modifier(param: SearchParam, modifier: str | None) -> None:
    if modifier is not None and modifier not in MODIFIERS.get(param.type, OTHER_MODIFIERS):
        raise bad_request(f"modifier :{modifier} is not supported on {param.type} parameter {param.name}")


def _integer(name: str, value: str, minimum: int) -> int:
    if not re.fullmatch(r"\d+", value) or int(value) < minimum:
        raise bad_request(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _parse_result_param(base: FhirBase, rtype: str, request: SearchRequest, name: str, value: str,
                        strict: bool) -> str | None:
    """Apply one result parameter; the value applied (for the self link), or None when nothing of it was."""
    if name == "_count":
        request.count = min(_integer(name, value, 0), MAX_COUNT)
    elif name == "_offset":
        request.offset = _integer(name, value, 0)
    elif name == "_summary":
        if value not in SUMMARY_MODES:
            raise bad_request(f"_summary must be one of {', '.join(SUMMARY_MODES)}, not {value!r}")
        request.summary = None if value == "false" else value
    elif name == "_total":
        if value not in TOTAL_MODES:
            raise bad_request(f"_total must be one of {', '.join(TOTAL_MODES)}, not {value!r}")
    elif name == "_elements":
        return _parse_elements(request, value, strict)
    elif name == "_sort":
        return _parse_sort(base, rtype, request, value, strict)
    elif name in ("_include", "_revinclude"):
        target = _parse_include(base, rtype, name, value)
        if target:
            (request.includes if name == "_include" else request.revincludes).append(target)
        elif strict:
            raise bad_request(f"{name}={value} names no reference search parameter this server supports")
        else:
            request.ignored.append(f"{name}={value}")
            return None
    else:  # _format, _pretty: how the answer is written, not what it holds
        return None
    return value


def _unused(request: SearchRequest, strict: bool, message: str) -> None:
    """A part of the request the server does not apply: 400 under ``Prefer: handling=strict``, else reported."""
    if strict:
        raise bad_request(message)
    request.notes.append(message)


def _parse_elements(request: SearchRequest, value: str, strict: bool) -> str | None:
    """``_elements`` names elements at the root of the resource (FHIR search, "_elements"); a nested path is not
    applied, and said so."""
    names = [e.strip() for e in value.split(",") if e.strip()]
    for nested in [n for n in names if "." in n]:
        _unused(request, strict, f"_elements takes the names of top-level elements; {nested!r} is not applied")
    kept = [n for n in names if "." not in n]
    request.elements += kept
    return ",".join(kept) or None


def _parse_sort(base: FhirBase, rtype: str, request: SearchRequest, value: str, strict: bool) -> str | None:
    """``_sort``: ``_id``, ``_lastUpdated`` or a search parameter of the type, ``-`` to descend; another name is
    not applied, and said so."""
    applied = []
    for key in (k.strip() for k in value.split(",")):
        name = key.removeprefix("-")
        if name in SORT_COMMON or name in base.specs[rtype].params:
            request.sort.append((name, key.startswith("-")))
            applied.append(key)
        elif key:
            _unused(request, strict, f"_sort by {key!r} is not supported for {rtype} (sort by _id, _lastUpdated or "
                    f"a search parameter of the type; - to descend)")
    return ",".join(applied) or None


def read_subset(params: Iterable[tuple[str, str]], strict: bool) -> tuple[str | None, list[str]]:
    """``_summary`` and ``_elements`` of a read (FHIR RESTful API, general parameters): (summary mode, element
    names). ``_summary=count`` belongs to searches; a nested ``_elements`` path is left out (400 when strict)."""
    request = SearchRequest()
    for name, value in params:
        if name == "_summary":
            if value not in SUMMARY_MODES or value == "count":
                raise bad_request(f"_summary on a read must be true, false, text or data, not {value!r}")
            request.summary = None if value == "false" else value
        elif name == "_elements":
            _parse_elements(request, value, strict)
    return request.summary, request.elements


def _parse_include(base: FhirBase, rtype: str, name: str, value: str) -> tuple[str, str] | None:
    """``Source:param[:Target]`` -> (source type, param) when the parameter is a served reference."""
    source, _, rest = value.partition(":")
    param_name = rest.partition(":")[0]
    if name == "_include" and source != rtype:
        return None
    spec = base.specs.get(source)
    param = spec.params.get(param_name) if spec else None
    return (source, param_name) if param is not None and param.type == "reference" else None


def run_search(base: FhirBase, rtype: str, request: SearchRequest) -> SearchResult:
    """Select, sort and page; gather _include/_revinclude resources for the page."""
    ids: Sequence[str] = base.ids.get(rtype, ())
    for param, modifier, values in request.criteria:  # ANDed: each narrows what the one before it kept
        if param.type == "token" and modifier is None and not any("|" in value for value in values):
            holding = _holding_codes(base, base.by_code[(rtype, param.name)], values)
            ids = [rid for rid in ids if rid in holding]
        else:
            indexed = base.index[(rtype, param.name)]
            ids = [rid for rid in ids if _matches(param, modifier, values, indexed[rid], base.ndc)]
    matches = [base.resources[(rtype, rid)] for rid in ids]
    for key, descending in reversed(request.sort):
        matches.sort(key=_sort_key(base, rtype, key), reverse=descending)
    page = matches[request.offset:request.offset + request.count]
    return SearchResult(page, len(matches), _included(base, rtype, page, request))


def _sort_key(base: FhirBase, rtype: str, name: str) -> Callable[[Mapping[str, Any]], Any]:
    """How to order resources by a ``_sort`` name: by id, by lastUpdated, or by the smallest value a search
    parameter indexes for the resource (resources without one after the others in ascending order)."""
    if name == "_id":
        return lambda resource: resource["id"]
    if name == "_lastUpdated":
        return base.last_updated
    indexed = base.index[(rtype, name)]

    def key(resource: Mapping[str, Any]) -> tuple[int, Any]:
        values = sorted(_sortable(value) for value in indexed[resource["id"]])
        return (0, values[0]) if values else (1, "")
    return key


def _sortable(value: Any) -> Any:
    """One indexed value as it sorts: a token by its code (else its text), a string folded, an instant as is."""
    if isinstance(value, Token):
        return value.code or value.text or ""
    if isinstance(value, tuple):  # a string: (original, folded)
        return value[1]
    return value


def _matches(param: SearchParam, modifier: str | None, values: list[str], indexed: tuple[Any, ...],
             ndc: NdcDirectory) -> bool:
    """Whether a resource whose ``indexed`` values of ``param`` are these meets the criterion."""
    if modifier == "missing":
        if values[0] not in ("true", "false"):
            raise bad_request(f"{param.name}:missing must be true or false")
        return (not indexed) == (values[0] == "true")
    found = any(_match_one(param, modifier, value, indexed, ndc) for value in values)
    return not found if modifier == "not" else found


def _match_one(param: SearchParam, modifier: str | None, value: str, indexed: tuple[Any, ...],
               ndc: NdcDirectory = EMPTY_DIRECTORY) -> bool:
    if param.type == "token":
        return _match_token(modifier, value, indexed, ndc)
    if param.type == "string":
        wanted = fold(value)
        if modifier == "exact":
            return any(original == value for original, _ in indexed)
        if modifier == "contains":
            return any(wanted in folded for _, folded in indexed)
        return any(folded.startswith(wanted) for _, folded in indexed)
    if param.type == "reference":
        wanted = "/".join(value.rstrip("/").split("/")[-2:]) if "/" in value else value
        return any(ref == wanted or ("/" not in wanted and ref.endswith("/" + wanted)) for ref in indexed)
    if param.type == "date":
        return _match_date(value, indexed)
    return value in indexed  # uri


def _match_token(modifier: str | None, value: str, indexed: Sequence[Token],
                 ndc: NdcDirectory = EMPTY_DIRECTORY) -> bool:
    if modifier == "text":
        wanted = fold(value)
        return any(t.text and fold(t.text).startswith(wanted) for t in indexed)
    if "|" not in value:
        return any(t.code == value for t in indexed) or _any_same_ndc(indexed, value, ndc)
    system, _, code = value.partition("|")
    if not code:
        return any(t.system == system and t.code for t in indexed)
    if system == NDC:  # an NDC in any form (fhirsvc.ndc)
        return _any_same_ndc(indexed, code, ndc)
    return any(t.code == code and (t.system or "") == system for t in indexed)


def _holding_codes(base: FhirBase, lookup: TokenLookup, values: list[str]) -> set[str]:
    """The ids of the resources a bare code matches (``_match_token`` of a value without ``|``: a token of that
    code, or an NDC token the value names in any NDC form), read from the parameter's lookup, not resource by
    resource."""
    holding: set[str] = set()
    for value in values:
        holding.update(lookup.codes.get(value, ()))
        if lookup.ndc_keys:
            for key in base.ndc.lookup_keys(value):
                holding.update(lookup.ndc_keys.get(key, ()))
    return holding


def _any_same_ndc(indexed: Iterable[Token], sent: str, ndc: NdcDirectory) -> bool:
    """Whether a sent NDC (any form; a product NDC matches its packages) names one of the indexed NDCs (the sent
    one read once, not once per indexed token)."""
    keys: set[str] | None = None
    for token in indexed:
        if token.system != NDC:
            continue
        if token.code == sent:
            return True
        keys = set(ndc.lookup_keys(sent)) if keys is None else keys
        if not keys.isdisjoint(knowledge_keys(NDC, token.code)):
            return True
    return False


def date_range(text: str) -> tuple[str, datetime, datetime]:
    """A search date (with optional prefix) -> (prefix, start, end) covering its precision."""
    match = _DATE.match(text)
    if not match:
        raise bad_request(f"not a FHIR search date: {text!r}")
    prefix, value = match.group(1) or "eq", match.group(2)
    if len(value) <= 10:  # a date, year-month or year: the whole period it names
        bounds = date_bounds(value)
        if bounds is None:
            raise ValueError(f"no such date: {value}")
        start, end, _ = bounds
    else:
        start = parse_instant(value)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        end = start + (timedelta(seconds=1) if value.count(":") >= 2 else timedelta(minutes=1))
    return prefix, start, end


def _match_date(text: str, indexed: Iterable[datetime]) -> bool:
    try:
        prefix, start, end = date_range(text)
        margin = (end - start) / 10 if prefix == "ap" else timedelta(0)
        low, high = start - margin, end + margin
    except (ValueError, OverflowError) as exc:  # OverflowError: past the ends of the calendar (9999-12-31 + 1 day)
        raise bad_request(f"not a valid date: {text!r}") from exc
    tests = {
        "eq": lambda v: start <= v < end, "ne": lambda v: not start <= v < end,
        "gt": lambda v: v >= end, "sa": lambda v: v >= end, "lt": lambda v: v < start, "eb": lambda v: v < start,
        "ge": lambda v: v >= start, "le": lambda v: v < end, "ap": lambda v: low <= v < high,
    }
    return any(tests[prefix](moment) for moment in indexed)


def _included(base: FhirBase, rtype: str, page: list[FrozenDict], request: SearchRequest) -> list[FrozenDict]:
    """Resources named by _include (referenced from the page) and _revinclude (referencing the page)."""
    if not request.includes and not request.revincludes:
        return []
    found: dict[tuple[str, str], FrozenDict] = {}
    on_page = {(r["resourceType"], r["id"]) for r in page}
    for source, param in request.includes:
        for resource in page:
            for ref in base.index[(source, param)][resource["id"]]:
                target_type, _, target_id = ref.partition("/")
                target = base.get(target_type, target_id)
                if target is not None and (target_type, target_id) not in on_page:
                    found[(target_type, target_id)] = target
    wanted = {f"{t}/{i}" for t, i in on_page}
    for source, param in request.revincludes:
        for source_id, refs in base.index[(source, param)].items():
            if wanted.intersection(refs) and (source, source_id) not in on_page:
                found[(source, source_id)] = base.resources[(source, source_id)]
    return list(found.values())


@cache
def _element_flags(version: str, rtype: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, from the fhir.resources model of that version."""
    model = r5_class(rtype) if version == R5 else r4b_class(rtype)
    summary, mandatory = set(), set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("summary_element_property"):
            summary.add(info.alias or name)
        if extra.get("element_required"):
            mandatory.add(info.alias or name)
    return frozenset(summary), frozenset(mandatory)


def subset(resource: Mapping[str, Any], version: str, summary: str | None, elements: list[str]) -> Mapping[str, Any]:
    """Apply _summary (true, text, data) or _elements; a subset is tagged SUBSETTED in meta."""
    if not summary and not elements:
        return resource
    rtype = resource["resourceType"]
    summary_fields, mandatory = _element_flags(version, rtype)
    if summary == "data":
        keep = set(resource) - {"text"}
    elif summary == "text":
        keep = {"id", "meta", "text"} | mandatory
    elif summary == "true":
        keep = set(summary_fields) | mandatory
    else:
        keep = set(elements) | {"id", "meta"} | mandatory
    body = {key: value for key, value in resource.items() if key in keep or key == "resourceType"}
    meta = dict(body.get("meta") or {})
    meta["tag"] = [*meta.get("tag", ()), SUBSETTED]
    body["meta"] = meta
    return body
