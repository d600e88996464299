"""One exception tree, turned into an OperationOutcome (FHIR routes) or a JSON error (CDS routes).

    FhirsvcError
     +-- KnowledgeError      bad knowledge files; stops start-up (carries every Problem found)
     +-- ConfigError         a setting that cannot be served safely; stops start-up (the message says which)
     +-- ApiError            a request that cannot be served (status, FHIR issue code, diagnostics)

Foreign exceptions are translated where they happen (``raise ... from exc``); anything left over
becomes a 500 whose body says nothing about the code, while the traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from flask import Flask, Response, json, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from fhirsvc.knowledge.problems import Problem

log = logging.getLogger(__name__)

CDS_PREFIX = "/cds-services"
HTML_PREFIX = "/monographs"  # HTML pages: their errors are HTML too

# FHIR issue-type codes (http://hl7.org/fhir/issue-type) for the HTTP statuses we answer with.
_ISSUE_CODES = {
    HTTPStatus.BAD_REQUEST: "invalid",
    HTTPStatus.UNAUTHORIZED: "login",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not-found",
    HTTPStatus.METHOD_NOT_ALLOWED: "not-supported",
    HTTPStatus.NOT_ACCEPTABLE: "not-supported",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too-costly",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "not-supported",
}


class FhirsvcError(Exception):
    """Base of every error this package raises on purpose."""


class KnowledgeError(FhirsvcError):
    """The knowledge could not be loaded; ``problems`` says which file, element and why."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"invalid knowledge ({len(self.problems)} problem(s)):\n{lines}")


class ConfigError(FhirsvcError):
    """A configuration the service refuses to start with; the message names the setting and the fix."""


class ApiError(FhirsvcError):
    """A request that cannot be served, with the status and FHIR issue code to answer with."""

    def __init__(self, status: HTTPStatus, diagnostics: str, code: str | None = None, fields: dict | None = None):
        super().__init__(diagnostics)
        self.status = HTTPStatus(status)
        self.diagnostics = diagnostics
        self.code = code or _ISSUE_CODES.get(self.status, "processing")
        self.fields = fields  # per-field messages (CDS request validation)


def operation_outcome(diagnostics: str, code: str = "processing", severity: str = "error") -> dict:
    """A minimal OperationOutcome with one issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def error_response(status: HTTPStatus, diagnostics: str, code: str | None = None,
                   fields: dict | None = None) -> Response:
    """Answer an error in the format of the route: CDS JSON error, HTML page or FHIR OperationOutcome."""
    if request.path.startswith(HTML_PREFIX):
        text = f"<!doctype html><title>{status.phrase}</title><h1>{status.phrase}</h1><p>{escape(diagnostics)}</p>"
        return Response(text, status=status, mimetype="text/html")
    if request.path.startswith(CDS_PREFIX):
        body = {"error": status.phrase, "message": diagnostics, **({"fields": fields} if fields else {})}
        mimetype = "application/json"
    else:
        body = operation_outcome(diagnostics, code or _ISSUE_CODES.get(status, "processing"))
        mimetype = "application/fhir+json"
    response = Response(json.dumps(body), status=status, mimetype=mimetype)
    if status == HTTPStatus.UNAUTHORIZED:  # RFC 6750 section 3: say which scheme is expected, and nothing more
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into a well-formed body."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.diagnostics, exc.code, exc.fields)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = HTTPStatus(exc.code or HTTPStatus.INTERNAL_SERVER_ERROR)
        response = error_response(status, exc.description or status.phrase)
        valid_methods = getattr(exc, "valid_methods", None)
        if valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", "exception")
