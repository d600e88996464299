"""JSON Schema of a CDS Hooks response (cards), written from the spec's "CDS Service Response" (2.0.1, and the
3.0.0 ballot's additions): required fields, summary under 140 characters, enumerations, selectionBehavior with
suggestions, display on override reasons, ``suggestion.actionSelectionBehavior`` (3.0: ``all``, ``any``,
``at-most-one``), and no null or empty value anywhere. The spec reserves ``extension`` for implementers: every
card of ours names its rule there (``fhirsvc.rule``, an id of the rule registry) and the records it concerns
(Da Vinci CRD's ``davinci-crd.associated-resource``). Also the discovery response (3.0 adds ``version``) and
the OperationOutcome error body (3.0 "Returning OperationOutcome")."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

_NON_EMPTY = {"minLength": 1}
_CODING = {"type": "object", "required": ["system", "code"], "additionalProperties": False,
           "properties": {"system": {"type": "string", **_NON_EMPTY}, "code": {"type": "string", **_NON_EMPTY},
                          "display": {"type": "string", **_NON_EMPTY}}}
_ACTION = {
    "type": "object", "required": ["type", "description"], "additionalProperties": False,
    "properties": {"type": {"enum": ["create", "update", "delete"]}, "description": {"type": "string", **_NON_EMPTY},
                   "resource": {"type": "object", "required": ["resourceType"]},
                   "resourceId": {"type": "string", "pattern": "^[A-Z][A-Za-z]+/[A-Za-z0-9\\-.]{1,64}$"}},
    "allOf": [
        {"if": {"properties": {"type": {"enum": ["create", "update"]}}}, "then": {"required": ["resource"]}},
        {"if": {"properties": {"type": {"const": "delete"}}}, "then": {"required": ["resourceId"]}},
    ],
}
CARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uuid", "summary", "indicator", "source", "extension"],
    "additionalProperties": False,
    "properties": {
        "uuid": {"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]{36}$"},
        "summary": {"type": "string", "minLength": 1, "maxLength": 139},
        "detail": {"type": "string", **_NON_EMPTY},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": {"type": "object", "required": ["label", "topic"], "additionalProperties": False,
                   "properties": {"label": {"type": "string", **_NON_EMPTY}, "url": {"type": "string", **_NON_EMPTY},
                                  "icon": {"type": "string"}, "topic": _CODING}},
        "suggestions": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["label", "uuid", "actions"], "additionalProperties": False,
            "properties": {"label": {"type": "string", **_NON_EMPTY}, "uuid": {"type": "string"},
                           "isRecommended": {"type": "boolean"},
                           "actions": {"type": "array", "minItems": 1, "items": _ACTION},
                           "actionSelectionBehavior": {"enum": ["all", "any", "at-most-one"]}}}},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        # CDS Hooks 2.0.1 "Extensions": an object of extension properties; this service's rule identity and CRD's
        # associated-resource (local references, Type/id)
        "extension": {"type": "object", "required": ["fhirsvc.rule"],
                      "properties": {"fhirsvc.rule": {"type": "string", "pattern": "^[a-z0-9][a-z0-9:-]{0,63}$"},
                                     "fhirsvc.rules": {"type": "array", "minItems": 1,
                                                       "items": {"type": "string", **_NON_EMPTY}},
                                     "davinci-crd.associated-resource": {"type": "array", "minItems": 1, "items": {
                                         "type": "string", "pattern": "^[A-Z][A-Za-z]+/[A-Za-z0-9\\-.]{1,64}$"}}}},
        "overrideReasons": {"type": "array", "minItems": 1,
                            "items": {**_CODING, "required": ["system", "code", "display"]}},
        "links": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["label", "url", "type"], "additionalProperties": False,
            "properties": {"label": {"type": "string", **_NON_EMPTY}, "url": {"type": "string", "pattern": "^https?://"},
                           "type": {"enum": ["absolute", "smart"]}, "appContext": {"type": "string"},
                           "autolaunchable": {"type": "boolean"}}}},
    },
    "dependentRequired": {"suggestions": ["selectionBehavior"]},
}
RESPONSE_SCHEMA = {"type": "object", "required": ["cards"], "properties": {"cards": {"type": "array",
                                                                                  "items": CARD_SCHEMA}}}
_VALIDATOR = Draft202012Validator(RESPONSE_SCHEMA)
DISCOVERY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["services"], "additionalProperties": False,
    "properties": {"services": {"type": "array", "items": {
        "type": "object", "required": ["hook", "description", "id"], "additionalProperties": False,
        "properties": {"hook": {"type": "string", **_NON_EMPTY}, "title": {"type": "string", **_NON_EMPTY},
                       "description": {"type": "string", **_NON_EMPTY}, "id": {"type": "string", **_NON_EMPTY},
                       "prefetch": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
                       "usageRequirements": {"type": "string", **_NON_EMPTY},
                       # 3.0.0 ballot, "Discovery" > "Response": the CDS Hooks version implemented
                       "version": {"enum": ["STU1", "STU2", "STU3"]},
                       "extension": {"type": "object", "minProperties": 1}}}}},
}
# FHIR R4 OperationOutcome as the 3.0.0 ballot's example shows it: issue 1..*, severity, code, text
OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["resourceType", "issue"], "additionalProperties": False,
    "properties": {"resourceType": {"const": "OperationOutcome"}, "id": {"type": "string"},
                   "issue": {"type": "array", "minItems": 1, "items": {
                       "type": "object", "required": ["severity", "code"], "additionalProperties": False,
                       "properties": {"severity": {"enum": ["fatal", "error", "warning", "information"]},
                                      "code": {"type": "string", "pattern": "^[a-z-]+$"},
                                      "details": {"type": "object"},
                                      "diagnostics": {"type": "string", **_NON_EMPTY},
                                      "expression": {"type": "array", "minItems": 1,
                                                     "items": {"type": "string", **_NON_EMPTY}}}}}},
}


def _empty_values(value: Any, path: str = "$") -> list[str]:
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empty_values(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_values(v, f"{path}[{i}]")]
    return []


def assert_valid_response(body: dict) -> None:
    """The body is a valid 2.0.1 response with no null or empty value (an empty card list is allowed)."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _VALIDATOR.iter_errors(body)]
    assert not errors, errors
    empties = [p for card in body["cards"] for p in _empty_values(card)]
    assert not empties, empties


def _check(schema: dict, body: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(schema).iter_errors(body)]
    assert not errors, errors
    empties = _empty_values(body)
    assert not empties, empties


def assert_valid_discovery(body: dict) -> None:
    """The body is a valid discovery response (2.0.1, and 3.0's ``version``) with no null or empty value."""
    _check(DISCOVERY_SCHEMA, body)


def assert_valid_outcome(body: dict) -> None:
    """The body is an OperationOutcome error answer with no null or empty value."""
    _check(OUTCOME_SCHEMA, body)
