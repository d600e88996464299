"""The error handlers: every exception becomes a well-formed answer in the format of its route (HTML page, or a
FHIR OperationOutcome: ``application/fhir+json`` on the FHIR routes, ``application/json`` on the CDS routes, as
CDS Hooks 3.0 "Returning OperationOutcome" recommends), with the status the exception carries
(``fhirsvc.errors``)."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, json, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from fhirsvc.errors import FhirsvcError, field_issues, issue_code, operation_outcome, outcome_issue

log = logging.getLogger(__name__)

CDS_PREFIX = "/cds-services"
HTML_PREFIX = ("/monographs", "/rules/")  # HTML pages: their errors are HTML too


def error_response(status: HTTPStatus, diagnostics: str, code: str | None = None,
                   fields: dict | None = None) -> Response:
    """Answer an error in the format of the route: HTML page, or an OperationOutcome whose first issue says what
    went wrong and whose next ones name each bad field (``fields``: CDS request validation)."""
    if request.path.startswith(HTML_PREFIX):
        text = f"<!doctype html><title>{status.phrase}</title><h1>{status.phrase}</h1><p>{escape(diagnostics)}</p>"
        return Response(text, status=status, mimetype="text/html")
    code = code or issue_code(status)
    body = operation_outcome(issues=[outcome_issue(diagnostics, code), *field_issues(fields)])
    # CDS Hooks clients (2.0 ones included) read JSON: the same resource, as application/json
    mimetype = "application/json" if request.path.startswith(CDS_PREFIX) else "application/fhir+json"
    response = Response(json.dumps(body), status=status, mimetype=mimetype)
    if status == HTTPStatus.UNAUTHORIZED:  # RFC 6750 section 3: say which scheme is expected, and nothing more
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into a well-formed body."""

    @app.errorhandler(FhirsvcError)
    def _fhirsvc_error(exc: FhirsvcError) -> Response:
        if exc.status == HTTPStatus.UNAUTHORIZED:
            # the reason goes to the log only, never into the answer
            log.info("%s request refused: %s", "CDS" if request.path.startswith(CDS_PREFIX) else "FHIR", exc)
        return error_response(exc.status, exc.public_message, exc.code, exc.fields)

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
