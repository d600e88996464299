"""What a ``Run`` reads of the records once per call (each order's and medication record's concepts, keys and
drugs; each condition's statuses and code; each allergy's concepts) answers as asking every record anew: the
selections of the interaction and duplicate checks, the records of a drug, and the records in a value set."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsvc.checks.base import Run
from fhirsvc.checks.config import VS_NOT_ACTIVE_CONDITION
from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.index import drug_index
from fhirsvc.checks.reading.conditions import _status_code, allergy_concepts, condition_in, condition_standing
from fhirsvc.checks.recognition import in_value_set, medication_concepts, recognize
from fhirsvc.terminology import ICD10CM, RXNORM, SNOMED, concept_key
from tests.checks.test_others import scan

NOW = datetime(2026, 11, 24, tzinfo=UTC)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Medications named by text, by an RxNorm code (anakinra, etanercept), by a display, or not at all.
NAMES = st.sampled_from([
    {"text": "Kineret 100 mg"}, {"text": "etanercept"}, {"text": "adalimumab 40 MG [Humira]"},
    {"text": "MMR vaccine live"}, {"text": "methotrexate"}, {"text": ""}, {"text": "x" * 300},
    {"coding": [{"system": RXNORM, "code": "72435"}]},
    {"coding": [{"system": RXNORM, "code": "214555", "display": "etanercept"}], "text": "Enbrel"},
    {"coding": [{"system": "http://example.org/local", "code": "1", "display": "anakinra"}]},
])
STATUSES = st.sampled_from(["draft", "active", "on-hold", "cancelled", "stopped", "completed", "entered-in-error"])
# R5's CodeableReference may hold a concept and a reference both: a record named by two concepts, the second the
# reference's display (``recognition.medication_concepts``), so that a match on either one counts.
DISPLAYS = st.sampled_from([None, "Kineret", "etanercept", "MMR vaccine live", "saline"])


def _record(rtype: str, rid: str, status: str, name: dict, display: str | None) -> dict:
    medication = ({"medication": {"concept": name, "reference": {"display": display}}} if display is not None
                  else {"medicationCodeableConcept": name})
    return {"resourceType": rtype, "id": rid, "status": status, **medication}


record = st.builds(_record, st.sampled_from(["MedicationRequest", "MedicationStatement"]), st.sampled_from("abcd"),
                   STATUSES, NAMES, DISPLAYS)
service_request = st.builds(lambda rid, name: {"resourceType": "ServiceRequest", "id": rid, "status": "draft",
                                               "code": name}, st.sampled_from("ab"), NAMES)


def drug_ids(knowledge, resource) -> list[str]:
    return [d.id for d in recognize(medication_concepts(resource), drug_index(knowledge).drugs)]


def ids(records) -> list[tuple[int, str]]:
    return [(id(r), kind) for r, kind in records]


@SETTINGS
@given(st.lists(st.one_of(record, service_request), max_size=5), st.lists(record, max_size=6), st.booleans())
def test_the_selections_are_a_scan_of_the_records(knowledge, drafts, medications, with_medications):
    run = Run(PatientContext(now=NOW, hook="order-sign", draft_orders=tuple(drafts), medications=tuple(medications),
                             judged_ids=frozenset(d["id"] for d in drafts)), knowledge)
    urls = [*knowledge.value_sets][:40]
    for order in [*drafts, *medications]:
        expected = scan(order, drafts, medications, with_medications)
        for url in urls:
            matcher = knowledge.value_sets[url]
            assert ids(run.others_in(order, url, medications=with_medications)) == ids(
                (r, k) for r, k in expected if in_value_set(medication_concepts(r), matcher))
        for drug in [*(d.id for d in run.drugs), "none"]:
            assert ids(run.others_of(order, drug, medications=with_medications)) == ids(
                (r, k) for r, k in expected if drug in drug_ids(knowledge, r))
            assert ids(run.others_of(order, drug, drafts=False)) == ids(
                (r, k) for r, k in scan(order, drafts, medications, True)
                if k != "draft" and drug in drug_ids(knowledge, r))
            assert ids(run.others_of(order, drug, types=frozenset({"MedicationRequest"}))) == ids(
                (r, k) for r, k in scan(order, drafts, medications, True)
                if r["resourceType"] == "MedicationRequest" and drug in drug_ids(knowledge, r))


@SETTINGS
@given(st.lists(record, max_size=8))
def test_the_medications_of_a_drug_and_in_a_value_set_are_a_scan(knowledge, medications):
    run = Run(PatientContext(now=NOW, hook="order-sign", medications=tuple(medications)), knowledge)
    for drug in [*(d.id for d in run.drugs), "none"]:
        assert [id(m) for m in run.medications_of(drug)] == [
            id(m) for m in medications if drug in drug_ids(knowledge, m)]
    for url, matcher in knowledge.value_sets.items():
        assert [id(m) for m in run.medications_in(url)] == [
            id(m) for m in medications if in_value_set(medication_concepts(m), matcher)]
    assert run.medications_in(None) == ()


CLINICAL = st.one_of(st.none(), st.sampled_from(["active", "recurrence", "relapse", "inactive", "remission",
                                                 "resolved"]), st.integers())
VERIFICATION = st.one_of(st.none(), st.sampled_from(["confirmed", "provisional", "refuted", "entered-in-error"]))


def status(code):
    return None if code is None else {"coding": [{"code": code}]}


conditions = st.builds(
    lambda cid, clinical, verification, code, abated: {
        "resourceType": "Condition", "id": cid, "code": code,
        **({"clinicalStatus": status(clinical)} if clinical is not None else {}),
        **({"verificationStatus": status(verification)} if verification is not None else {}),
        **({"abatementDateTime": "2025-01-01"} if abated else {})},
    st.sampled_from("abc"), CLINICAL, VERIFICATION,
    st.sampled_from([{"text": "Latex allergy"}, {"text": "pneumonia"}, {"text": "Personal history of pneumonia"},
                     {"coding": [{"system": ICD10CM, "code": "Z87.01", "display": "pneumonia history"}]},
                     {"coding": [{"system": SNOMED, "code": "233604007", "display": "Pneumonia"}]},
                     {"text": "pregnant"}, {"text": "neutropenia"}, {"text": ["not", "text"]}, None]),
    st.booleans())


def reference_standing(condition) -> tuple[bool, bool]:
    """Whether a condition is active, and whether it is on the list, as the contract words them (each status read
    again for each question)."""
    clinical = _status_code(condition.get("clinicalStatus"))
    verification = _status_code(condition.get("verificationStatus"))
    excluded = verification in ("refuted", "entered-in-error")
    active = not (clinical in ("inactive", "resolved", "remission") or excluded) and not (
        clinical is None and any(k.startswith("abatement") for k in condition))
    return active, not excluded and clinical != "resolved"


@SETTINGS
@given(conditions)
def test_a_condition_standing_reads_each_status_once(condition):
    assert condition_standing(condition) == reference_standing(condition)


@SETTINGS
@given(st.lists(conditions, max_size=6))
def test_the_conditions_in_a_value_set_are_a_scan(knowledge, records):
    run = Run(PatientContext(now=NOW, hook="order-sign", conditions=tuple(records)), knowledge)
    not_active = knowledge.value_sets.get(VS_NOT_ACTIVE_CONDITION)
    for url, matcher in knowledge.value_sets.items():
        active = [id(c) for c in records if reference_standing(c)[0]
                  and condition_in(matcher, c.get("code"), not_active, ...)]
        recorded = [id(c) for c in records if reference_standing(c)[1]
                    and condition_in(matcher, c.get("code"), not_active, ...)]
        assert [id(c) for c in run.conditions_in(url)] == active
        assert [id(c) for c in run.recorded_in(url)] == recorded


allergies = st.builds(
    lambda code, substance, clinical: {"resourceType": "AllergyIntolerance", "id": "x", "code": code,
                                       "reaction": [{"substance": substance}],
                                       **({"clinicalStatus": status(clinical)} if clinical else {})},
    st.sampled_from([{"text": "Latex"}, {"text": "natural rubber latex"}, {"text": "anakinra"}, {"text": "peanut"},
                     None]),
    st.sampled_from([{"text": "Kineret"}, {"text": "latex gloves"}, {"text": "x" * 300}, None]),
    st.sampled_from([None, "active", "inactive"]))


@SETTINGS
@given(st.lists(allergies, max_size=5))
def test_the_allergies_in_a_value_set_are_a_scan(knowledge, records):
    run = Run(PatientContext(now=NOW, hook="order-sign", allergies=tuple(records)), knowledge)
    for url, matcher in knowledge.value_sets.items():
        assert [id(a) for a in run.allergies_in(url)] == [
            id(a) for a in records if _status_code(a.get("clinicalStatus")) != "inactive"
            and in_value_set(allergy_concepts(a), matcher)]


def concept_key_in_general(concept) -> tuple | None:
    """``concept_key`` by its general reading: the text, then each object coding's system, code and display."""
    if not isinstance(concept, dict):
        return None
    found = concept.get("coding")
    parts = [concept.get("text")] + [part for coding in (found if isinstance(found, list) else ())
                                     if isinstance(coding, dict)
                                     for part in (coding.get("system"), coding.get("code"), coding.get("display"))]
    if any(p is not None and (not isinstance(p, str) or len(p) > 200) for p in parts):
        return None
    return tuple(parts)


values = st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["x" * 201, "y" * 200]), st.integers(),
                   st.lists(st.text(max_size=1), max_size=1))
codings = st.one_of(st.fixed_dictionaries({}, optional={"system": values, "code": values, "display": values}),
                    values)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.fixed_dictionaries({}, optional={"text": values, "coding": st.one_of(st.lists(codings, max_size=3),
                                                                                          values)}), values))
def test_the_concept_key_of_one_coding_is_its_general_reading(concept):
    assert concept_key(concept) == concept_key_in_general(concept)


statuses = st.one_of(values, st.fixed_dictionaries({}, optional={"coding": st.one_of(st.lists(codings, max_size=3),
                                                                                       values), "text": values}))


def status_code_in_general(concept) -> str | None:
    """A status's code by the general reading: the first object coding with a code."""
    if concept is None or isinstance(concept, str):
        return concept
    found = concept.get("coding") if isinstance(concept, dict) else None
    return next((str(c["code"]) for c in (found if isinstance(found, list) else ())
                 if isinstance(c, dict) and c.get("code")), None)


@settings(max_examples=500, deadline=None)
@given(statuses)
def test_the_status_code_of_one_coding_is_its_general_reading(concept):
    assert _status_code(concept) == status_code_in_general(concept)
