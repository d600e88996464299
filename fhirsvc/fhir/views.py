"""FHIR REST routes: capabilities, read, vread, search, ValueSet operations, $validate and $check-orders.

The same blueprint serves ``/fhir/R5`` (the knowledge as authored), ``/fhir/R4`` (the R4 view) and
``/fhir`` (R4 unless the client asks for ``fhirVersion=5.0``). The store is read-only, so every write
interaction answers 405.

``$validate`` and ``$check-orders`` are posted patient data (PHI): under ``FHIRSVC_AUTH=required`` they take the
CDS routes' bearer JWT, verified by the same code (``cds.auth.authenticate``: a trusted issuer, addressed to
the operation's URL under PUBLIC_BASE_URL); the knowledge's routes stay open.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from email.utils import format_datetime
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError
from werkzeug.sansio.http import is_resource_modified

from fhirsvc.bodies import json_body
from fhirsvc.cds.auth import authenticate
from fhirsvc.errors import ApiError, operation_outcome, outcome_issue
from fhirsvc.evaluation.environment import Environment
from fhirsvc.fhir import capability, check_orders, terminology_ops
from fhirsvc.fhir.base import FhirBase
from fhirsvc.fhir.bindings import binding_errors
from fhirsvc.fhir.negotiation import fhir_response, negotiate
from fhirsvc.fhir.registry import TypeSpec
from fhirsvc.fhir.search import parse_search, read_subset, run_search, subset
from fhirsvc.fhirtypes import now_instant, parse_instant
from fhirsvc.fhirversion import UnknownResourceType, resource_class
from fhirsvc.knowledge import get_knowledge, get_site_config
from fhirsvc.knowledge.frozen import FrozenDict
from fhirsvc.urls import public_base

blueprint = Blueprint("fhir", __name__)
# $validate lists at most this many errors, then one issue saying how many more there were: a resource of
# repeated mistakes (``"name": [1, 1, ...]``) would otherwise answer an issue, some 200 bytes, per array item.
MAX_VALIDATE_ISSUES = 100
# ... of a resource of at most this many JSON values (objects, arrays and the values in them; larger: 413), so
# that the validation itself, which builds every error before the first is read, stays bounded. The largest
# resource of the knowledge holds some 1,200; a Bundle of a thousand typical resources, some 40,000.
MAX_VALIDATE_VALUES = 50_000
BASES_EXTENSION = "fhirsvc.fhir.bases"


def bases() -> dict[str, FhirBase]:
    return current_app.extensions[BASES_EXTENSION]


def _base(requested: str | None) -> FhirBase:
    return bases()[negotiate(requested)]


def _base_url(base: FhirBase, requested: str | None) -> str:
    """The absolute URL of the base the client called (``/fhir`` or ``/fhir/R4`` ...), under the public URL."""
    return public_base() + ("/fhir/" + requested if requested else "/fhir")


def _spec(base: FhirBase, rtype: str) -> TypeSpec:
    spec = base.specs.get(rtype)
    if spec is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"resource type {rtype} is not served on FHIR {base.fhir_version}",
                       "not-supported")
    return spec


def _resource(base: FhirBase, rtype: str, rid: str) -> FrozenDict:
    _spec(base, rtype)
    resource = base.get(rtype, rid)
    if resource is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"{rtype}/{rid} is not known", "not-found")
    return resource


@blueprint.get("/metadata")
def metadata(requested: str | None) -> Response:
    base = _base(requested)
    return fhir_response(capability.capability_statement(base, _base_url(base, requested)), base.name)


@blueprint.get("/<rtype>/<rid>")
def read(requested: str | None, rtype: str, rid: str) -> Response:
    base = _base(requested)
    return _conditional(base, _resource(base, rtype, rid))


@blueprint.get("/<rtype>/<rid>/_history/<vid>")
def vread(requested: str | None, rtype: str, rid: str, vid: str) -> Response:
    base = _base(requested)
    resource = _resource(base, rtype, rid)
    if resource["meta"]["versionId"] != vid:
        raise ApiError(HTTPStatus.NOT_FOUND, f"{rtype}/{rid} has no version {vid}", "not-found")
    return _conditional(base, resource)


def _conditional(base: FhirBase, resource: Any) -> Response:
    """The resource with ETag and Last-Modified, or 304 when the client's copy is current: werkzeug's reading of
    ``If-None-Match`` (weak comparison, ``*``, RFC 9110 13.1.2) and, without it, ``If-Modified-Since``."""
    etag = f'W/"{resource["meta"]["versionId"]}"'
    http_date = _http_date(resource["meta"]["lastUpdated"])
    summary, elements = read_subset(request.args.items(multi=True), _strict()) if request.query_string else (None, [])
    if is_resource_modified(http_if_none_match=request.headers.get("If-None-Match"),
                            http_if_modified_since=request.headers.get("If-Modified-Since"),
                            etag=etag, last_modified=http_date):
        response = fhir_response(subset(resource, base.name, summary, elements), base.name, texts=base.texts)
    else:
        response = Response(status=HTTPStatus.NOT_MODIFIED)
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = http_date
    return response


@lru_cache(maxsize=1024)
def _http_date(last_updated: str) -> str:
    """A ``meta.lastUpdated`` as an HTTP date (a few distinct values: file times)."""
    return format_datetime(parse_instant(last_updated).astimezone(UTC), usegmt=True)


@blueprint.get("/<rtype>")
def search_get(requested: str | None, rtype: str) -> Response:
    return _search(requested, rtype, list(request.args.items(multi=True)))


@blueprint.post("/<rtype>/_search")
def search_post(requested: str | None, rtype: str) -> Response:
    if request.mimetype != "application/x-www-form-urlencoded" and request.get_data():
        raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                       "POST _search takes application/x-www-form-urlencoded parameters")
    return _search(requested, rtype, [*request.args.items(multi=True), *request.form.items(multi=True)])


def _strict() -> bool:
    """``Prefer: handling=strict``: what the server would ignore is an error instead (FHIR search, "Handling
    Errors")."""
    return "handling=strict" in request.headers.get("Prefer", "").replace(" ", "")


def _search(requested: str | None, rtype: str, params: list[tuple[str, str]]) -> Response:
    base = _base(requested)
    _spec(base, rtype)
    search = parse_search(base, rtype, params, _strict())
    result = run_search(base, rtype, search)
    url = _base_url(base, requested)
    kept = [(k, v) for k, v in search.used if k != "_offset"]  # the self link: the parameters applied, no other

    def link(relation: str, offset: int) -> dict:
        query = urlencode([*kept, ("_offset", str(offset))] if offset else kept)
        return {"relation": relation, "url": f"{url}/{rtype}" + (f"?{query}" if query else "")}

    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset", "total": result.total, "link": [link("self", search.offset)],
    }
    if search.count and search.offset + search.count < result.total:  # _count=0 (or _summary=count): no paging
        bundle["link"].append(link("next", search.offset + search.count))
    if search.count and search.offset:
        bundle["link"].append(link("previous", max(0, search.offset - search.count)))
    entries = []
    if search.count:
        entries += [_entry(url, subset(r, base.name, search.summary, search.elements), "match")
                    for r in result.matches]
        entries += [_entry(url, r, "include") for r in result.included]
    notes = ([f"unknown search parameters ignored: {', '.join(search.ignored)}"] if search.ignored else [])
    if notes or search.notes:
        outcome = operation_outcome(issues=[outcome_issue(note, "not-supported", "warning")
                                            for note in [*notes, *search.notes]], resource_id=str(uuid.uuid4()))
        entries.append({"fullUrl": f"urn:uuid:{outcome['id']}", "resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return fhir_response(bundle, base.name, texts=base.texts)


def _entry(url: str, resource: Any, mode: str) -> dict:
    return {"fullUrl": f"{url}/{resource['resourceType']}/{resource['id']}", "resource": resource,
            "search": {"mode": mode}}


@blueprint.route("/ValueSet/$expand", methods=["GET", "POST"])
@blueprint.route("/ValueSet/<rid>/$expand", methods=["GET", "POST"])
def expand(requested: str | None, rid: str | None = None) -> Response:
    base = _base(requested)
    params = terminology_ops.operation_parameters()
    value_set = _value_set(base, rid, params)
    return fhir_response(terminology_ops.expand(value_set, params), base.name)


@blueprint.route("/ValueSet/$validate-code", methods=["GET", "POST"])
@blueprint.route("/ValueSet/<rid>/$validate-code", methods=["GET", "POST"])
def validate_code(requested: str | None, rid: str | None = None) -> Response:
    base = _base(requested)
    params = terminology_ops.operation_parameters()
    value_set = _value_set(base, rid, params)
    return fhir_response(terminology_ops.validate_code(value_set, params), base.name)


def _value_set(base: FhirBase, rid: str | None, params: dict[str, Any]) -> Any:
    if rid is not None:
        return _resource(base, "ValueSet", rid)
    url = params.get("url")
    if not url:
        raise ApiError(HTTPStatus.BAD_REQUEST, "name the value set: ValueSet/[id]/$... or the url parameter")
    found = [vs for vs in base.of_type("ValueSet") if vs.get("url") == str(url).split("|")[0]]
    if not found:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no value set with url {url}", "not-found")
    return found[0]


@blueprint.post("/<rtype>/$validate")
def validate(requested: str | None, rtype: str) -> Response:
    """Validate a posted resource (or Parameters with a ``resource``) against the base's FHIR version."""
    authenticate()  # 401 without a valid token when authentication is required
    base = _base(requested)
    try:  # every resource type of the base's FHIR version, served or not (an EHR's orders, say)
        model = resource_class(base.name, rtype)
    except UnknownResourceType as exc:
        raise ApiError(HTTPStatus.NOT_FOUND, f"{exc} (FHIR {base.fhir_version})", "not-supported") from None
    body = json_body("application/fhir+json")
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        parameters = body.get("parameter")
        if not isinstance(parameters, list):
            parameters = []
        body = next((p.get("resource") for p in parameters if isinstance(p, dict) and p.get("name") == "resource"),
                    None)
    if not isinstance(body, dict) or body.get("resourceType") != rtype:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"post a {rtype} resource (or Parameters with a resource)")
    if more_values_than(body, MAX_VALIDATE_VALUES):
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the {rtype} holds more than {MAX_VALIDATE_VALUES} JSON "
                       f"values (the service's limit MAX_VALIDATE_VALUES = {MAX_VALIDATE_VALUES})", "too-costly")
    issues = []
    try:
        model.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_context=False, include_input=False):
            path = rtype + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            issues.append(outcome_issue(err["msg"], "structure", expression=[path]))
    # codes in required bindings, against the value sets of the base's FHIR version (fhirsvc/fhir/bindings.py)
    issues += [outcome_issue(error.message, "code-invalid", expression=[error.path])
               for error in binding_errors(base.name, body)]
    if len(issues) > MAX_VALIDATE_ISSUES:
        issues[MAX_VALIDATE_ISSUES:] = [outcome_issue(
            f"{len(issues) - MAX_VALIDATE_ISSUES} more errors are not listed (the service lists at most "
            f"MAX_VALIDATE_ISSUES = {MAX_VALIDATE_ISSUES})", "too-costly")]
    if not issues:
        issues = [outcome_issue(f"valid {rtype} (FHIR {base.fhir_version})", "informational", "information")]
    return fhir_response(operation_outcome(issues=issues), base.name)


def more_values_than(document: Any, limit: int) -> bool:
    """Whether a parsed JSON document holds more than ``limit`` values (counting stops there)."""
    count, stack = 0, [document]
    while stack:
        value = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


@blueprint.post("/$check-orders")
def check_orders_operation(requested: str | None) -> Response:
    """The order checks on a posted Bundle (or Parameters): a searchset Bundle of DetectedIssues."""
    authenticate()  # 401 without a valid token when authentication is required
    base = _base(requested)
    body = json_body("application/fhir+json")
    env = Environment.offline(get_knowledge(), public_base(), site=get_site_config())  # nothing is fetched
    answer = check_orders.check_orders(body, env, base.name, _base_url(base, requested))
    return fhir_response(answer, base.name)
