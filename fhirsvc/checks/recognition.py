"""Which drug an order (or a medication record) is for.

Contract "Recognising a medication": match a code in the knowledge's code lists first, then the
whole-word name of an ingredient or brand in a coding ``display`` or the ``text``. An order names its
drug through ``medicationCodeableConcept`` or ``medicationReference`` (R5: ``medication``, a CodeableReference).
A reference is resolved by the evaluation layer alone (``evaluation/references.py``: contained, the same Bundle,
prefetch, the FHIR server) into ``PatientContext.referenced_medications``, keyed by ``medication_reference_key``;
unresolved, the reference's ``display`` is read as text. A vaccine order names it through ``ServiceRequest.code``
or ``Immunization.vaccineCode``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fhirsvc.checks.reading.resources import is_object
from fhirsvc.drugmodel.profile import DrugProfile
from fhirsvc.terminology import ValueSetMatcher, codings

Resource = Mapping[str, Any]
Concept = Mapping[str, Any]


def medication_reference(resource: Resource) -> Mapping[str, Any]:
    """The Reference naming the medication of an order or a medication record: R4 ``medicationReference``, R5
    ``medication.reference`` (a CodeableReference); empty if there is none."""
    ref = resource.get("medicationReference")
    if type(ref) is dict:  # the common cases first: a dict, or nothing (R4 medicationCodeableConcept)
        return ref
    if ref is None and resource.get("medication") is None:
        return {}
    if not is_object(ref):
        medication = resource.get("medication")
        ref = medication.get("reference") if is_object(medication) else None
    return ref if is_object(ref) else {}


def medication_code(resource: Resource) -> Mapping[str, Any] | None:
    """The CodeableConcept naming the medication: R4 ``medicationCodeableConcept``, R5 ``medication.concept``."""
    concept = resource.get("medicationCodeableConcept")
    if type(concept) is dict:
        return concept or None
    if not is_object(concept):
        medication = resource.get("medication")
        concept = medication.get("concept") if is_object(medication) else None
    return concept if is_object(concept) and concept else None


def medication_reference_key(resource: Resource) -> str | None:
    """The key of a resource's medication reference in ``PatientContext.referenced_medications``: the reference
    as written, a contained one (``#id``) prefixed with its owner's ``Type/id`` (two orders may each contain a
    ``#med``); None without a reference."""
    return _reference_key(resource, medication_reference(resource))


def _reference_key(resource: Resource, ref: Mapping[str, Any]) -> str | None:
    target = ref.get("reference")
    if not isinstance(target, str) or not target:
        return None
    if target.startswith("#"):
        return f"{resource.get('resourceType', '')}/{resource.get('id', '')}{target}"
    return target


def medication_concepts(resource: Resource, referenced: Mapping[str, Resource] | None = None) -> list[Concept]:
    """The CodeableConcepts that name what a resource orders or records: the medication (code of a
    referenced Medication, or the reference's display as text), a ServiceRequest's code, an
    Immunization's vaccine code."""
    rtype = resource.get("resourceType")
    if rtype == "ServiceRequest":
        return [resource["code"]] if is_object(resource.get("code")) else []
    if rtype == "Immunization":
        return [resource["vaccineCode"]] if is_object(resource.get("vaccineCode")) else []
    code = medication_code(resource)
    out: list[Concept] = [] if code is None else [code]
    ref = medication_reference(resource)
    if ref:
        out += _referenced_concepts(resource, ref, referenced or {})
    return out


def _referenced_concepts(resource: Resource, ref: Mapping[str, Any], referenced: Mapping[str, Resource]
                         ) -> list[Concept]:
    """The concepts a medication reference names: the referenced Medication's code and ingredients (resolved in
    ``referenced``), then the reference's display as text."""
    out: list[Any] = []
    key = _reference_key(resource, ref)
    med = referenced.get(key) if key is not None else None
    if is_object(med):
        if med.get("code"):
            out.append(med["code"])
        out += [i["itemCodeableConcept"] for i in _list(med.get("ingredient")) if i.get("itemCodeableConcept")]
    if ref.get("display"):
        out.append({"text": ref["display"]})
    return [concept for concept in out if is_object(concept)]


def _list(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON array (nothing if it is not one): sent data can have any JSON type."""
    return [item for item in value if is_object(item)] if isinstance(value, list) else []


def concept_texts(concepts: Iterable[Concept]) -> list[str]:
    """The names the concepts carry, where a drug's or a value set's name is looked for: each concept's ``text``,
    then its codings' ``display`` (non-empty strings only)."""
    texts = []
    for concept in concepts:
        texts.append(concept.get("text"))
        texts += [c.get("display") for c in codings(concept)]
    return [t for t in texts if t and isinstance(t, str)]


def recognize(concepts: Sequence[Concept], drugs: Iterable[DrugProfile]) -> list[DrugProfile]:
    """The knowledge drugs the concepts name: by code if any code matches, else by whole-word name."""
    drugs = list(drugs)
    by_code = [d for d in drugs if any(d.has_code(c.get("system"), c.get("code"))
                                       for concept in concepts for c in codings(concept))]
    if by_code:
        return by_code
    texts = concept_texts(concepts)
    return [d for d in drugs if any(d.find_name(t) for t in texts)]


def in_value_set(concepts: Sequence[Concept], matcher: ValueSetMatcher) -> bool:
    """True if a concept is a member of the value set, by code or by whole-word name."""
    return any(matcher.matches_concept(c) for c in concepts)
