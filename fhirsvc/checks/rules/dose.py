"""Dose checks: unreadable dose, maximum daily dose, dose for weight, kidney function, route.

Contract checks #6-#9 and #18, and the "Unable to check dose" rule of "Missing data". Limits come
from the drug's dosing guidelines: ``maxDosePerPeriod`` (mg per day, or mg/kg per day for weight-based
dosing), the starting ``doseRange``, the renal guidelines' ``patientCharacteristic`` (a kidney function
value set with a comparator and threshold, or a severe-kidney-disease condition value set) and their
``timing.repeat``; the route from ``MedicationKnowledge.definitional.intendedRoute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check, lower_first, plain, unavailable_text
from fhirsvc.checks.config import KIDNEY_MAX_AGE, WEIGHT_MAX_AGE, dosing_anchor
from fhirsvc.checks.context import CONDITIONS, OBSERVATIONS, PATIENT
from fhirsvc.checks.findings import Finding, Suggestion
from fhirsvc.checks.reading.daily_dose import (
    administrations_per_day,
    describe_per_day,
    dose_quantity,
    order_per_day,
    quantity_text,
)
from fhirsvc.checks.reading.observations import Measurement, Threshold, newest_measurement
from fhirsvc.checks.reading.windows import day
from fhirsvc.drugmodel.profile import Characteristic, Guideline, section_of
from fhirsvc.drugmodel.units import converter_for, weight_kg
from fhirsvc.fhirtypes import concept_text

Resource = Mapping[str, Any]


def _is_drug_order(job: Job) -> bool:
    return job.order.get("resourceType") in ("MedicationRequest", "MedicationStatement")


def _guide(job: Job) -> Guideline | None:
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


@check("dose-unreadable", (), "DOSE", "summary", "the dose", after=5.5, needs=(PATIENT, CONDITIONS))
def check_dose_readable(job: Job) -> Iterable[Finding]:
    """Missing data: an unreadable dose or unit → DOSE warning "Unable to check dose" (contract
    "Missing data"; monograph: SECTION 4 of 4 > dosage sections). Fires for an order of a drug whose
    knowledge has dose limits when the daily dose in mg cannot be computed."""
    if not _is_drug_order(job) or not _has_limits(job) or job.dose.readable:
        return []
    guide = _guide(job)
    dose = job.dose
    accepted = "mg, mL or prefilled syringes" if job.drug.mg_per_syringe else "mg or mL"
    return [job.finding(
        "dose-unreadable", "DOSE", "warning",
        *wording.words("dose.unreadable", drug=job.drug.name, problem=dose.problem, dose=dose.dose_text or "none",
                       accepted=accepted),
        guide.section if guide else job.drug.section, dosing_anchor(guide.id if guide else None),
        dose.facts(), unable=True)]


@check("high-dose", (6,), "DOSEH", "summary", "the maximum daily dose", needs=(PATIENT, CONDITIONS))
def check_high_dose(job: Job) -> Iterable[Finding]:
    """#6 DOSEH warning: no weight-based indication recorded, and the daily dose exceeds the fixed maximum
    of the applicable guideline (``maxDosePerPeriod`` in mg per day). Monograph SECTION 4 of 4 > the
    indication's Adult Dosage."""
    if not _is_drug_order(job) or job.weight_based_indication or not job.dose.readable:
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
        "high-dose", "DOSEH", "warning",
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
    if guide is None or not _is_drug_order(job):
        return []
    dosage, limit = min(((d, lim) for d, lim in guide.limits if lim.per_kg), key=lambda p: p[1].amount_per_day)
    anchor = dosing_anchor(guide.id)
    if OBSERVATIONS in job.context.unavailable:
        return [job.finding(
            "high-dose-for-weight", "DOSEHINDW", "warning",
            *wording.words("dose.weight_observations_unable", drug=job.drug.name, indication=_indication(job, guide),
                           limit=_mg(limit.amount_per_day)),
            guide.section, anchor, {"unavailable": [OBSERVATIONS]}, unable=True)]
    measure = _weight(job, guide)
    if measure is None or not measure.found:
        problem = _weight_problem(measure)
        return [job.finding(
            "high-dose-for-weight", "DOSEHINDW", "warning",
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
        "high-dose-for-weight", "DOSEHINDW", "critical",
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
    if guide is None or not _is_drug_order(job) or not job.dose.readable or OBSERVATIONS in job.context.unavailable:
        return []
    ranges = [(d, d.dose_range) for d in guide.dosages if d.dose_range[0] is not None
              and "kg" in d.dose_range[2]]
    if not ranges:
        return []
    dosage, (low, high, _unit) = min(ranges, key=lambda pair: pair[1][0])
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
        "low-dose-for-weight", "DOSELINDW", "info",
        *wording.words("dose.weight_low", drug=job.drug.name, per_kg=f"{per_kg:.3g}", low=f"{low:g}",
                       high=f"{high or low:g}", weight=_mg(measure.value), weighed=day(measure.when), least=_mg(least),
                       ranged=" at the low end of its range" if job.dose.ranged else "",
                       start_low=_mg(round(low * measure.value, 1)),
                       start_high=_mg(round((high or low) * measure.value, 1)),
                       quote=wording.quote(dosage.dosage.get("text", ""), guide.section)),
        guide.section, dosing_anchor(guide.id),
        {**job.dose.facts(), **measure.facts("weight"), "mg_per_kg_per_day": per_kg,
         "starting_mg_per_kg_per_day": [low, high], "guideline": guide.id})]


# --- kidney function ------------------------------------------------------------------------------------

def _renal_guidelines(job: Job) -> list[Guideline]:
    """The renal guidelines of the applicable indication (all renal guidelines if none matches)."""
    renal = [g for g in job.drug.guidelines if g.renal]
    guide = _guide(job)
    same = [g for g in renal if guide is not None and g.indication_id == guide.indication_id]
    return same or renal


def _severity_evidence(job: Job, guides: list[Guideline]) -> tuple[dict[str, Any] | None, list[Measurement],
                                                                      list[Characteristic]]:
    """Why the kidney function counts as severe (or None), the kidney measurements read, and the
    measurement characteristics."""
    measurements: list[Measurement] = []
    chars: list[Characteristic] = []
    evidence = None
    for guide in guides:
        for char in guide.of_kind("condition"):
            found = job.run.conditions_in(char.value_set)
            if found and evidence is None:
                cond = found[0]
                evidence = {"kind": "condition", "label": concept_text(cond.get("code")),
                            "condition": f"Condition/{cond.get('id', '')}", "guideline": guide, "char": char}
        for char in guide.of_kind("measurement"):
            conversion = converter_for(char.unit)
            matcher = job.run.value_set(char.value_set)
            if conversion is None or matcher is None:
                continue
            unit, convert = conversion
            test = Threshold(char.holds, f"{char.comparator or ''} {char.value:g} {char.unit}".strip()
                        if char.value is not None else char.unit)
            measure = newest_measurement(job.run.observations, matcher, job.run.now, convert, unit,
                                         KIDNEY_MAX_AGE, test)
            chars.append(char)
            measurements.append(measure)
            if measure.found and measure.meets and evidence is None:
                label = job.run.concept_label(char.value_set, measure.observation.get("code")
                                              if measure.observation else None)
                evidence = {"kind": "measurement", "label": label, "measure": measure, "guideline": guide,
                            "char": char}
    return evidence, measurements, chars


def renal_update(order: Resource, repeat: Mapping[str, Any]) -> dict[str, Any]:
    """The order changed to the renal schedule: the same dose per administration, each dosage's
    ``timing.repeat`` set to ``repeat``'s frequency/period/periodUnit (a timing code removed), its text
    rewritten. A deep copy; the incoming order is not touched."""
    new = plain(order)
    target = administrations_per_day({"repeat": repeat})
    for dosage in new.get("dosageInstruction") or []:
        timing = dosage.get("timing") or {}
        kept = {k: v for k, v in (timing.get("repeat") or {}).items()
                if k not in ("frequency", "frequencyMax", "period", "periodMax", "periodUnit", "timeOfDay", "when",
                             "dayOfWeek", "offset")}
        kept.update({k: repeat[k] for k in ("frequency", "period", "periodUnit") if k in repeat})
        timing = {k: v for k, v in timing.items() if k != "code"}
        timing["repeat"] = kept
        dosage["timing"] = timing
        quantity = dose_quantity(dosage)
        if quantity:
            dosage["text"] = f"{quantity_text(quantity)} {describe_per_day(target)}"
    return new


@check("renal-dosing", (9,), "DOSECOND", "kidney-disease", "the dose for kidney function",
       needs=(CONDITIONS, OBSERVATIONS))
def check_renal_dosing(job: Job) -> Iterable[Finding]:
    """#9 DOSECOND warning: severe kidney disease (a kidney function result within 180 days below the
    renal guideline's threshold (a CrCl/eGFR comparator and value), or an active condition of its severe kidney
    disease value set) and the order is more often than the renal schedule (every 2 days); suggestion:
    ``update`` the order to the same daily dose every 2 days. No kidney function result within 180 days
    (and no such condition) → DOSECOND info "Unable to check". Monograph SECTION 4 of 4 > each
    indication's Special Considerations (every two days instead of every day in severe kidney disease);
    SECTION 4 of 4 > Clinical Monitoring > Kidney test."""
    if not _is_drug_order(job):
        return []
    guides = _renal_guidelines(job)
    if not guides:
        return []
    guide0 = guides[0]
    schedule = next((d.repeat for g in guides for d in g.dosages if d.repeat), {})
    target = administrations_per_day({"repeat": schedule}) if schedule else None
    per_day = order_per_day(job.order)
    if target is not None and per_day is not None and per_day <= target + 1e-9:
        return []
    name, every = job.drug.name, describe_per_day(target)
    evidence, measurements, chars = _severity_evidence(job, guides)
    kidney_facts: dict[str, Any] = {}
    for measure in measurements:
        kidney_facts.update(measure.facts("kidney_function"))
    if evidence is not None:
        guide: Guideline = evidence["guideline"]
        char: Characteristic = evidence["char"]
        if evidence["kind"] == "measurement":
            measure: Measurement = evidence["measure"]
            why = f"{evidence['label']} {measure.shown}, {day(measure.when)}"
            found = wording.markdown("The newest kidney function result is **{label} {shown}** ({when}), below "
                                     "{value:g} {unit}.", label=evidence["label"], shown=measure.shown,
                                     when=day(measure.when), value=char.value, unit=char.unit)
        else:
            why = evidence["label"]
            found = wording.markdown("An active condition of severe kidney disease is recorded: **{label}**.",
                                     label=evidence["label"])
        ordered = describe_per_day(per_day)
        suggestions = []
        if per_day is not None and schedule and job.order.get("resourceType") == "MedicationRequest":
            label, description = wording.suggestion_words("reschedule", every=every, why="severe kidney disease")
            suggestions.append(Suggestion(label=label, action="update", description=description,
                                          resource=renal_update(job.order, schedule), recommended=True))
        dosage_text = next((d.dosage.get("text", "") for d in guide.dosages if d.dosage.get("text")), "")
        return [job.finding(
            "renal-dosing", "DOSECOND", "warning",
            *wording.words("renal.found", drug=name, why=why, every=every, found=found, ordered=ordered,
                           quote=wording.quote(dosage_text.split(" The monograph says")[0], guide.section)),
            guide.section, "kidney-disease",
            {**kidney_facts, "severe_kidney_disease": evidence["kind"],
             **({"condition": evidence["condition"]} if evidence["kind"] == "condition" else {}),
             **({"threshold": {"comparator": char.comparator, "value": char.value, "unit": char.unit}}
                if evidence["kind"] == "measurement" else {}),
             "order_administrations_per_day": per_day, "advised_administrations_per_day": target,
             "guideline": guide.id},
            suggestions)]
    if any(m.found for m in measurements):
        return []  # a recent result above the threshold (it decides even if the condition list is missing)
    missing = job.run.unavailable(OBSERVATIONS)
    if missing:
        why = brief = f"the {unavailable_text(missing)} could not be retrieved"
    else:
        shown = next((m for m in measurements if m.status == "unreadable"), None) \
            or next((m for m in measurements if m.status == "stale"), None)
        called = next((c.text for c in chars if c.text), "")
        why = brief = (f"no kidney function result{f' ({lower_first(called)})' if called else ''} "
                       f"in the last {KIDNEY_MAX_AGE.limit} days")
        if shown is not None:
            why, brief = shown.problem("kidney function result"), shown.brief("kidney function result")
    threshold = next((c for c in chars), None)
    section = section_of(job.run.knowledge.resolve(threshold.value_set) if threshold and threshold.value_set
                         else None) or guide0.section
    return [job.finding(
        "renal-dosing", "DOSECOND", "info",
        *wording.words("renal.unable", drug=name, brief=brief, why=why, every=every,
                       threshold=f" ({threshold.comparator} {threshold.value:g} {threshold.unit})" if threshold
                       and threshold.value is not None else ""),
        section, "kidney-disease",
        {**kidney_facts, "window_days": KIDNEY_MAX_AGE.limit,
         **({"unavailable": gone} if (gone := job.run.unavailable(OBSERVATIONS, CONDITIONS)) else {})},
        unable=True)]


@check("route", (18,), "DOSE", "summary", "the route", needs=())
def check_route(job: Job) -> Iterable[Finding]:
    """#18 DOSE warning: the order's route is coded and is not in the drug's route value set
    (``intendedRoute``; subcutaneous). Monograph SECTION 1 of 4 > Drug Features: "It's available as an
    under-the-skin (subcutaneous) injection." A route given only as text is not judged."""
    matcher = job.run.value_set(job.drug.route_value_set)
    if matcher is None or not _is_drug_order(job):
        return []
    intended = next((concept_text(r) for r in (job.drug.resource.get("definitional") or {}).get("intendedRoute") or ()),
                    "the intended route")
    for dosage in job.order.get("dosageInstruction") or ():
        route = dosage.get("route") or {}
        if route.get("coding") and not matcher.matches_concept(route):
            ordered = concept_text(route)
            vs = job.run.knowledge.resolve(job.drug.route_value_set or "")
            return [job.finding(
                "route", "DOSE", "warning",
                *wording.words("route.found", drug=job.drug.name, ordered=wording.lower_first(ordered),
                               intended=intended),
                section_of(vs) or job.drug.section, "summary",
                {"route": [dict(c) for c in route.get("coding") or ()], "intended_route": intended})]
    return []
