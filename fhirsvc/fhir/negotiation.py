"""Content and version negotiation: JSON only, ``_format``, ``_pretty`` and the ``fhirVersion`` parameter.

FHIR "managing multiple versions": a client names the version with the MIME parameter ``fhirVersion``
(``application/fhir+json; fhirVersion=4.0``); on a versioned base a different version is a 406.
"""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, json, request

from fhirsvc.errors import ApiError
from fhirsvc.fhir.registry import R4, R5

JSON_TYPES = {"application/fhir+json", "application/json", "application/*", "*/*", "json", "text/json"}
VERSIONS = {"4.0": R4, "4.0.1": R4, "5.0": R5, "5.0.0": R5}
MIME_PARAMETER = {R4: "4.0", R5: "5.0"}


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    ranges = []
    for part in header.split(","):
        mime, *params = [p.strip() for p in part.split(";")]
        if mime:
            ranges.append((mime.lower(), dict(p.split("=", 1) for p in params if "=" in p)))
    return ranges


def negotiate(fixed: str | None) -> str:
    """The base to answer from (R4 or R5); 406 for a non-JSON format or a version this URL cannot give."""
    wanted_format = request.args.get("_format")
    if wanted_format is not None and wanted_format.split(";")[0].strip().lower() not in JSON_TYPES:
        raise ApiError(HTTPStatus.NOT_ACCEPTABLE, f"_format={wanted_format} is not supported; this server speaks JSON")
    ranges = _media_ranges(request.headers.get("Accept", "")) if wanted_format is None else []
    acceptable = [(mime, params) for mime, params in ranges if mime in JSON_TYPES]
    if ranges and not acceptable:
        raise ApiError(HTTPStatus.NOT_ACCEPTABLE,
                       f"cannot answer in {request.headers['Accept']}; this server speaks application/fhir+json")
    asked = {params["fhirVersion"] for _, params in acceptable if "fhirVersion" in params}
    versions = {VERSIONS.get(v) for v in asked}
    if None in versions:
        raise ApiError(HTTPStatus.NOT_ACCEPTABLE, f"fhirVersion {sorted(asked)} is not served (4.0 or 5.0)")
    if fixed:
        if versions and fixed not in versions:
            raise ApiError(HTTPStatus.NOT_ACCEPTABLE, f"this base serves FHIR {MIME_PARAMETER[fixed]} only")
        return fixed
    return R5 if versions == {R5} else R4


def fhir_response(body: object, version: str, status: int = HTTPStatus.OK) -> Response:
    """A FHIR JSON response, pretty when ``_pretty=true``, labelled with its FHIR version."""
    pretty = request.args.get("_pretty", "false").lower() == "true"
    text = json.dumps(body, indent=2 if pretty else None, ensure_ascii=False,
                      separators=None if pretty else (",", ":"), sort_keys=False)
    return Response(text, status=status,
                    content_type=f"application/fhir+json; fhirVersion={MIME_PARAMETER[version]}; charset=utf-8")
