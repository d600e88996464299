"""The request body check: the fast path (nesting read from the raw JSON text, strings not walked when it
cannot hold a lone surrogate) gives the same answer as walking every node."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirsvc import bodies
from fhirsvc.bodies import MAX_DEPTH, _unusable

DEEP = f"arrays and objects nest deeper than {MAX_DEPTH} levels"
SURROGATE = "a string holds a lone UTF-16 surrogate"

BODIES = {
    "flat": ('{"a": 1, "b": [1, 2, {"c": "d"}], "e": null}', None),
    "depth-100-arrays": ("[" * MAX_DEPTH + "]" * MAX_DEPTH, None),
    "depth-101-arrays": ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), DEEP),
    "depth-101-objects": ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), DEEP),
    "depth-100-objects-scalar-at-101": ('{"a":' * MAX_DEPTH + '"x"' + "}" * MAX_DEPTH, None),
    "lone-surrogate-value": ('{"a": "\\ud800"}', SURROGATE),
    "lone-surrogate-key": ('{"\\udc00": 1}', SURROGATE),
    "lone-surrogate-in-array": ('[1, ["x", "\\uDBFF"]]', SURROGATE),
    "surrogate-pair": ('{"a": "\\ud83d\\ude00"}', None),
    "escaped-backslash-then-text": ('{"a": "\\\\ud800"}', None),
    "non-ascii": ('{"a": "caf\u00e9 \u203a"}', None),
    "brackets-in-strings": ('{"a": "[[[{", "b": ["]]", "}"], "c": "\\"[\\\\"}', None),
    "brackets-in-keys": ('{"[[[": {"]]]": ["{{{"]}}', None),
    "adjacent-strings": ('["[", "", "]", "\\"", ""]', None),
    "depth-101-with-bracket-strings": ('{"]":' * (MAX_DEPTH + 1) + '"]]]"' + "}" * (MAX_DEPTH + 1), DEEP),
    "depth-100-with-escaped-quotes": ('[' * MAX_DEPTH + '"\\\\\\"]]"' + "]" * MAX_DEPTH, None),
    "scalar": ("3", None),
    "string": ('"\\ud800"', SURROGATE),
}


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_the_fast_path_answers_as_the_full_walk(name, encoding):
    text, expected = BODIES[name]
    raw = text.encode(encoding)
    value = json.loads(raw)
    assert _unusable(value) == expected
    assert _unusable(value, raw) == expected


def test_raw_surrogate_bytes_are_found():
    raw = b'{"a": "\xed\xa0\x80"}'  # a surrogate encoded as UTF-8 (json.loads decodes it with surrogatepass)
    assert _unusable(json.loads(raw), raw) == SURROGATE


# JSON values whose strings are made of the characters that could confuse a reading of the text: quotes,
# backslashes and brackets (json.dumps escapes the quotes and backslashes).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ,:ab', max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=4), inner,
                                                                max_size=4),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(min_value=1, max_value=6))
def test_nesting_read_from_the_text_is_the_walked_nesting(value, limit):
    raw = json.dumps(value, separators=(",", ":") if limit % 2 else (", ", ": ")).encode()
    original = bodies.MAX_DEPTH
    bodies.MAX_DEPTH = limit  # a small limit, so that random values fall on both sides of it
    try:
        walked, from_text = _unusable(value), _unusable(value, raw)
    finally:
        bodies.MAX_DEPTH = original
    assert from_text == walked
