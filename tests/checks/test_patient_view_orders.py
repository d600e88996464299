"""Patient-view's live-vaccine reminders ask each order of the medication list only about the interaction classes
they remind of (``monitoring.reminded_orders``): the same orders, drugs and interactions, in the same order, as
asking the drug index for every interaction class the order belongs to (``DrugIndex.reverse``) and keeping those."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fhirsvc.checks.base import Run
from fhirsvc.checks.config import PATIENT_VIEW_INTERACTION_CLASSES
from fhirsvc.checks.monitoring import reminded_orders, therapies
from fhirsvc.checks.reading.medications import is_live_draft
from fhirsvc.terminology import CVX, RXNORM
from tests.checks.conftest import ANAKINRA_RXNORM, concept, context, current_med, med_request

MEDICATIONS = [
    concept(ANAKINRA_RXNORM),
    concept({"system": CVX, "code": "03"}),  # MMR, a live vaccine by code
    concept({"system": CVX, "code": "03", "display": "MMR"}, {"system": CVX, "code": "141"}),
    concept({"system": CVX, "code": "141", "display": "influenza, seasonal, injectable"}),  # not live
    concept(text="M-M-R II subcutaneous injection"),  # a live vaccine by name
    concept(text="measles vaccine 0.5 mL"),
    concept({"system": "urn:local", "code": "x1", "display": "oral polio vaccine"}),
    concept({"system": RXNORM, "code": "6851", "display": "methotrexate"}),
    concept(text="adalimumab 40 MG/0.4ML"),
    concept(text="mumps " + "x" * 300),  # too long to be remembered
]
STATUSES = ["active", "draft", "on-hold", "completed", "stopped", "cancelled", "entered-in-error", "unknown"]


@st.composite
def medication_lists(draw) -> list[dict]:
    meds = []
    for number in range(draw(st.integers(0, 10))):
        med = med_request(f"m{number}", draw(st.sampled_from(MEDICATIONS)), status=draw(st.sampled_from(STATUSES)))
        if draw(st.booleans()):
            med = {**med, "resourceType": "MedicationStatement"}
        meds.append(med)
    return meds


@settings(max_examples=200, deadline=None)
@given(medication_lists(), st.booleans())
def test_reminded_orders_are_the_index_reverse_interactions_kept(knowledge, meds, on_anakinra):
    records = [current_med("kineret", concept(ANAKINRA_RXNORM))] if on_anakinra else []
    run = Run(context(hook="patient-view", medications=[*records, *meds]), knowledge)
    on = therapies(run)
    drugs = {drug.id for drug, _ in on}
    expected = [(id(med), found.drug.id, found.interaction) for med in run.context.medications
                if med.get("resourceType") == "MedicationRequest" and is_live_draft(med)
                and med.get("status") != "unknown"
                for found in run.index.reverse(run.concepts(med))
                if found.drug.id in drugs and found.interaction.value_set in PATIENT_VIEW_INTERACTION_CLASSES]
    assert [(id(job.order), job.drug.id, job.interaction) for job in reminded_orders(run, on)] == expected
