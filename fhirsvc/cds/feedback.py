"""CDS Hooks 2.0.1 feedback: validation of posted outcomes (the store that counts them per card topic is
``fhirsvc.storage``).

Bounded before anything is stored: at most ``MAX_FEEDBACK_ITEMS`` items per request (413), an ``outcomeTimestamp``
at most ``MAX_FUTURE_SKEW`` ahead of the service's clock, each text at most its length in ``MAX_LENGTHS`` and
without NUL characters (400 naming the field): the database is never handed a value it cannot index or store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from fhirsvc.errors import ApiError, FhirsvcError
from fhirsvc.storage.base import FeedbackItem

OUTCOMES = ("accepted", "overridden")
# The spec sends one item per card the user acted on: a request of more items than an order has cards is no EHR's.
MAX_FEEDBACK_ITEMS = 100
# An outcomeTimestamp may be this far ahead of the service's clock (clock skew of the EHR); later ones are refused.
MAX_FUTURE_SKEW = timedelta(minutes=5)
# Characters per text field. Ids are uuids here (36); the database indexes the card id (PostgreSQL: one index
# entry at most ~2,700 bytes), so ids stay far below; free text gets room for a sentence or a paragraph.
MAX_ID_LENGTH = 128
MAX_CODE_LENGTH = 256
MAX_SYSTEM_LENGTH = 1024
MAX_DISPLAY_LENGTH = 1024
MAX_COMMENT_LENGTH = 4096

# RFC 3339 date-time; the offset group is optional here only so that a naive time gets its own message.
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


class FeedbackInvalid(FhirsvcError):
    """The posted feedback does not conform; ``errors`` maps each bad field (with its index) to messages."""

    status = HTTPStatus.BAD_REQUEST

    @property
    def public_message(self) -> str:
        return "the feedback is not valid"

    def __init__(self, errors: dict):
        super().__init__("invalid feedback")
        self.errors = self.fields = errors


class Instant(fields.Field):
    """An RFC 3339 date-time with a time zone, as an aware UTC datetime; stricter than ISO 8601 on purpose."""

    default_error_messages = {  # noqa: RUF012 - marshmallow merges this class attribute
        "invalid": "Not a valid RFC 3339 date-time (expected e.g. 2021-12-11T10:05:31Z).",
        "naive": "Timestamp has no time zone; use Z or an offset such as +01:00.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not (match := _DATE_TIME.fullmatch(value)):
            raise self.make_error("invalid")
        base, fraction, offset = match.groups()
        if offset is None:
            raise self.make_error("naive")
        text = base.upper() + (fraction or "")[:7] + ("+00:00" if offset in "Zz" else offset)
        try:
            return datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, OverflowError) as exc:  # OverflowError: 0001-01-01T00:00:01+00:01 is before year 1 in UTC
            raise self.make_error("invalid") from exc


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


def _text(max_length: int, **kwargs: Any) -> fields.String:
    """A non-empty string field of at most ``max_length`` characters, without NUL."""
    return fields.String(validate=[validate.Length(min=1, max=max_length), _no_nul], **kwargs)


def _free_text(max_length: int, **kwargs: Any) -> fields.String:
    """A string field (may be empty) of at most ``max_length`` characters, without NUL."""
    return fields.String(validate=[validate.Length(max=max_length), _no_nul], **kwargs)


class _Strict(Schema):
    """Unknown fields are dropped so newer clients keep working; known fields are type-checked."""

    class Meta:
        unknown = EXCLUDE


class _SuggestionRef(_Strict):
    id = _text(MAX_ID_LENGTH, required=True)


class _Coding(_Strict):
    code = _text(MAX_CODE_LENGTH, required=True)
    system = _text(MAX_SYSTEM_LENGTH, required=True)
    display = _free_text(MAX_DISPLAY_LENGTH)


class _OverrideReason(_Strict):
    reason = fields.Nested(_Coding)
    userComment = _free_text(MAX_COMMENT_LENGTH)


class _Item(_Strict):
    card = _text(MAX_ID_LENGTH, required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    outcomeTimestamp = Instant(required=True)
    acceptedSuggestions = fields.List(fields.Nested(_SuggestionRef), validate=validate.Length(min=1))
    overrideReason = fields.Nested(_OverrideReason)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _invariants(self, data: dict, original: dict, **kwargs: Any) -> None:
        """The 3.0 invariants (accepted needs suggestions; a reason or a comment), and a timestamp not in the
        future, beside field errors to list all."""
        # ``data`` holds only the fields that passed, so presence is judged on the original item.
        errors: dict[str, list[str]] = {}
        stamp = data.get("outcomeTimestamp")
        if stamp is not None and stamp > datetime.now(UTC) + MAX_FUTURE_SKEW:
            errors["outcomeTimestamp"] = [f"More than {int(MAX_FUTURE_SKEW.total_seconds() // 60)} minutes in the "
                                          "future (the time the user acted on the card)."]
        if data.get("outcome") == "accepted" and "acceptedSuggestions" not in original:
            errors["acceptedSuggestions"] = ["Required when outcome is accepted."]
        reason = data.get("overrideReason")
        if reason is not None and "reason" not in reason and "userComment" not in reason:
            errors["overrideReason"] = ["Needs a reason or a userComment."]
        if errors:
            raise ValidationError(errors)


class _Body(_Strict):
    feedback = fields.List(fields.Nested(_Item), required=True, validate=validate.Length(min=1))


def _string_keys(errors: Any) -> Any:
    """Marshmallow indexes list errors by int; the 400 body is JSON, so use the same string keys here."""
    if isinstance(errors, dict):
        return {str(key): _string_keys(value) for key, value in errors.items()}
    return errors


def parse_feedback(body: object) -> list[FeedbackItem]:
    """Validate a ``{"feedback": [...]}`` body into items; raise FeedbackInvalid naming every bad field, ApiError
    413 for more than MAX_FEEDBACK_ITEMS items (before any of them is read)."""
    if isinstance(body, dict) and isinstance(body.get("feedback"), list) and len(body["feedback"]) > MAX_FEEDBACK_ITEMS:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       f"at most {MAX_FEEDBACK_ITEMS} feedback items per request (MAX_FEEDBACK_ITEMS); this one has "
                       f"{len(body['feedback'])}: send them in several requests",
                       fields={"feedback": [f"Longer than the maximum of {MAX_FEEDBACK_ITEMS} items."]})
    try:
        data = _Body().load(body)  # type: ignore[arg-type]  # any JSON: marshmallow refuses a non-object itself
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise FeedbackInvalid(_string_keys(errors)) from None
    items = []
    for raw in data["feedback"]:
        override = raw.get("overrideReason", {})
        reason = override.get("reason", {})
        items.append(
            FeedbackItem(
                card=raw["card"],
                outcome=raw["outcome"],
                outcome_timestamp=raw["outcomeTimestamp"],
                accepted_suggestions=tuple(ref["id"] for ref in raw.get("acceptedSuggestions", ())),
                override_code=reason.get("code"),
                override_system=reason.get("system"),
                override_display=reason.get("display"),
                user_comment=override.get("userComment"),
            )
        )
    return items


def reporter(claims: Mapping[str, Any]) -> str:
    """Who sent a feedback request, as far as the request says: the authenticated client, the JWT's ``iss``,
    ``tenant`` and ``sub`` (a feedback item names no user). Stored as a SHA-256 hex digest (fixed length, and no
    identifier of a person in the store); "" without authentication (every sender is one)."""
    if not claims:
        return ""
    who = [claims.get("iss"), claims.get("tenant"), claims.get("sub")]
    return hashlib.sha256(json.dumps(who, default=str).encode()).hexdigest()
