"""Reading a JSON request body the same way on every route: 415 for another media type, 400 if malformed."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from flask import request

from fhirsvc.errors import ApiError

JSON_TYPES = ("application/json", "application/fhir+json")


def json_body(preferred: str = "application/json") -> Any:
    """The request body parsed as JSON (``preferred`` is the type named in the 415 message)."""
    if (request.mimetype or "").lower() not in JSON_TYPES:
        raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                       f"Content-Type {request.content_type or '(none)'} is not supported; send {preferred}")
    try:
        return json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {exc}") from None
