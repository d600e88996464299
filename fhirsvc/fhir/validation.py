"""``POST [base]/[type]/$validate``: a posted resource (or Parameters with a ``resource``) validated against the
base's FHIR version: its structure (fhir.resources) and the codes of its required bindings (``fhir/bindings.py``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fhirsvc.bodies import json_body
from fhirsvc.errors import ApiError, operation_outcome, outcome_issue
from fhirsvc.fhir.bindings import binding_errors
from fhirsvc.fhirversion import UnknownResourceType, resource_class

if TYPE_CHECKING:
    from fhirsvc.fhir.operations import Call

# $validate lists at most this many errors, then one issue saying how many more there were: a resource of
# repeated mistakes (``"name": [1, 1, ...]``) would otherwise answer an issue, some 200 bytes, per array item.
MAX_VALIDATE_ISSUES = 100
# ... of a resource of at most this many JSON values (objects, arrays and the values in them; larger: 413), so
# that the validation itself, which builds every error before the first is read, stays bounded. The largest
# resource of the knowledge holds some 1,200; a Bundle of a thousand typical resources, some 40,000.
MAX_VALIDATE_VALUES = 50_000


def validate_call(call: Call) -> dict[str, Any]:
    """The OperationOutcome of ``$validate`` on the posted resource."""
    base, rtype = call.base, str(call.rtype)
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
    return operation_outcome(issues=issues)


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
