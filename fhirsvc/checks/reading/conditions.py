"""Conditions and allergies: which records count (active, on the list, not refuted or entered-in-error), what an
allergy is to, and whether a condition's concept is a value set's condition (by code before name, never a
history or screening code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.checks.context import Resource
from fhirsvc.checks.reading.resources import code_pairs, is_object
from fhirsvc.terminology import MEMO_SIZE, ValueSetMatcher, codings, concept_key

_INACTIVE_CLINICAL = {"inactive", "resolved", "remission"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}


def _status_code(concept: Any) -> str | None:
    """The code of a status (a CodeableConcept's first coding with a code; R5 may send a plain code)."""
    if concept is None or isinstance(concept, str):
        return concept
    found = concept.get("coding") if type(concept) is dict else None
    if type(found) is list and len(found) == 1 and type(found[0]) is dict:  # the common case: one coding
        code = found[0].get("code")
        return str(code) if code else None
    for coding in codings(concept):
        if coding.get("code"):
            return str(coding["code"])
    return None


def condition_standing(condition: Resource) -> tuple[bool, bool]:
    """(``is_active_condition``, ``is_recorded_condition``) of a condition, its statuses read once."""
    clinical = _status_code(condition.get("clinicalStatus"))
    if _status_code(condition.get("verificationStatus")) in _EXCLUDED_VERIFICATION:
        return False, False
    abated = clinical is None and any(k.startswith("abatement") for k in condition)
    return clinical not in _INACTIVE_CLINICAL and not abated, clinical != "resolved"


def is_recorded_condition(condition: Resource) -> bool:
    """The patient's diagnosis on the list: not refuted, not entered-in-error, and not resolved (a disease in
    remission, relapse or recurrence, inactive, or with no status, is still the patient's diagnosis; a
    resolved one is gone with negligible risk of return)."""
    return condition_standing(condition)[1]


def is_active_condition(condition: Resource) -> bool:
    """Active (or recurrence/relapse; no status counts as active), not refuted, not entered-in-error,
    and not abated: remission, resolved and inactive are not active."""
    return condition_standing(condition)[0]


def is_active_allergy(allergy: Resource) -> bool:
    """An AllergyIntolerance that is active (or has no clinical status), not refuted, not entered-in-error."""
    clinical = _status_code(allergy.get("clinicalStatus"))
    verification = _status_code(allergy.get("verificationStatus"))
    return clinical not in _INACTIVE_CLINICAL and verification not in _EXCLUDED_VERIFICATION


def allergy_concepts(allergy: Resource) -> list[Mapping[str, Any]]:
    """What an allergy is to: its code and each reaction's substance."""
    found = [allergy["code"]] if allergy.get("code") else []
    found += [r["substance"] for r in allergy.get("reaction") or () if r.get("substance")]
    return found


_SYSTEMS: dict[int, tuple[ValueSetMatcher, frozenset[str]]] = {}


def code_systems(matcher: ValueSetMatcher) -> frozenset[str]:
    """The code systems a value set covers: those of its listed codes and of its code filters (a system
    that only carries the knowledge's own match terms is a name list, not codes a record can carry)."""
    known = _SYSTEMS.get(id(matcher))
    if known is None or known[0] is not matcher:
        systems = {key.split("|", 1)[0] for key in matcher.codes} | {system for system, _ in matcher.code_patterns}
        systems = {s for s in systems if s and not s.endswith("/CodeSystem/match-terms")}
        known = _SYSTEMS[id(matcher)] = (matcher, frozenset(systems))
    return known[1]


def not_an_active_condition(concept: Mapping[str, Any] | None, not_active: ValueSetMatcher | None) -> bool:
    """True if a coding of the concept is a history, screening, exposure or family-history code (the
    knowledge's value set of codes that are never the active condition), whatever its text says."""
    return not_active is not None and any(not_active.has_code(s, c) for s, c in code_pairs(concept))


_VERDICTS: dict[tuple[int, int, tuple[str | None, ...]], tuple[ValueSetMatcher, ValueSetMatcher | None, bool]] = {}


def condition_in(matcher: ValueSetMatcher, concept: Mapping[str, Any] | None,
                 not_active: ValueSetMatcher | None = None, key: Any = ...) -> bool:
    """Whether a condition's (or a reason's) concept is the value set's condition.

    Judged by code: when a coding has a code from a system the value set covers, membership is by code
    alone (the display and text of ICD-10-CM Z87.01 "Personal history of pneumonia" do not make it a
    pneumonia). The whole-word names of the value set are matched in ``text`` and displays only for a
    concept with no code from such a system (uncoded, or local codes only). A code of the ``not_active``
    value set never counts. The same problem-list entries come in every call: answers are remembered by
    ``concept_key`` (at most MEMO_SIZE; ``key``: that key if the caller has it)."""
    if not is_object(concept) or not concept:
        return False
    if key is ...:
        key = concept_key(concept)
    if key is None:
        return _condition_in(matcher, concept, not_active)
    memo = (id(matcher), id(not_active), key)
    known = _VERDICTS.get(memo)
    if known is not None and known[0] is matcher and known[1] is not_active:
        return known[2]
    if len(_VERDICTS) >= MEMO_SIZE:
        _VERDICTS.clear()
    verdict = _condition_in(matcher, concept, not_active)
    _VERDICTS[memo] = (matcher, not_active, verdict)
    return verdict


def _condition_in(matcher: ValueSetMatcher, concept: Mapping[str, Any],
                  not_active: ValueSetMatcher | None) -> bool:
    if not_an_active_condition(concept, not_active):
        return False
    coded = code_pairs(concept)
    systems = code_systems(matcher)
    covered = [(s, c) for s, c in coded if s in systems]
    if covered:
        return any(matcher.has_code(s, c) for s, c in covered)
    texts = [concept.get("text"), *(c.get("display") for c in codings(concept))]
    return any(matcher.find_name(text) for text in texts if isinstance(text, str))
