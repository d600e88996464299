"""Per-call configuration, as the Da Vinci CRD implementation guide extends CDS Hooks ("Deviations from CDS Hooks",
https://hl7.org/fhir/us/davinci-crd/deviations.html, "New hook configuration mechanism").

Discovery lists the options in each service's ``extension["davinci-crd.configuration-options"]``: an array of
``{code, type, name, description, default}`` (CRD dev-4; ``type`` "boolean" or "integer", JSON types). A call may
send ``extension["davinci-crd.configuration"]``: one object whose properties are option codes and whose values are
of the option's type (CRD dev-12). Here each option switches one family of cards (by indicator) off for that call,
so that an EHR can show fewer cards in a busy workflow; critical cards cannot be switched off.

A call without the extension gets every card (CRD dev-15). A code this service does not offer is ignored (CRD
dev-16, dev-17). A value of the wrong type, or a configuration that is not an object, is refused: 400 naming it.
Parsing is bounded: at most ``MAX_PROPERTIES`` properties are looked at (more: 400).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fhirsvc.errors import ApiError

OPTIONS_KEY = "davinci-crd.configuration-options"  # in a discovered service's extension
REQUEST_KEY = "davinci-crd.configuration"  # in a call's extension
MAX_PROPERTIES = 64


@dataclass(frozen=True)
class Option:
    code: str
    name: str
    description: str
    indicator: str  # the card indicator this option switches
    type: str = "boolean"
    default: bool = True

    def document(self) -> dict[str, Any]:
        return {"code": self.code, "type": self.type, "name": self.name, "description": self.description,
                "default": self.default}


OPTIONS: tuple[Option, ...] = (
    Option("info-cards", "Information cards",
           "Set to false to receive no info cards (reminders, notes and 'Unable to check' cards) for this call.",
           "info"),
    Option("warning-cards", "Warning cards",
           "Set to false to receive no warning cards for this call; critical cards are always returned.",
           "warning"),
)
_BY_CODE = {option.code: option for option in OPTIONS}


def options_extension() -> dict[str, list[dict[str, Any]]]:
    """The discovery ``extension`` of a service: the options a call may set."""
    return {OPTIONS_KEY: [option.document() for option in OPTIONS]}


@dataclass(frozen=True)
class CallConfiguration:
    """The card indicators a call switched off."""

    hidden: frozenset[str] = frozenset()

    def shows(self, indicator: str) -> bool:
        return indicator not in self.hidden

    def keep(self, items: Iterable[Any]) -> list[Any]:
        """The items (findings: anything with an ``indicator``) of the families this call did not switch off."""
        return [item for item in items if self.shows(item.indicator)]


EVERYTHING = CallConfiguration()


def _refuse(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, f"the request's {REQUEST_KEY} extension is not valid: {message}",
                    fields={f"extension.{REQUEST_KEY}": [message]})


def parse_call_configuration(extension: Any) -> CallConfiguration:
    """The configuration of a call from its (validated) top-level ``extension``; ApiError 400 naming a bad value."""
    if not isinstance(extension, Mapping) or REQUEST_KEY not in extension:
        return EVERYTHING
    settings = extension[REQUEST_KEY]
    if not isinstance(settings, Mapping):
        raise _refuse("must be a JSON object of option codes and values")
    if len(settings) > MAX_PROPERTIES:
        raise _refuse(f"at most {MAX_PROPERTIES} options, this one has {len(settings)}")
    hidden = set()
    for code, value in settings.items():
        option = _BY_CODE.get(code)
        if option is None:
            continue  # CRD dev-17: configuration the service does not support is ignored
        if not isinstance(value, bool):
            raise _refuse(f"{str(code)[:64]!r} must be a boolean (true or false)")
        if not value:
            hidden.add(option.indicator)
    return CallConfiguration(frozenset(hidden))
