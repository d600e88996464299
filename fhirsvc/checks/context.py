"""What the checks see of a patient: the data the EHR sent or we fetched, and the draft orders.

Built by the evaluation layer (fhirsvc/evaluation) from prefetch or the EHR's FHIR server; the checks never do I/O.
Resources are FHIR R4 JSON (plain mappings). The evaluation layer has already normalised the orders' known
defects (``doseAndRate`` given as an object, ``doseQuantity`` directly on the dosage, ``category`` as an
object, STU3/DSTU2 shapes), so a MedicationRequest's ``dosageInstruction[].doseAndRate`` is a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Resource = Mapping[str, Any]

# Prefetch keys of the service contract (docs/cds-checks.md), in this order.
PATIENT, CONDITIONS, ALLERGIES, MEDICATIONS, OBSERVATIONS = (
    "patient", "conditions", "allergies", "medications", "observations")
DATA_KEYS = (PATIENT, CONDITIONS, ALLERGIES, MEDICATIONS, OBSERVATIONS)
# The optional prefetch key of MedicationStatements: read, when sent, into the medication list (MEDICATIONS);
# the checks know no key of its own (a failure of it is a failure of the medication list).
STATEMENTS = "statements"


@dataclass(frozen=True)
class PatientContext:
    """One CDS call's view of the patient. A key in ``unavailable`` could not be had (the EHR answered
    an OperationOutcome, or the fetch failed): its data is empty and checks that need it must say
    "Unable to check". An empty tuple for a key not in ``unavailable`` means "nothing recorded"."""

    now: datetime  # timezone-aware; fixed in tests
    hook: str  # "order-select" | "order-sign"
    patient: Resource | None = None
    conditions: tuple[Resource, ...] = ()
    allergies: tuple[Resource, ...] = ()
    # MedicationRequest (any status) and MedicationStatement (from ``medications`` and ``statements``; an R5
    # ``recorded`` statement read as R4 ``active`` or, its effective period ended, ``completed``)
    medications: tuple[Resource, ...] = ()
    observations: tuple[Resource, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)  # key -> why
    draft_orders: tuple[Resource, ...] = ()  # MedicationRequest, ServiceRequest, Immunization
    judged_ids: frozenset[str] = frozenset()  # ids of the draft orders to judge
    # Medication resources named by medicationReference, resolved by the evaluation layer from `contained`, the
    # draft Bundle, prefetch or the FHIR server; keyed by the reference string as written in the order.
    referenced_medications: Mapping[str, Resource] = field(default_factory=dict)

    def judged_orders(self) -> tuple[Resource, ...]:
        """The draft orders this call judges (order-select: the selections; order-sign: all)."""
        return tuple(o for o in self.draft_orders if o.get("id") in self.judged_ids)
