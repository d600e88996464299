"""Request bodies: what ``json_body`` accepts and refuses (through a route, as every API reads them), and
``too_deep`` (orjson's recursion guard) against the walked nesting of the value."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
import pytest
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirsvc import bodies, handlers, jsontext
from fhirsvc.bodies import json_body
from fhirsvc.jsontext import MAX_DEPTH, ORJSON_DEPTH_LIMIT, too_deep
from tests.conftest import error_message

DEEP = f"arrays and objects nest deeper than {MAX_DEPTH} levels"


@pytest.fixture(scope="module")
def client():
    app = Flask(__name__)
    handlers.init_app(app)

    @app.post("/cds-services/echo")
    def echo():
        return {"body": json_body()}

    return app.test_client()


BODIES = {
    "flat": (b'{"a": 1, "b": [1, 2, {"c": "d"}], "e": null}', 200, None),
    "depth-100-arrays": (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, 200, None),
    "depth-101-arrays": (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), 400, DEEP),
    "depth-101-objects": (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), 400, DEEP),
    "depth-100-objects-scalar-at-101": (b'{"a":' * MAX_DEPTH + b'"x"' + b"}" * MAX_DEPTH, 200, None),
    "depth-2000": (b"[" * 2000 + b"]" * 2000, 400, "depth limit exceeded"),
    "brackets-in-strings": (b'{"a": "[[[{", "b": ["]]", "}"], "c": "\\"[\\\\"}', 200, None),
    "depth-101-with-bracket-strings": (b'{"]":' * (MAX_DEPTH + 1) + b'"]]]"' + b"}" * (MAX_DEPTH + 1), 400, DEEP),
    "depth-100-with-escaped-quotes": (b"[" * MAX_DEPTH + b'"\\\\\\"]]"' + b"]" * MAX_DEPTH, 200, None),
    "non-ascii": ('{"a": "caf\u00e9 \u203a [\U0001f600"}'.encode(), 200, None),
    "surrogate-pair-escape": (b'{"a": "\\ud83d\\ude00"}', 200, None),
    "escaped-backslash-then-text": (b'{"a": "\\\\ud800"}', 200, None),
    "lone-surrogate-value": (b'{"a": "\\ud800"}', 400, "surrogate"),
    "lone-surrogate-key": (b'{"\\udc00": 1}', 400, "surrogate"),
    "raw-surrogate-bytes": (b'{"a": "\xed\xa0\x80"}', 400, "not UTF-8 text"),
    "utf-16": ('{"a": 1}'.encode("utf-16"), 400, "not UTF-8 text"),
    "nan": (b'{"a": NaN}', 400, "not valid JSON"),
    "truncated": (b'{"a": [1, 2', 400, "not valid JSON"),
    "scalar": (b"3", 200, None),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_json_body_accepts_and_refuses(client, name):
    raw, status, message = BODIES[name]
    response = client.post("/cds-services/echo", data=raw, content_type="application/json")
    assert response.status_code == status, response.get_json()
    if status == 200:
        assert response.get_json()["body"] == json.loads(raw)
    else:
        assert message in error_message(response.get_json())


def test_another_media_type_is_415(client):
    response = client.post("/cds-services/echo", data=b"{}", content_type="text/plain")
    assert response.status_code == 415
    assert "send application/json" in error_message(response.get_json())


def nesting(value: Any) -> int:
    """Levels of nested arrays and objects (0 for a scalar), walked."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return 0 if children is None else 1 + max((nesting(child) for child in children), default=0)


# What orjson.loads gives: integers within 64 bits (it reads larger ones as floats), finite floats.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(min_value=1, max_value=6))
def test_too_deep_is_the_walked_nesting(value, limit):
    original = jsontext.MAX_DEPTH
    jsontext.MAX_DEPTH = limit  # a small limit, so that random values fall on both sides of it
    try:
        assert too_deep(value) == (nesting(value) > limit)
    finally:
        jsontext.MAX_DEPTH = original


@pytest.mark.parametrize("innermost", [0, [], {}, {"a": "b"}])
def test_orjson_refuses_exactly_at_its_depth_limit(innermost):
    """``too_deep`` counts on this: orjson.dumps writes ORJSON_DEPTH_LIMIT - 1 levels and refuses one more."""
    def nested(levels: int) -> Any:
        value = innermost
        for _ in range(levels - nesting(innermost)):
            value = [value]
        return value

    orjson.dumps(nested(ORJSON_DEPTH_LIMIT - 1))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(nested(ORJSON_DEPTH_LIMIT))


LIMIT = 1000


@pytest.fixture(scope="module")
def bounded():
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    bodies.init_app(app)
    handlers.init_app(app)

    @app.post("/cds-services/echo")
    def echo():
        return {"length": len(json_body()["a"])}

    @app.post("/fhir/R4/form")
    def form():
        return {"length": len(request.form["a"])}

    return app.test_client()


def padded(size: int, form: bool = False) -> bytes:
    """A JSON object (or a form) of exactly ``size`` bytes."""
    head, tail = (b"a=", b"") if form else (b'{"a":"', b'"}')
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT, LIMIT + 1, 10 * LIMIT])
@pytest.mark.parametrize("path", ["/cds-services/echo", "/fhir/R4/form"])
def test_every_body_counts_against_the_limit(bounded, path, size, chunked):
    """A body without Content-Length (as chunked bodies come from the server: an input stream it ends) is held to
    MAX_CONTENT_LENGTH as one with it: up to the limit it is read whole, one byte more is a 413 naming the
    limit."""
    form = path.startswith("/fhir")
    raw = padded(size, form)
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    if chunked:
        response = bounded.post(path, input_stream=io.BytesIO(raw), content_type=content_type,
                                environ_overrides={"wsgi.input_terminated": True})
    else:
        response = bounded.post(path, data=raw, content_type=content_type)
    if size <= LIMIT:
        assert response.status_code == 200, response.get_data()
        assert response.get_json()["length"] == size - (2 if form else 8)
    else:
        assert response.status_code == 413
        message = error_message(response.get_json())
        assert f"larger than the limit of {LIMIT} bytes (FHIRSVC_MAX_CONTENT_LENGTH)" in message


def test_a_form_has_no_smaller_limit_than_the_body():
    """Flask's own form limit (500 kB) does not apply: a form is held to MAX_CONTENT_LENGTH, as every body."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 2_000_000
    bodies.init_app(app)
    handlers.init_app(app)

    @app.post("/fhir/R4/form")
    def form():
        return {"length": len(request.form["a"])}

    response = app.test_client().post("/fhir/R4/form", data=padded(1_000_000, form=True),
                                      content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.get_json()["length"] == 1_000_000 - 2


class Pieces(io.BytesIO):
    """A server's input stream that gives at most ``piece`` bytes a read (as a socket gives what has arrived), and
    counts the reads asked of it."""

    def __init__(self, data: bytes, piece: int):
        super().__init__(data)
        self.piece, self.reads = piece, 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(self.piece if size is None or size < 0 else min(size, self.piece))

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        return super().readinto(memoryview(buffer)[:self.piece])


def environ_of(data: bytes, piece: int, terminated: bool) -> dict[str, Any]:
    environ = {"REQUEST_METHOD": "POST", "wsgi.input": Pieces(data, piece), "CONTENT_TYPE": "application/json"}
    return environ | ({"wsgi.input_terminated": True} if terminated else {"CONTENT_LENGTH": str(len(data))})


def werkzeug_read(data: bytes, limit: int, piece: int, terminated: bool) -> bytes | None:
    """The body as werkzeug's own reading gives it, one byte past the limit at most; None for a 413."""
    from werkzeug.exceptions import RequestEntityTooLarge
    from werkzeug.wsgi import get_input_stream

    try:
        read = get_input_stream(environ_of(data, piece, terminated), max_content_length=limit + 1).read()
    except RequestEntityTooLarge:
        return None
    return None if len(read) > limit else read


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), limit=st.integers(min_value=1, max_value=2500),
       piece=st.integers(min_value=1, max_value=4000), terminated=st.booleans())
def test_the_body_reads_as_werkzeugs_general_reading(data, limit, piece, terminated):
    """``get_data()`` through BoundedRequest (the server's stream asked for the whole body) gives the bytes
    werkzeug's own reading gives, and 413 exactly when that reading runs past the limit, whatever the size of the
    pieces the stream gives."""
    from werkzeug.exceptions import RequestEntityTooLarge

    request = bodies.BoundedRequest(environ_of(data, piece, terminated))
    request.max_content_length = limit
    try:
        read: bytes | None = request.get_data()
    except RequestEntityTooLarge:
        read = None
    assert read == werkzeug_read(data, limit, piece, terminated)


@pytest.mark.parametrize("terminated", [True, False], ids=["server-ended", "content-length"])
def test_a_cds_body_is_asked_of_the_server_in_one_read(terminated):
    """A 66 kB body from a stream that gives what is asked (gunicorn's) takes one read, and one more to see the end
    of a stream the server ends (werkzeug's reading asks for 64 kB at a time: three or four reads)."""
    data = padded(66_000)
    request = bodies.BoundedRequest(environ_of(data, len(data), terminated))
    request.max_content_length = 5 * 1024 * 1024
    assert request.get_data() == data
    assert request.environ["wsgi.input"].reads == (2 if terminated else 1)
