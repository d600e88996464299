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
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')  # deleted: all but quotes and brackets
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")  # an object nests as an array does
_STRING = re.compile(rb'"[^"]*"')


def _ascii_text(raw: bytes) -> bool:
    """ASCII without NUL bytes: so UTF-8 (the only encoding json.loads then detects), with no raw surrogate
    bytes."""
    return raw.isascii() and b"\x00" not in raw


def _unusable(value: Any, raw: bytes | None = None) -> str | None:
    """Why a parsed body cannot be used, or None: nesting deeper than MAX_DEPTH (the code reading it
    recurses), or a string with a lone surrogate (``"\\ud800"``: not Unicode text, it cannot be encoded
    again). When the ``raw`` JSON text is ASCII, both are read from the text (``_too_deep_text``; strings
    are walked only if it has a ``\\uD800``-``\\uDFFF`` escape): walking every node of a request body
    cost more than the rest of a CDS call. Otherwise the parsed value is walked level by level, without
    recursion."""
    if value is _TOO_DEEP:
        return f"arrays and objects nest deeper than {MAX_DEPTH} levels"
    if raw is not None and _ascii_text(raw) and not (b"\\" in raw and _SURROGATE_ESCAPE.search(raw)):
        return f"arrays and objects nest deeper than {MAX_DEPTH} levels" if _too_deep_text(raw) else None
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


def _too_deep_text(raw: bytes) -> bool:
    """Whether valid ASCII JSON text nests arrays and objects deeper than MAX_DEPTH, from the text alone:
    drop the escapes that can hide a quote (``\\\\``, ``\\"``), keep only quotes and brackets, drop the
    strings (empty pairs of quotes first: removing two adjacent quotes never moves a bracket into or out of
    a string), then remove the innermost bracket pairs, one level per pass."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRING.sub(b"", raw.translate(_ONE_BRACKET, _NOT_STRUCTURE).replace(b'""', b""))
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)
