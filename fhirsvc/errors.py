"""One exception tree, turned into an OperationOutcome on every JSON route (FHIR routes and, as CDS Hooks 3.0
recommends, the CDS routes: each bad field of a CDS request an issue of its own), or an HTML page.

    FhirsvcError             status, FHIR issue code, public message, per-field messages
     +-- KnowledgeError      bad knowledge files; stops start-up (carries every Problem found)
     +-- ConfigError         a setting that cannot be served safely; stops start-up (the message says which)
     +-- ApiError            a request that cannot be served (status, FHIR issue code, diagnostics)
     +-- evaluation.prefetch.PreconditionFailed   412: nothing about the patient could be had
     +-- evaluation.prefetch.FetchError           502: a FHIR server fetch failed (read as "unavailable" data)
     +-- cds.auth.AuthError                       401: the caller is not authenticated (no detail answered)
     +-- cds.feedback.FeedbackInvalid             400: the feedback does not conform (each bad field named)
     +-- evaluation.offline.UnreadableInput       400: a document `fhirsvc check` cannot read

Foreign exceptions are translated where they happen (``raise ... from exc``); anything left over
becomes a 500 whose body says nothing about the code, while the traceback goes to the log. This module holds
no Flask: the handlers that answer these errors are in ``fhirsvc.handlers``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fhirsvc.knowledge.problems import Problem

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
    HTTPStatus.SERVICE_UNAVAILABLE: "transient",
}


def issue_code(status: HTTPStatus) -> str:
    """The FHIR issue type of an answer with this HTTP status (``processing`` for the statuses not listed)."""
    return _ISSUE_CODES.get(status, "processing")


class FhirsvcError(Exception):
    """Base of every error this package raises on purpose: the registered handler answers it with ``status``,
    ``code`` (FHIR issue type), ``public_message`` and ``fields``."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    fields: dict | None = None

    @property
    def code(self) -> str:
        return issue_code(self.status)

    @property
    def public_message(self) -> str:
        """What the answer says (the message, unless the class must not tell more)."""
        return str(self)


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
        self._code = code
        self.fields = fields  # per-field messages (CDS request validation)

    @property
    def code(self) -> str:
        return self._code or issue_code(self.status)


def outcome_issue(diagnostics: str, code: str = "processing", severity: str = "error",
                  expression: Sequence[str] = ()) -> dict:
    """One issue of an OperationOutcome; ``expression``: the FHIRPath of the elements it is about."""
    issue: dict = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = list(expression)
    return issue


def operation_outcome(diagnostics: str = "", code: str = "processing", severity: str = "error", *,
                      issues: Sequence[dict] = (), resource_id: str | None = None) -> dict:
    """An OperationOutcome: with one issue (``diagnostics``, ``code``, ``severity``), or with the ``issues``
    given (``outcome_issue``); ``resource_id`` for one that stands in a Bundle or a prefetch."""
    outcome: dict = {"resourceType": "OperationOutcome"}
    if resource_id is not None:
        outcome["id"] = resource_id
    outcome["issue"] = list(issues) if issues else [outcome_issue(diagnostics, code, severity)]
    return outcome


def field_issues(fields: Mapping[str, Any] | None, code: str = "invalid") -> list[dict]:
    """One issue per bad field of a request (marshmallow's nested messages): ``expression`` is the field's path
    (``context.draftOrders.entry[0].resource``); a message about the whole body (``_schema``) has none."""
    issues: list[dict] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(key, int) or str(key).isdigit():
                    walk(value, f"{path}[{key}]")
                elif str(key).startswith("_"):
                    walk(value, path)
                else:
                    walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, path)
        else:
            issues.append(outcome_issue(str(node), code, expression=(path,) if path else ()))

    walk(fields or {}, "")
    return issues
