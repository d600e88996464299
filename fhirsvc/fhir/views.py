"""FHIR REST routes: capabilities, read, vread, search, and the operations declared in ``fhir/operations.py``.

The same blueprint serves ``/fhir/R5`` (the knowledge as authored), ``/fhir/R4`` (the R4 view) and
``/fhir`` (R4 unless the client asks for ``fhirVersion=5.0``). The store is read-only, so every write
interaction answers 405.

The operations declared on posted patient data (PHI: ``$validate``, ``$check-orders``) take, under
``FHIRSVC_AUTH=required``, the CDS routes' bearer JWT, verified by the same code (``cds.auth.authenticate``: a
trusted issuer, addressed to the operation's URL under PUBLIC_BASE_URL); the knowledge's routes stay open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request
from werkzeug.sansio.http import is_resource_modified

from fhirsvc.cds.auth import authenticate
from fhirsvc.errors import ApiError, operation_outcome, outcome_issue
from fhirsvc.fhir import capability
from fhirsvc.fhir.base import FhirBase
from fhirsvc.fhir.negotiation import fhir_response, header, negotiate, searchset_response
from fhirsvc.fhir.operations import OPERATIONS, Call, Operation, Route
from fhirsvc.fhir.search import parse_search, read_subset, run_search, subset
from fhirsvc.fhir.validation import MAX_VALIDATE_ISSUES as MAX_VALIDATE_ISSUES  # the limits of $validate, named
from fhirsvc.fhir.validation import MAX_VALIDATE_VALUES as MAX_VALIDATE_VALUES  # where its routes are
from fhirsvc.fhirtypes import now_instant, parse_instant, random_uuid
from fhirsvc.urls import public_base

blueprint = Blueprint("fhir", __name__)
BASES_EXTENSION = "fhirsvc.fhir.bases"


def bases() -> dict[str, FhirBase]:
    return current_app.extensions[BASES_EXTENSION]


def _base(requested: str | None) -> FhirBase:
    return bases()[negotiate(requested)]


def _base_url(base: FhirBase, requested: str | None) -> str:
    """The absolute URL of the base the client called (``/fhir`` or ``/fhir/R4`` ...), under the public URL."""
    return public_base() + ("/fhir/" + requested if requested else "/fhir")


@blueprint.get("/metadata")
def metadata(requested: str | None) -> Response:
    base = _base(requested)
    return fhir_response(capability.capability_statement(base, _base_url(base, requested)), base.name)


@blueprint.get("/<rtype>/<rid>")
def read(requested: str | None, rtype: str, rid: str) -> Response:
    base = _base(requested)
    return _conditional(base, base.resource(rtype, rid))


@blueprint.get("/<rtype>/<rid>/_history/<vid>")
def vread(requested: str | None, rtype: str, rid: str, vid: str) -> Response:
    base = _base(requested)
    resource = base.resource(rtype, rid)
    if resource["meta"]["versionId"] != vid:
        raise ApiError(HTTPStatus.NOT_FOUND, f"{rtype}/{rid} has no version {vid}", "not-found")
    return _conditional(base, resource)


def _conditional(base: FhirBase, resource: Any) -> Response:
    """The resource with ETag and Last-Modified, or 304 when the client's copy is current: werkzeug's reading of
    ``If-None-Match`` (weak comparison, ``*``, RFC 9110 13.1.2) and, without it, ``If-Modified-Since``."""
    etag = f'W/"{resource["meta"]["versionId"]}"'
    http_date, modified = _last_modified(resource["meta"]["lastUpdated"])
    summary, elements = read_subset(request.args.items(multi=True), _strict()) if request.query_string else (None, [])
    if_none_match, if_modified_since = header("If-None-Match"), header("If-Modified-Since")
    # without either header the copy is one the client does not have (werkzeug's answer too, read without parsing)
    if (if_none_match is None and if_modified_since is None) or is_resource_modified(
            http_if_none_match=if_none_match, http_if_modified_since=if_modified_since, etag=etag,
            last_modified=modified):
        response = fhir_response(subset(resource, base.name, summary, elements), base.name, texts=base.texts)
    else:
        response = Response(status=HTTPStatus.NOT_MODIFIED)
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = http_date
    return response


@lru_cache(maxsize=1024)
def _last_modified(last_updated: str) -> tuple[str, datetime]:
    """A ``meta.lastUpdated`` as an HTTP date and as the UTC time werkzeug compares (a few distinct values: file
    times; given as a time, werkzeug does not parse the HTTP date back on every read)."""
    modified = parse_instant(last_updated).astimezone(UTC)
    return format_datetime(modified, usegmt=True), modified


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
    return "handling=strict" in (header("Prefer") or "").replace(" ", "")


def _search(requested: str | None, rtype: str, params: list[tuple[str, str]]) -> Response:
    base = _base(requested)
    base.spec(rtype)
    search = parse_search(base, rtype, params, _strict())
    result = run_search(base, rtype, search)
    url = _base_url(base, requested)
    kept = [(k, v) for k, v in search.used if k != "_offset"]  # the self link: the parameters applied, no other

    def link(relation: str, offset: int) -> dict:
        query = urlencode([*kept, ("_offset", str(offset))] if offset else kept)
        return {"relation": relation, "url": f"{url}/{rtype}" + (f"?{query}" if query else "")}

    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "id": random_uuid(),
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset", "total": result.total, "link": [link("self", search.offset)],
    }
    if search.count and search.offset + search.count < result.total:  # _count=0 (or _summary=count): no paging
        bundle["link"].append(link("next", search.offset + search.count))
    if search.count and search.offset:
        bundle["link"].append(link("previous", max(0, search.offset - search.count)))
    entries: list[tuple[str, Any, str]] = []  # (fullUrl, resource, search mode)
    if search.count:
        entries += [_entry(url, subset(r, base.name, search.summary, search.elements), "match")
                    for r in result.matches]
        entries += [_entry(url, r, "include") for r in result.included]
    notes = ([f"unknown search parameters ignored: {', '.join(search.ignored)}"] if search.ignored else [])
    if notes or search.notes:
        outcome = operation_outcome(issues=[outcome_issue(note, "not-supported", "warning")
                                            for note in [*notes, *search.notes]], resource_id=random_uuid())
        entries.append((f"urn:uuid:{outcome['id']}", outcome, "outcome"))
    return searchset_response(bundle, entries, base.name, base.texts)


def _entry(url: str, resource: Any, mode: str) -> tuple[str, Any, str]:
    return f"{url}/{resource['resourceType']}/{resource['id']}", resource, mode


def operation_view(operation: Operation, route: Route) -> Callable[..., Response]:
    """The view of one route of a declared operation (``fhir/operations.py``)."""

    def view(requested: str | None, rtype: str | None = None, rid: str | None = None) -> Response:
        if operation.patient_data:
            authenticate()  # 401 without a valid token when authentication is required
        base = _base(requested)
        rtype = route.rtype or rtype  # /ValueSet/$expand names its type; /<rtype>/$validate takes it from the URL
        if not operation.on(base.name, None if route.system else rtype):
            raise ApiError(HTTPStatus.NOT_FOUND, f"${operation.name} is not served on FHIR {base.fhir_version}",
                           "not-supported")
        answer = operation.handler(Call(base, _base_url(base, requested), rtype, rid))
        return fhir_response(answer, base.name)

    view.__name__ = operation.endpoint
    return view


for _operation in OPERATIONS:
    for _number, _route in enumerate(_operation.routes()):
        blueprint.add_url_rule(_route.path, endpoint=f"{_operation.endpoint}_{_number}",
                               view_func=operation_view(_operation, _route), methods=list(_operation.methods))
