"""ValueSet ``$expand`` and ``$validate-code`` over the knowledge's value sets.

Members are the explicit concepts of ``compose.include``; includes that select codes by a regex filter
(ICD-10-CM ranges) cannot be enumerated without the code system, so ``$expand`` lists them as
``expansion.parameter`` entries while ``$validate-code`` evaluates them.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import request

from fhirsvc.bodies import json_body
from fhirsvc.errors import ApiError
from fhirsvc.fhir.base import fold
from fhirsvc.fhirtypes import now_instant
from fhirsvc.knowledge import get_knowledge
from fhirsvc.terminology import ValueSetMatcher, knowledge_keys, lookup_keys

if TYPE_CHECKING:
    from fhirsvc.fhir.base import FhirBase
    from fhirsvc.fhir.operations import Call

MAX_EXPANSION = 1000


def operation_parameters() -> dict[str, Any]:
    """Operation inputs from the query (GET) or a Parameters body (POST), by name."""
    params: dict[str, Any] = dict(request.args.items())
    if request.method == "POST":
        body = json_body("application/fhir+json")
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise ApiError(HTTPStatus.BAD_REQUEST, "POST a Parameters resource")
        items = body.get("parameter") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Parameters.parameter must be a list of objects")
        for item in items:
            value = next((v for k, v in item.items() if k.startswith("value")), None)
            if isinstance(item.get("name"), str) and value is not None:
                params[item["name"]] = value
    return params


def expand_call(call: Call) -> dict[str, Any]:
    """``ValueSet/$expand`` and ``ValueSet/[id]/$expand``."""
    params = operation_parameters()
    return expand(_value_set(call.base, call.rid, params), params)


def validate_code_call(call: Call) -> dict[str, Any]:
    """``ValueSet/$validate-code`` and ``ValueSet/[id]/$validate-code``."""
    params = operation_parameters()
    return validate_code(_value_set(call.base, call.rid, params), params)


def _value_set(base: FhirBase, rid: str | None, params: dict[str, Any]) -> Any:
    """The value set of the path's id, or else of the ``url`` parameter; 400 if neither is given, 404 if unknown."""
    if rid is not None:
        return base.resource("ValueSet", rid)
    url = params.get("url")
    if not url:
        raise ApiError(HTTPStatus.BAD_REQUEST, "name the value set: ValueSet/[id]/$... or the url parameter")
    found = [vs for vs in base.of_type("ValueSet") if vs.get("url") == str(url).split("|")[0]]
    if not found:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no value set with url {url}", "not-found")
    return found[0]


def _integer(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a JSON number such as 1e999
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be an integer, not {value!r}") from exc
    if number < 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must not be negative")
    return number


def expand(value_set: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The value set with an ``expansion``, narrowed by ``filter`` and paged by ``offset``/``count``."""
    offset = _integer(params, "offset", 0)
    count = min(_integer(params, "count", MAX_EXPANSION), MAX_EXPANSION)
    wanted = fold(str(params.get("filter", "")))
    contains, unexpanded = [], []
    for include in (value_set.get("compose") or {}).get("include") or ():
        system = include.get("system")
        for concept in include.get("concept") or ():
            names = [concept["code"], concept.get("display", ""), *(d.get("value", "") for d in
                                                                      concept.get("designation") or ())]
            if not wanted or any(wanted in fold(name) for name in names):
                entry = {"system": system, "code": concept["code"]}
                if concept.get("display"):
                    entry["display"] = concept["display"]
                contains.append(entry)
        unexpanded += [f"{system} code matching {f['value']}" for f in include.get("filter") or ()]
    parameters = [{"name": "offset", "valueInteger": offset}, {"name": "count", "valueInteger": count}]
    if wanted:
        parameters.append({"name": "filter", "valueString": str(params["filter"])})
    parameters += [{"name": "not-enumerated", "valueString": text} for text in unexpanded]
    expansion = {"identifier": f"urn:uuid:{uuid.uuid4()}",
                 "timestamp": now_instant(),
                 "total": len(contains), "offset": offset, "parameter": parameters}
    if contains[offset:offset + count]:
        expansion["contains"] = contains[offset:offset + count]
    return {**value_set, "expansion": expansion}


def validate_code(value_set: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Parameters ``result`` (and ``display`` or ``message``): is the code a member of the value set?"""
    coding = params.get("coding")
    if isinstance(coding, dict):
        system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
    else:
        system, code, display = params.get("system"), params.get("code"), params.get("display")
    if not code:
        raise ApiError(HTTPStatus.BAD_REQUEST, "give code (with system) or coding")
    ndc = get_knowledge().ndc  # an NDC in any form (fhirsvc.ndc), 10-digit ones read against the knowledge's
    matcher = ValueSetMatcher.from_value_set(value_set, ndc)
    member = matcher.has_code(system, str(code))
    result: list[dict[str, Any]] = [{"name": "result", "valueBoolean": member}]
    wanted = set(lookup_keys(system, str(code), ndc))
    known = next((c.get("display") for inc in (value_set.get("compose") or {}).get("include") or ()
                  if inc.get("system") == system for c in inc.get("concept") or ()
                  if c["code"] == code or not wanted.isdisjoint(knowledge_keys(system, c["code"]))), None)
    if known:
        result.append({"name": "display", "valueString": known})
    if not member:
        result.append({"name": "message",
                       "valueString": f"{system or '(no system)'}|{code} is not in {value_set.get('url')}"})
    elif display and known and fold(str(display)) != fold(known):
        result.append({"name": "message", "valueString": f"display {display!r} differs from {known!r}"})
    return {"resourceType": "Parameters", "parameter": result}
