"""Fixtures and builders for the rule tests: a fixed clock, small R4 resources, a PatientContext.

The ``knowledge`` fixture here loads the shipped knowledge directly (no Flask app), so the rule tests
depend only on the knowledge and the checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.engine import run_checks
from fhirsvc.checks.findings import Finding
from fhirsvc.knowledge import Knowledge, load_knowledge
from fhirsvc.terminology import ICD10CM, LOINC, NDC, RXNORM, SNOMED
from tests.conftest import KNOWLEDGE_DIR

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PATIENT_ID = "pat-1"
ANAKINRA_RXNORM = {"system": RXNORM, "code": "72435", "display": "anakinra"}
KINERET_NDC = {"system": NDC, "code": "66658-234-07"}


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge([KNOWLEDGE_DIR])


def when(days: float = 0, hours: float = 0) -> str:
    """An instant ``days``/``hours`` before NOW, as a FHIR dateTime."""
    return (NOW - timedelta(days=days, hours=hours)).isoformat()


def date_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).date().isoformat()


def birth_date(years: int, days_after_birthday: int = 10) -> str:
    """A birth date giving ``years`` completed years at NOW."""
    born = NOW.date().replace(year=NOW.year - years) - timedelta(days=days_after_birthday)
    return born.isoformat()


def patient(years: int | None = 46, **extra: Any) -> dict:
    res = {"resourceType": "Patient", "id": PATIENT_ID, "name": [{"family": "Testperson", "given": ["Ada"]}]}
    if years is not None:
        res["birthDate"] = birth_date(years)
    return {**res, **extra}


def concept(*codings: dict, text: str | None = None) -> dict:
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = [dict(c) for c in codings]
    if text:
        out["text"] = text
    return out


def dosage(dose: float | None = 100, unit: str | None = "mg", freq: int | None = 1, period: float | None = 1,
           period_unit: str | None = "d", timing: dict | None = None, route: dict | None = None,
           code: str | None = None) -> dict:
    d: dict[str, Any] = {}
    if timing is not None:
        d["timing"] = timing
    elif code is not None:
        d["timing"] = {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                                            "code": code}]}}
    else:
        pairs = (("frequency", freq), ("period", period), ("periodUnit", period_unit))
        repeat = {k: v for k, v in pairs if v is not None}
        d["timing"] = {"repeat": repeat}
    if dose is not None:
        quantity: dict[str, Any] = {"value": dose}
        if unit is not None:
            quantity["unit"] = unit
        d["doseAndRate"] = [{"doseQuantity": quantity}]
    if route is not None:
        d["route"] = route
    return d


def med_request(rid: str = "rx-1", medication: dict | None = None, *, status: str = "draft",
                dosages: Iterable[dict] | None = None, reference: str | None = None, **extra: Any) -> dict:
    """A MedicationRequest; by default anakinra by RxNorm code, 100 mg once a day."""
    res: dict[str, Any] = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
                           "subject": {"reference": f"Patient/{PATIENT_ID}"}}
    if reference is not None:
        res["medicationReference"] = {"reference": reference}
    else:
        res["medicationCodeableConcept"] = medication if medication is not None else concept(ANAKINRA_RXNORM)
    res["dosageInstruction"] = list(dosages) if dosages is not None else [dosage()]
    return {**res, **extra}


def current_med(rid: str, medication: dict, status: str = "active", **extra: Any) -> dict:
    return med_request(rid, medication, status=status, **extra)


def stopped_med(rid: str, medication: dict, end: str | None, status: str = "stopped",
                via: str = "bounds") -> dict:
    res = med_request(rid, medication, status=status)
    if end is not None and via == "bounds":
        res["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2025-01-01", "end": end}
    elif end is not None:
        res["dispenseRequest"] = {"validityPeriod": {"start": "2025-01-01", "end": end}}
    return res


def condition(code: str, system: str = SNOMED, text: str | None = None, cid: str | None = None,
              clinical: str | None = "active", verification: str | None = None) -> dict:
    res: dict[str, Any] = {"resourceType": "Condition", "id": cid or f"cond-{code}",
                           "subject": {"reference": f"Patient/{PATIENT_ID}"},
                           "code": concept({"system": system, "code": code}, text=text) if code else concept(text=text)}
    if clinical:
        res["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                             "code": clinical}]}
    if verification:
        res["verificationStatus"] = {"coding": [{"code": verification}]}
    return res


def allergy(code: dict | None = None, text: str | None = None, aid: str = "alg-1", clinical: str | None = "active",
            verification: str | None = "confirmed") -> dict:
    res: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": aid,
                           "patient": {"reference": f"Patient/{PATIENT_ID}"},
                           "code": concept(*([code] if code else []), text=text)}
    if clinical:
        res["clinicalStatus"] = {"coding": [{"code": clinical}]}
    if verification:
        res["verificationStatus"] = {"coding": [{"code": verification}]}
    return res


def observation(code: str, value: float | None, unit: str | None, days: float = 1, system: str = LOINC,
                oid: str | None = None, hours: float = 0, status: str = "final", ucum: bool = True,
                value_concept: dict | None = None) -> dict:
    res: dict[str, Any] = {"resourceType": "Observation", "id": oid or f"obs-{code}-{days}-{hours}",
                           "status": status, "code": concept({"system": system, "code": code}),
                           "subject": {"reference": f"Patient/{PATIENT_ID}"},
                           "effectiveDateTime": when(days, hours)}
    if value is not None:
        quantity: dict[str, Any] = {"value": value, "unit": unit}
        if ucum and unit is not None:
            quantity.update(system="http://unitsofmeasure.org", code=unit)
        res["valueQuantity"] = quantity
    if value_concept is not None:
        res["valueCodeableConcept"] = value_concept
    return res


def weight(kg: float, days: float = 5, unit: str = "kg") -> dict:
    return observation("29463-7", kg, unit, days, oid=f"wt-{days}")


def anc_count(value: float, unit: str = "10*9/L", days: float = 3, code: str = "751-8") -> dict:
    return observation(code, value, unit, days, oid=f"anc-{days}")


def crcl(value: float, days: float = 10, code: str = "35591-7", unit: str = "mL/min") -> dict:
    return observation(code, value, unit, days, oid=f"kidney-{code}-{days}")


# Conditions that silence the indication rule (#17) when a test is about something else.
RA = condition("69896004", text="Rheumatoid arthritis", cid="ra")
NOMID = condition("M04.2", ICD10CM, text="NOMID", cid="nomid")
METHOTREXATE = current_med("mtx", concept({"system": RXNORM, "code": "6851", "display": "methotrexate"}),
                           status="completed")
RECENT_KIDNEY = crcl(80, days=20)
RECENT_ANC = anc_count(4.0, days=5)


def context(*drafts: dict, judged: Iterable[str] | None = None, hook: str = "order-sign",
            pat: dict | bool | None = True, conditions: Iterable[dict] = (), allergies: Iterable[dict] = (),
            medications: Iterable[dict] = (), observations: Iterable[dict] = (),
            unavailable: dict[str, str] | None = None, referenced: dict | None = None) -> PatientContext:
    ids = frozenset(judged) if judged is not None else frozenset(d["id"] for d in drafts)
    return PatientContext(
        now=NOW, hook=hook, patient=patient() if pat is True else (pat or None),
        conditions=tuple(conditions), allergies=tuple(allergies), medications=tuple(medications),
        observations=tuple(observations), unavailable=dict(unavailable or {}), draft_orders=tuple(drafts),
        judged_ids=ids, referenced_medications=dict(referenced or {}))


def quiet(**overrides: Any) -> dict:
    """Context keyword arguments for an adult RA patient on methotrexate with recent kidney and blood
    results: an anakinra order of 100 mg once a day then gives no finding at all."""
    base = {"conditions": [RA], "medications": [METHOTREXATE], "observations": [RECENT_KIDNEY, RECENT_ANC]}
    base.update(overrides)
    return base


def run(knowledge: Knowledge, ctx: PatientContext) -> list[Finding]:
    return run_checks(ctx, knowledge)


def rules(findings: Iterable[Finding]) -> list[str]:
    return [f.rule for f in findings]


def only(findings: Iterable[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def one(findings: Iterable[Finding], rule: str) -> Finding:
    found = only(findings, rule)
    assert len(found) == 1, f"expected one {rule} finding, got {rules(findings)}"
    return found[0]

