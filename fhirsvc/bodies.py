"""Reading a JSON request body the same way on every route: 415 for another media type, 400 if malformed."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from flask import request

from fhirsvc.errors import ApiError

JSON_TYPES = ("application/json", "application/fhir+json")
MAX_DEPTH = 100  # levels of nested arrays and objects; FHIR resources need a few dozen at most


def json_body(preferred: str = "application/json") -> Any:
    """The request body parsed as JSON (``preferred`` is the type named in the 415 message)."""
    if (request.mimetype or "").lower() not in JSON_TYPES:
        raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                       f"Content-Type {request.content_type or '(none)'} is not supported; send {preferred}")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        body = _TOO_DEEP
    problem = _unusable(body, raw)
    if problem:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not usable JSON: {problem}")
    return body


_TOO_DEEP = object()
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _surrogate_free(raw: bytes) -> bool:
    """True when JSON text cannot decode to a lone surrogate: ASCII without NUL bytes (so UTF-8, the only
    encoding json.loads then detects, and no raw surrogate bytes) and no ``\\uD800``-``\\uDFFF`` escape."""
    return raw.isascii() and b"\x00" not in raw and _SURROGATE_ESCAPE.search(raw) is None


def _unusable(value: Any, raw: bytes | None = None) -> str | None:
    """Why a parsed body cannot be used, or None: nesting deeper than MAX_DEPTH (the code reading it
    recurses), or a string with a lone surrogate (``"\\ud800"``: not Unicode text, it cannot be encoded
    again). Walked level by level without recursion; strings are looked at only when the ``raw`` JSON text
    does not show that none can hold a surrogate (a walk of every node of every request body cost more than
    the rest of a CDS call)."""
    if value is _TOO_DEEP:
        return f"arrays and objects nest deeper than {MAX_DEPTH} levels"
    if raw is not None and _surrogate_free(raw):
        return _too_deep(value)
    level, depth = [value], 1
    while level:
        below: list[Any] = []
        for node in level:
            if isinstance(node, str):
                if not node.isascii():
                    try:
                        node.encode("utf-8")
                    except UnicodeEncodeError:
                        return "a string holds a lone UTF-16 surrogate"
                continue
            if depth > MAX_DEPTH:
                return f"arrays and objects nest deeper than {MAX_DEPTH} levels"
            if isinstance(node, dict):
                below += node  # the keys
                node = node.values()
            elif not isinstance(node, list):
                continue  # a number, true, false or null
            below += [child for child in node if isinstance(child, (dict, list, str))]
        level, depth = below, depth + 1
    return None


def _too_deep(value: Any) -> str | None:
    """``_unusable`` for nesting only, over the arrays and objects of ``json.loads`` (exactly dict and list)."""
    level, depth = ([value] if type(value) is dict or type(value) is list else []), 1
    while level:
        if depth > MAX_DEPTH:
            return f"arrays and objects nest deeper than {MAX_DEPTH} levels"
        below = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level, depth = below, depth + 1
    return None
