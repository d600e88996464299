"""What every reading asks of a record: a CodeableConcept's codes (its text: ``fhirtypes.concept_text``) and a
resource's ``Type/id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from fhirsvc.terminology import ValueSetMatcher, codings

Resource = Mapping[str, Any]


def is_object(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether a value is a JSON object (a dict, or a Mapping such as the knowledge's frozen ones): ``isinstance``
    with ``Mapping`` alone, without its abstract-class check on the values sent data mostly has (dicts, absent)."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def concept_codes(concept: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The codings of a CodeableConcept as small {system, code, display} dicts (for facts)."""
    return [{k: str(c[k]) for k in ("system", "code", "display") if c.get(k)} for c in codings(concept)]


def has_code_in(matcher: ValueSetMatcher, concept: Mapping[str, Any] | None) -> bool:
    """True if a coding of the concept is a member by code (no name matching: answers like
    "Not pregnant" contain member names)."""
    return any(matcher.has_code(c.get("system"), c.get("code")) for c in codings(concept))


def code_pairs(concept: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return [(str(c.get("system") or ""), c["code"]) for c in codings(concept)
            if isinstance(c.get("code"), str) and c["code"]]


def reference_key(resource: Resource) -> str:
    """``Type/id`` of a resource (for facts and to tell orders apart)."""
    return f"{resource.get('resourceType', '')}/{resource.get('id', '')}"
