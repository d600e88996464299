"""``Run.others`` answers what a scan of every draft order and medication per order
answered (the records that can conflict with an order: the other live drafts, then the current medications,
each ``Type/id`` once), from selections made once per call."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsvc.checks.base import Run
from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.reading.medications import is_current, is_live_draft
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.recognition import in_value_set, medication_concepts

STATUSES = ["draft", "active", "on-hold", "cancelled", "stopped", "completed", "entered-in-error", None]
record = st.fixed_dictionaries({"resourceType": st.sampled_from(["MedicationRequest", "MedicationStatement"]),
                                "id": st.sampled_from(["a", "b", "c", "d"]), "status": st.sampled_from(STATUSES)})


def scan(order, drafts, medications, with_medications: bool) -> list[tuple[dict, str]]:
    """The reference: one pass over every record for this order."""
    seen, out = {reference_key(order)}, []
    for draft in drafts:
        if reference_key(draft) not in seen and is_live_draft(draft):
            seen.add(reference_key(draft))
            out.append((draft, "draft"))
    for med in medications if with_medications else ():
        if reference_key(med) not in seen and is_current(med):
            seen.add(reference_key(med))
            out.append((med, "medication"))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(record, max_size=7), st.lists(record, max_size=7), st.booleans())
def test_the_selection_is_the_scan(knowledge, drafts, medications, with_medications):
    context = PatientContext(now=datetime(2026, 11, 24, tzinfo=UTC), hook="order-sign", draft_orders=tuple(drafts),
                             medications=tuple(medications), judged_ids=frozenset(d["id"] for d in drafts))
    run = Run(context, knowledge)
    for order in [*drafts, *medications]:
        expected = scan(order, drafts, medications, with_medications)
        others = run.others(order, medications=with_medications)
        assert [(id(r), k) for r, k in others] == [(id(r), k) for r, k in expected]
        assert len(others) == len(expected)
        assert [(id(r), k) for r, k in (others[i] for i in range(len(others)))] == [(id(r), k) for r, k in expected]
        assert others.keys(2) == [reference_key(r) for r, _ in expected[:2]]


MEDICATION_NAMES = ["anakinra", "Kineret 100 mg", "etanercept", "adalimumab", "MMR vaccine", "zoster vaccine live",
                    "methotrexate", "", "x" * 300]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(MEDICATION_NAMES), min_size=1, max_size=6))
def test_concepts_in_answers_as_in_value_set_for_every_value_set(knowledge, names):
    """``Run.concepts_in`` (each record's concept keys read once per call) against ``in_value_set`` asked anew,
    for every value set of the knowledge and records named by text, display or an unmemoisable long text."""
    medications = tuple({"resourceType": "MedicationStatement", "id": f"m{i}", "status": "active",
                         "medicationCodeableConcept": {"text": name} if i % 2 else
                         {"coding": [{"system": "http://example.org/local", "code": str(i), "display": name}]}}
                        for i, name in enumerate(names))
    run = Run(PatientContext(now=datetime(2026, 11, 24, tzinfo=UTC), hook="order-sign", medications=medications),
              knowledge)
    for matcher in knowledge.value_sets.values():
        for med in medications:
            assert run.concepts_in(med, matcher) == in_value_set(medication_concepts(med), matcher)
