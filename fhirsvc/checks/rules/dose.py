"""Dose checks: unreadable dose, maximum daily dose, dose for weight, route.

Contract checks #6-#8 and #18, and the "Unable to check dose" rule of "Missing data" (#9, kidney function,
is ``kidney.py``). Limits come from the drug's dosing guidelines: ``maxDosePerPeriod`` (mg per day, or mg/kg
per day for weight-based dosing) and the starting ``doseRange``; the route from
``MedicationKnowledge.definitional.intendedRoute``. The order's daily dose is ``reading.daily_dose``.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check
from fhirsvc.checks.config import WEIGHT_MAX_AGE, dosing_anchor
from fhirsvc.checks.context import CONDITIONS, OBSERVATIONS, PATIENT
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.daily_dose import describe_per_day
from fhirsvc.checks.reading.observations import Measurement, newest_measurement
from fhirsvc.checks.reading.windows import day
from fhirsvc.drugmodel.profile import Guideline, section_of
from fhirsvc.drugmodel.units import weight_kg
from fhirsvc.fhirtypes import concept_text


def is_drug_order(job: Job) -> bool:
    return job.order.get("resourceType") in ("MedicationRequest", "MedicationStatement")


def applicable_guideline(job: Job) -> Guideline | None:
    """The guideline that applies: the weight-based one if its indication is recorded, else the
    fixed-dose one."""
    return job.weight_based_indication or job.fixed_guideline


def _has_limits(job: Job) -> bool:
    return any(g.limits or g.renal for g in job.drug.guidelines)


def _upper(job: Job) -> str:
    """How a dose range was read, for the card ("" for a single dose)."""
    return " at the upper end of its dose range" if job.dose.ranged else ""


def _indication(job: Job, guide: Guideline) -> str:
    """The short name of a guideline's indication (its abbreviation), for card text."""
    cud = job.run.knowledge.get("ClinicalUseDefinition", guide.indication_id) if guide.indication_id else None
    concept = (((cud or {}).get("indication") or {}).get("diseaseSymptomProcedure") or {}).get("concept") or {}
    return wording.indication_short(str(concept.get("text") or "this indication"))


def _mg(value: float | None) -> str:
    return "?" if value is None else f"{value:.6g}"


@check("dose-unreadable", (), "DOSE", "summary", "the dose", after=5.5, needs=(PATIENT, CONDITIONS), rule_key="6")
def check_dose_readable(job: Job) -> Iterable[Finding]:
    """Missing data: an unreadable dose or unit → DOSE warning "Unable to check dose" (contract
    "Missing data"; monograph: SECTION 4 of 4 > dosage sections). Fires for an order of a drug whose
    knowledge has dose limits when the daily dose in mg cannot be computed."""
    if not is_drug_order(job) or not _has_limits(job) or job.dose.readable:
        return []
    guide = applicable_guideline(job)
    dose = job.dose
    accepted = "mg, mL or prefilled syringes" if job.drug.mg_per_syringe else "mg or mL"
    return [job.finding(
        "warning",
        *wording.words("dose.unreadable", drug=job.drug.name, problem=dose.problem, dose=dose.dose_text or "none",
                       accepted=accepted),
        guide.section if guide else job.drug.section, dosing_anchor(guide.id if guide else None),
        dose.facts(), unable=True)]


@check("high-dose", (6,), "DOSEH", "summary", "the maximum daily dose", needs=(PATIENT, CONDITIONS))
def check_high_dose(job: Job) -> Iterable[Finding]:
    """#6 DOSEH warning: no weight-based indication recorded, and the daily dose exceeds the fixed maximum
    of the applicable guideline (``maxDosePerPeriod`` in mg per day). Monograph SECTION 4 of 4 > the
    indication's Adult Dosage."""
    if not is_drug_order(job) or job.weight_based_indication or not job.dose.readable:
        return []
    guide = job.fixed_guideline
    if guide is None:
        return []
    dosage, limit = min(guide.fixed_limits, key=lambda pair: pair[1].amount_per_day)
    daily = job.dose.daily_mg
    assert daily is not None
    if daily <= limit.amount_per_day:
        return []
    return [job.finding(
        "warning",
        *wording.words("dose.high", drug=job.drug.name, daily=_mg(daily), limit=_mg(limit.amount_per_day),
                       ranged=_upper(job), dose=job.dose.dose_text, frequency=describe_per_day(job.dose.per_day),
                       each=_mg(job.dose.per_administration_mg), times=f"{job.dose.per_day:g}",
                       quote=wording.quote(dosage.dosage.get("text", ""), guide.section)),
        guide.section, dosing_anchor(guide.id),
        {**job.dose.facts(), "maximum_mg_per_day": limit.amount_per_day, "guideline": guide.id})]


def _weight(job: Job, guide: Guideline) -> Measurement | None:
    chars = guide.of_kind("weight")
    matcher = job.run.value_set(chars[0].value_set) if chars else None
    if matcher is None:
        return None
    return newest_measurement(job.run.observations, matcher, job.run.now, weight_kg, "kg", WEIGHT_MAX_AGE)


def _weight_problem(measure: Measurement | None) -> str:
    """What was found instead of a usable body weight (``Measurement.problem``: the unit or text and the date
    of an unreadable one; how old a stale one is, with the 90-day rule)."""
    if measure is None:
        return "no body weight is recorded"
    return measure.problem("body weight")


@check("high-dose-for-weight", (7,), "DOSEHINDW", "summary", "the dose for body weight",
       needs=(CONDITIONS, OBSERVATIONS))
def check_high_dose_for_weight(job: Job) -> Iterable[Finding]:
    """#7 DOSEHINDW critical: a weight-based indication recorded and the daily dose exceeds the mg/kg per
    day maximum (``maxDosePerPeriod`` per kg). Monograph SECTION 4 of 4 > the weight-based indication's
    Child Dosage. Without a body weight within 90 days: DOSEHINDW warning "Unable to check" saying how old
    the weight is."""
    guide = job.weight_based_indication
    if guide is None or not is_drug_order(job):
        return []
    dosage, limit = min(((d, lim) for d, lim in guide.limits if lim.per_kg), key=lambda p: p[1].amount_per_day)
    anchor = dosing_anchor(guide.id)
    if OBSERVATIONS in job.context.unavailable:
        return [job.finding(
            "warning",
            *wording.words("dose.weight_observations_unable", drug=job.drug.name, indication=_indication(job, guide),
                           limit=_mg(limit.amount_per_day)),
            guide.section, anchor, {"unavailable": [OBSERVATIONS]}, unable=True)]
    measure = _weight(job, guide)
    if measure is None or not measure.found:
        problem = _weight_problem(measure)
        return [job.finding(
            "warning",
            *wording.words("dose.weight_unable", drug=job.drug.name, indication=_indication(job, guide),
                           problem=measure.brief("body weight") if measure else problem, reason=problem,
                           limit=_mg(limit.amount_per_day)),
            guide.section, anchor, {**job.dose.facts(), **(measure.facts("weight") if measure else {})},
            unable=True)]
    if not job.dose.readable:
        return []
    assert measure.value and job.dose.daily_mg is not None
    per_kg = round(job.dose.daily_mg / measure.value, 6)
    if per_kg <= limit.amount_per_day:
        return []
    return [job.finding(
        "critical",
        *wording.words("dose.weight_high", drug=job.drug.name, per_kg=f"{per_kg:.3g}", limit=_mg(limit.amount_per_day),
                       weight=_mg(measure.value), weighed=day(measure.when), daily=_mg(job.dose.daily_mg),
                       ranged=_upper(job), dose=job.dose.dose_text, frequency=describe_per_day(job.dose.per_day),
                       ceiling=_mg(round(limit.amount_per_day * measure.value, 1)),
                       quote=wording.quote(dosage.dosage.get("text", ""), guide.section)),
        guide.section, anchor,
        {**job.dose.facts(), **measure.facts("weight"), "mg_per_kg_per_day": per_kg,
         "maximum_mg_per_kg_per_day": limit.amount_per_day, "guideline": guide.id})]


@check("low-dose-for-weight", (8,), "DOSELINDW", "summary", "the starting dose for body weight",
       needs=(CONDITIONS, OBSERVATIONS))
def check_low_dose_for_weight(job: Job) -> Iterable[Finding]:
    """#8 DOSELINDW info: a weight-based indication recorded and the daily dose is below the low end of
    the starting ``doseRange`` in mg/kg per day. Monograph SECTION 4 of 4 > the weight-based indication's
    Child Dosage. A missing weight is reported by #7."""
    guide = job.weight_based_indication
    if guide is None or not is_drug_order(job) or not job.dose.readable or OBSERVATIONS in job.context.unavailable:
        return []
    lows = [(low, d) for d in guide.dosages if (low := d.dose_range[0]) is not None and "kg" in d.dose_range[2]]
    if not lows:
        return []
    _, dosage = min(lows, key=lambda pair: pair[0])
    low, high, _unit = dosage.dose_range
    measure = _weight(job, guide)
    if measure is None or not measure.found or not measure.value:
        return []
    least = job.dose.lowest_daily_mg  # a dose range: its lower end
    if least is None or low is None:
        return []
    per_kg = round(least / measure.value, 6)
    if per_kg >= low:
        return []
    return [job.finding(
        "info",
        *wording.words("dose.weight_low", drug=job.drug.name, per_kg=f"{per_kg:.3g}", low=f"{low:g}",
                       high=f"{high or low:g}", weight=_mg(measure.value), weighed=day(measure.when), least=_mg(least),
                       ranged=" at the low end of its range" if job.dose.ranged else "",
                       start_low=_mg(round(low * measure.value, 1)),
                       start_high=_mg(round((high or low) * measure.value, 1)),
                       quote=wording.quote(dosage.dosage.get("text", ""), guide.section)),
        guide.section, dosing_anchor(guide.id),
        {**job.dose.facts(), **measure.facts("weight"), "mg_per_kg_per_day": per_kg,
         "starting_mg_per_kg_per_day": [low, high], "guideline": guide.id})]


@check("route", (18,), "DOSE", "summary", "the route", needs=())
def check_route(job: Job) -> Iterable[Finding]:
    """#18 DOSE warning: the order's route is coded and is not in the drug's route value set
    (``intendedRoute``; subcutaneous). Monograph SECTION 1 of 4 > Drug Features: "It's available as an
    under-the-skin (subcutaneous) injection." A route given only as text is not judged."""
    matcher = job.run.value_set(job.drug.route_value_set)
    if matcher is None or not is_drug_order(job):
        return []
    intended = next((concept_text(r) for r in (job.drug.resource.get("definitional") or {}).get("intendedRoute") or ()),
                    "the intended route")
    for dosage in job.order.get("dosageInstruction") or ():
        route = dosage.get("route") or {}
        if route.get("coding") and not matcher.matches_concept(route):
            ordered = concept_text(route)
            vs = job.run.knowledge.resolve(job.drug.route_value_set or "")
            return [job.finding(
                "warning",
                *wording.words("route.found", drug=job.drug.name, ordered=wording.lower_first(ordered),
                               intended=intended),
                section_of(vs) or job.drug.section, "summary",
                {"route": [dict(c) for c in route.get("coding") or ()], "intended_route": intended})]
    return []
