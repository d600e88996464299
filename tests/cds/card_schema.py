"""JSON Schema of a CDS Hooks 2.0.1 response (cards), written from the spec's "CDS Service Response":
required fields, summary under 140 characters, enumerations, selectionBehavior with suggestions,
display on override reasons, and no null or empty value anywhere. The spec reserves ``extension`` for
implementers: every card of ours names its rule there (``fhirsvc.rule``, an id of the rule registry)."""

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
                           "actions": {"type": "array", "minItems": 1, "items": _ACTION}}}},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "extension": {"type": "object", "required": ["fhirsvc.rule"],
                      "properties": {"fhirsvc.rule": {"type": "string", "pattern": "^[a-z0-9][a-z0-9:-]{0,63}$"},
                                     "fhirsvc.rules": {"type": "array", "minItems": 1,
                                                       "items": {"type": "string", **_NON_EMPTY}}}},
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
