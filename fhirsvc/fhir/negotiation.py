"""Content and version negotiation: JSON only, ``_format``, ``_pretty`` and the ``fhirVersion`` parameter.

FHIR "managing multiple versions": a client names the version with the MIME parameter ``fhirVersion``
(``application/fhir+json; fhirVersion=4.0``); on a versioned base a different version is a 406.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import orjson
from flask import Response, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

from fhirsvc.errors import ApiError
from fhirsvc.fhir.base import compact_json
from fhirsvc.fhir.registry import R4, R5

JSON_TYPES = {"application/fhir+json", "application/json", "application/*", "*/*", "json", "text/json"}
VERSIONS = {"4.0": R4, "4.0.1": R4, "5.0": R5, "5.0.0": R5}
MIME_PARAMETER = {R4: "4.0", R5: "5.0"}


# How closely a media range names what this server sends (the most specific range that matches decides, RFC 9110
# 12.5.1): JSON in any of its names, then ``application/*``, then ``*/*``.
_SPECIFICITY = {"*/*": 0, "application/*": 1}


@lru_cache(maxsize=256)
def _acceptable(header: str) -> tuple[dict[str, str], ...] | None:
    """The parameters of the JSON media ranges an Accept header admits (quality above 0), read with werkzeug's
    Accept parsing; ``None`` when the header admits no JSON (remembered: clients send the same few headers)."""
    ranges = []
    for value, quality in parse_accept_header(header, MIMEAccept):
        mime, params = parse_options_header(value)
        if mime.lower() in JSON_TYPES:
            ranges.append((_SPECIFICITY.get(mime.lower(), 2), quality, params))
    if not ranges:
        return None
    closest = max(specificity for specificity, _, _ in ranges)
    if all(quality == 0 for specificity, quality, _ in ranges if specificity == closest):
        return None  # JSON is named, but as "not acceptable" (q=0)
    return tuple(params for _, quality, params in ranges if quality > 0)


def _argument(name: str) -> str | None:
    """A query parameter, or None: asked by membership first, since werkzeug's ``args.get`` of a missing name
    builds and catches an exception (most requests name neither ``_format`` nor ``_pretty``)."""
    return request.args.get(name) if request.query_string and name in request.args else None


def header(name: str) -> str | None:
    """A request header (not Content-Type or Content-Length), or None: what ``request.headers.get(name)`` gives,
    read from the WSGI environ, where werkzeug's ``headers.get`` of a missing header builds and catches an
    exception (most requests send no ``If-None-Match``, ``Prefer`` or ``Origin``)."""
    return request.environ.get("HTTP_" + name.upper().replace("-", "_"))


def negotiate(fixed: str | None) -> str:
    """The base to answer from (R4 or R5); 406 for a non-JSON format or a version this URL cannot give."""
    wanted_format = _argument("_format")
    return _negotiated(fixed, wanted_format, (header("Accept") or "") if wanted_format is None else "")


@lru_cache(maxsize=256)
def _negotiated(fixed: str | None, wanted_format: str | None, accept: str) -> str:
    """``negotiate`` of a request's ``_format`` and Accept header (remembered: clients send the same few)."""
    if wanted_format is not None and wanted_format.split(";")[0].strip().lower() not in JSON_TYPES:
        raise ApiError(HTTPStatus.NOT_ACCEPTABLE, f"_format={wanted_format} is not supported; this server speaks JSON")
    acceptable = _acceptable(accept) if accept.strip() else ()
    if acceptable is None:
        raise ApiError(HTTPStatus.NOT_ACCEPTABLE,
                       f"cannot answer in {accept}; this server speaks application/fhir+json")
    asked = {params["fhirversion"] for params in acceptable if "fhirversion" in params}
    versions = {VERSIONS.get(v) for v in asked}
    if None in versions:
        raise ApiError(HTTPStatus.NOT_ACCEPTABLE, f"fhirVersion {sorted(asked)} is not served (4.0 or 5.0)")
    if fixed:
        if versions and fixed not in versions:
            raise ApiError(HTTPStatus.NOT_ACCEPTABLE, f"this base serves FHIR {MIME_PARAMETER[fixed]} only")
        return fixed
    return R5 if versions == {R5} else R4


def _spliced(value: Any, texts: Mapping[int, bytes]) -> bytes:
    """Compact JSON (UTF-8) of a response body, reusing the start-up serialization of every served resource in it.

    A served resource alone is its ready-made text. Otherwise each served resource in the body is swapped for a
    marker, the rest written by orjson in one call, and the resources' texts put in the markers' places: one
    join, so a large resource is copied once, and the small rest costs one encoder call, not one per member.
    orjson writes JSON's strings, integers, true, false and null as ``compact_json`` does (``ensure_ascii=False``:
    only ``"``, ``\\`` and control characters escaped, the same way); a float, which it may write otherwise
    (``1e-5`` for ``1e-05``), is swapped for a marker too and written by ``compact_json``."""
    text = texts.get(id(value))
    if text is not None:
        return text
    spliced: list[bytes] = []
    try:
        pieces = orjson.dumps(_swapped(value, texts, spliced)).split(_MARKER_JSON)
    except orjson.JSONEncodeError:  # what orjson does not write (an integer past 64 bits, a key that is no string)
        return compact_json(value).encode()
    if len(pieces) != len(spliced) + 1:  # a marker inside the body's own text: serialize it whole instead
        return compact_json(value).encode()
    parts = [pieces[0]]
    for text, piece in zip(spliced, pieces[1:], strict=True):
        parts += (text, piece)
    return b"".join(parts)


# What stands for a served resource (or a float) while the rest of a body is serialized: a string no request can
# make (a NUL and a value chosen at start-up), so its JSON is found only where a value was swapped out.
_MARKER = f"\0fhirsvc-served-{uuid.uuid4().hex}\0"
_MARKER_JSON = compact_json(_MARKER).encode()


def _swapped(value: Any, texts: Mapping[int, bytes], spliced: list[bytes]) -> Any:
    """A copy of the containers of ``value`` with each served resource (a dict) and each float replaced by the
    marker, its text appended to ``spliced`` in the order the encoder meets them (dicts keep their order)."""
    if isinstance(value, dict):
        text = texts.get(id(value))
        if text is not None:
            spliced.append(text)
            return _MARKER
        return {key: item if isinstance(item, str) else _swapped(item, texts, spliced) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_swapped(item, texts, spliced) for item in value]
    if isinstance(value, float):
        spliced.append(compact_json(value).encode())
        return _MARKER
    return value


def fhir_response(body: Any, version: str, status: int = HTTPStatus.OK, texts: Mapping[int, bytes] | None = None
                  ) -> Response:
    """A FHIR JSON response, pretty when ``_pretty=true``, labelled with its FHIR version. ``texts`` holds the
    ready-made JSON of the base's resources, already encoded, so a read neither serializes nor encodes them
    again."""
    text: str | bytes
    if _pretty():
        text = json.dumps(body, indent=2, ensure_ascii=False)
    elif texts:
        text = _spliced(body, texts)
    else:
        text = compact_json(body)
    return _response(text, version, status)


def searchset_response(head: dict[str, Any], entries: Sequence[tuple[str, Any, str]], version: str,
                       texts: Mapping[int, bytes]) -> Response:
    """A search answer: the Bundle ``head`` (its members but the entries: strings, integers, and lists and objects
    of them, no float) and its ``entries`` as (fullUrl, resource, search mode), written as ``fhir_response``
    writes the Bundle with the entries as its last member. Compact, it is written in pieces joined once: the head
    and each entry's members by orjson (which writes them as ``json.dumps`` does), each resource by ``_spliced``
    (a served one is its start-up text), without walking the Bundle for its served resources."""
    if _pretty() or not entries:
        members = [{"fullUrl": url, "resource": resource, "search": {"mode": mode}} for url, resource, mode in entries]
        return fhir_response({**head, "entry": members} if members else head, version, texts=texts)
    parts = [orjson.dumps(head)[:-1], b',"entry":[']
    for number, (url, resource, mode) in enumerate(entries):
        parts += (b',{"fullUrl":' if number else b'{"fullUrl":', orjson.dumps(url), b',"resource":',
                  _spliced(resource, texts), b',"search":{"mode":', orjson.dumps(mode), b"}}")
    parts.append(b"]}")
    return _response(b"".join(parts), version)


def _pretty() -> bool:
    return (_argument("_pretty") or "").lower() == "true"


def _response(text: str | bytes, version: str, status: int = HTTPStatus.OK) -> Response:
    return Response(text, status=status,
                    content_type=f"application/fhir+json; fhirVersion={MIME_PARAMETER[version]}; charset=utf-8")
