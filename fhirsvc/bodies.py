"""Reading a JSON request body the same way on every route: 415 for another media type, 400 if malformed.

Bodies are parsed by ``fhirsvc.jsontext.parse_json``.

Every body counts against MAX_CONTENT_LENGTH (``FHIRSVC_MAX_CONTENT_LENGTH``), whether its size is announced
(``Content-Length``, refused before a byte is read) or not (``Transfer-Encoding: chunked``): the app's request
class reads at most one byte past the limit and then answers 413. (Werkzeug alone stops a chunked body at the
limit without an error, so an over-limit body was read cut short: a 400, or a 200 for the part that fitted.)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import IO, Any, cast

from flask import Flask, Request, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from fhirsvc.errors import ApiError
from fhirsvc.jsontext import NotJson, parse_json

JSON_TYPES = ("application/json", "application/fhir+json")
# Bytes asked of the server's stream in one read: a whole CDS call or search body, while a stream that gives each
# read a buffer of the size asked (io.RawIOBase) never takes more memory than this for it.
READ_SIZE = 1 << 20


def too_large(limit: int) -> RequestEntityTooLarge:
    """The 413 of a body over ``limit`` bytes, naming the limit."""
    return RequestEntityTooLarge(f"the request body is larger than the limit of {limit} bytes "
                                 "(FHIRSVC_MAX_CONTENT_LENGTH)")


class _BoundedStream(LimitedStream):
    """A request body read from the server's stream up to ``end`` bytes: its Content-Length, or, when the server
    ends the stream itself (``terminated``: gunicorn, chunked or not), one byte past ``limit`` (so that a body of
    exactly ``limit`` bytes is not taken for a longer one). It raises 413 as soon as more than ``limit`` bytes have
    arrived, and never buffers more."""

    def __init__(self, stream: IO[bytes], end: int, limit: int, terminated: bool):
        super().__init__(stream, end, is_max=terminated)
        self.max_bytes = limit

    # typed as werkzeug's LimitedStream.readinto (a bytearray), narrower than io's (any writable buffer)
    def readinto(self, b: bytearray) -> int | None:  # type: ignore[override]
        size = super().readinto(b)
        if self.tell() > self.max_bytes:
            raise too_large(self.max_bytes)
        return size

    def readall(self) -> bytes:
        """The rest of the body (``request.get_data()``), asked of the server's stream READ_SIZE bytes at a time:
        gunicorn's stream answers a CDS call's body in one read. (Werkzeug's own readall asks for 64 kB at a time,
        each read into a new buffer and copied twice more.) A stream that fails, or ends before Content-Length, is
        ClientDisconnected (400), as in werkzeug's reads."""
        parts = []
        while not self.is_exhausted:
            try:
                data = self._stream.read(min(self.limit - self._pos, READ_SIZE))
            except (OSError, ValueError) as exc:
                raise ClientDisconnected() from exc
            if not data:
                self.on_disconnect()  # the end of a stream the server ends; ClientDisconnected before Content-Length
                break
            self._pos += len(data)
            parts.append(data)
        if self._pos > self.max_bytes:
            raise too_large(self.max_bytes)
        return b"".join(parts)


class BoundedRequest(Request):
    """Flask's request, whose body (JSON, form or raw) is cut off with a 413 at MAX_CONTENT_LENGTH however it
    is sent. A form has no smaller limit of its own (Flask's MAX_FORM_MEMORY_SIZE): one limit, one message."""

    max_form_memory_size = None

    @cached_property
    def stream(self) -> IO[bytes]:
        limit, length = self.max_content_length, self.content_length
        if limit is None:
            return super().stream
        if length is not None and length > limit:
            raise too_large(limit)
        source = self.environ["wsgi.input"]
        # A raw binary stream, as werkzeug's own LimitedStream is cast in get_input_stream: typeshed has no IO[bytes]
        # for io.RawIOBase.
        if "wsgi.input_terminated" in self.environ:  # the server ends the body: read to its end, or past the limit
            return cast(IO[bytes], _BoundedStream(source, limit + 1, limit, terminated=True))
        if length is None:  # no length and no end: nothing is read (werkzeug's empty stream)
            return super().stream
        return cast(IO[bytes], _BoundedStream(source, length, limit, terminated=False))


def init_app(app: Flask) -> None:
    """Read every request body through BoundedRequest. (After a 413, gunicorn reads what the client still sends
    of that body and drops it, a buffer at a time, before it reads the connection's next request.)"""
    app.request_class = BoundedRequest


def json_body(preferred: str = "application/json") -> Any:
    """The request body parsed as JSON (``preferred`` is the type named in the 415 message)."""
    if (request.mimetype or "").lower() not in JSON_TYPES:
        raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                       f"Content-Type {request.content_type or '(none)'} is not supported; send {preferred}")
    raw = request.get_data(cache=True)
    try:
        return parse_json(raw)
    except NotJson as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is {exc}") from None
