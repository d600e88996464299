"""JSON from outside (a request body, a file given to ``fhirsvc check``, a FHIR server's answer) parsed one way.

It is parsed with orjson: it takes only UTF-8 (RFC 8259 section 8.1), refuses a string with a lone
surrogate (``"\\ud800"`` is not Unicode text and could not be written out again) and NaN or Infinity, and
parses a CDS request in half the time of the standard library. It accepts nesting up to 1,024 levels (the
standard library recurses until Python's recursion limit, and raises RecursionError past it); the code that
reads the value recurses (and orjson writes at most 254 levels), so JSON that nests deeper than MAX_DEPTH is
refused as well. No Flask here: the evaluation layer and the command line read JSON without it.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 100  # levels of nested arrays and objects; FHIR resources need a few dozen at most


class NotJson(ValueError):
    """Bytes that are not usable JSON; the message (``not valid JSON: ...``) is one line, meant for a person."""


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON by the rules above (the HTTP routes and ``fhirsvc check`` read JSON alike);
    NotJson if it is not UTF-8 JSON, holds NaN or Infinity, or nests deeper than MAX_DEPTH."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotJson(f"not valid JSON: {_why_not_json(raw, exc)}") from None
    if too_deep(value):
        raise NotJson(f"not usable JSON: arrays and objects nest deeper than {MAX_DEPTH} levels")
    return value


def _why_not_json(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    return str(exc)


# orjson.dumps refuses arrays and objects nested ORJSON_DEPTH_LIMIT levels deep (its C recursion guard; a test
# pins the value): wrapped in ORJSON_DEPTH_LIMIT - 1 - MAX_DEPTH arrays, a value is refused exactly when it nests
# deeper than MAX_DEPTH.
ORJSON_DEPTH_LIMIT = 255


def too_deep(value: Any) -> bool:
    """Whether JSON parsed by orjson.loads (so orjson can write it again) nests arrays and objects deeper than
    MAX_DEPTH, found by orjson's own guard (walking every node of a request body in Python cost more than the
    rest of a CDS call)."""
    for _ in range(ORJSON_DEPTH_LIMIT - 1 - MAX_DEPTH):
        value = [value]
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return True
    return False
