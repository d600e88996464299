"""Kidney function (#9): severe kidney disease and an order more often than the renal schedule.

Severe kidney disease is a kidney function result within 180 days below the renal guideline's threshold (its
``patientCharacteristic``: a CrCl/eGFR value set with a comparator and value), or an active condition of its
severe kidney disease value set; the schedule is the renal guideline's ``timing.repeat``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check, lower_first, plain, unavailable_text
from fhirsvc.checks.config import KIDNEY_RESULTS
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, OBSERVATIONS, Resource
from fhirsvc.checks.findings import Finding, Suggestion
from fhirsvc.checks.reading.daily_dose import describe_per_day, dose_quantity, order_per_day
from fhirsvc.checks.reading.medications import is_current
from fhirsvc.checks.reading.observations import Measurement, Threshold, newest_measurement
from fhirsvc.checks.reading.windows import Window, day
from fhirsvc.checks.rules.dose import applicable_guideline, is_drug_order
from fhirsvc.drugmodel.profile import Characteristic, Guideline, section_of
from fhirsvc.drugmodel.timing import administrations_per_day
from fhirsvc.drugmodel.units import converter_for
from fhirsvc.fhirtypes import concept_text, quantity_text


def _renal_guidelines(job: Job) -> list[Guideline]:
    """The renal guidelines of the applicable indication (all renal guidelines if none matches)."""
    renal = [g for g in job.drug.guidelines if g.renal]
    guide = applicable_guideline(job)
    same = [g for g in renal if guide is not None and g.indication_id == guide.indication_id]
    return same or renal


def _severity_evidence(job: Job, guides: list[Guideline]) -> tuple[dict[str, Any] | None, list[Measurement],
                                                                      list[Characteristic]]:
    """Why the kidney function counts as severe (or None), the kidney measurements read, and the
    measurement characteristics."""
    measurements: list[Measurement] = []
    chars: list[Characteristic] = []
    evidence = None
    window: Window | None = None  # read once, when a measurement is asked for
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
            window = window or job.window(KIDNEY_RESULTS)
            test = Threshold(char.holds, f"{char.comparator or ''} {char.value:g} {char.unit}".strip()
                        if char.value is not None else char.unit)
            measure = newest_measurement(job.run.observations, matcher, job.run.now, convert, unit, window, test)
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


@check("renal-dosing", (9,), "DOSECOND", "kidney-disease", "kidney dosing",
       needs=(CONDITIONS, MEDICATIONS, OBSERVATIONS))
def check_renal_dosing(job: Job) -> Iterable[Finding]:
    """#9 DOSECOND warning: severe kidney disease (a kidney function result within 180 days below the
    renal guideline's threshold (a CrCl/eGFR comparator and value), or an active condition of its severe kidney
    disease value set) and the order is more often than the renal schedule (every 2 days); suggestion:
    ``update`` the order to the same daily dose every 2 days. No kidney function result within 180 days
    (and no such condition) → DOSECOND info "Unable to check". Monograph SECTION 4 of 4 > each
    indication's Special Considerations (every two days instead of every day in severe kidney disease);
    SECTION 4 of 4 > Clinical Monitoring > Kidney test."""
    if not is_drug_order(job):
        return []
    guides = _renal_guidelines(job)
    if not guides:
        return []
    schedule = next((d.repeat for g in guides for d in g.dosages if d.repeat), {})
    target = administrations_per_day({"repeat": schedule}) if schedule else None
    per_day = order_per_day(job.order)
    if target is not None and per_day is not None and per_day <= target + 1e-9:
        return []
    evidence, measurements, chars = _severity_evidence(job, guides)
    if evidence is None and any(m.found for m in measurements):
        return []  # a recent result above the threshold (it decides even if the condition list is missing)
    kidney_facts: dict[str, Any] = {}
    for measure in measurements:
        kidney_facts.update(measure.facts("kidney_function"))
    if evidence is not None:
        return [_too_often(job, evidence, kidney_facts, schedule, per_day, target)]
    return [_unable(job, guides[0], measurements, chars, kidney_facts, describe_per_day(target))]


def _too_often(job: Job, evidence: dict[str, Any], kidney_facts: dict[str, Any], schedule: Mapping[str, Any],
               per_day: float | None, target: float | None) -> Finding:
    """#9's warning: severe kidney disease (a result below the threshold, or a condition) and an order more often
    than the renal schedule; the suggestion reschedules a MedicationRequest."""
    guide: Guideline = evidence["guideline"]
    char: Characteristic = evidence["char"]
    every = describe_per_day(target)
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
    suggestions = []
    if per_day is not None and schedule and job.order.get("resourceType") == "MedicationRequest":
        label, description = wording.suggestion_words("reschedule", every=every, why="severe kidney disease")
        suggestions.append(Suggestion(label=label, action="update", description=description,
                                      resource=renal_update(job.order, schedule), recommended=True))
    dosage_text = next((d.dosage.get("text", "") for d in guide.dosages if d.dosage.get("text")), "")
    return job.finding(
        "warning",
        *wording.words("renal.found", drug=job.drug.name, why=why, every=every, found=found,
                       ordered=describe_per_day(per_day),
                       quote=wording.quote(dosage_text.split(" The monograph says")[0], guide.section)),
        guide.section, "kidney-disease",
        {**kidney_facts, "severe_kidney_disease": evidence["kind"],
         **({"condition": evidence["condition"]} if evidence["kind"] == "condition" else {}),
         **({"threshold": {"comparator": char.comparator, "value": char.value, "unit": char.unit}}
            if evidence["kind"] == "measurement" else {}),
         "order_administrations_per_day": per_day, "advised_administrations_per_day": target,
         "guideline": guide.id},
        suggestions)


def _unable(job: Job, guide: Guideline, measurements: list[Measurement], chars: list[Characteristic],
            kidney_facts: dict[str, Any], every: str) -> Finding:
    """#9's "Unable to check": no recent kidney function result (missing, too old, unreadable, or the
    observations could not be had) and no severe kidney disease condition."""
    missing = job.run.unavailable(OBSERVATIONS)
    if missing:
        why = brief = f"the {unavailable_text(missing)} could not be retrieved"
    else:
        shown = next((m for m in measurements if m.status == "unreadable"), None) \
            or next((m for m in measurements if m.status == "stale"), None)
        called = next((c.text for c in chars if c.text), "")
        why = brief = (f"no kidney function result{f' ({lower_first(called)})' if called else ''} "
                       f"in the last {job.window(KIDNEY_RESULTS).limit} days")
        if shown is not None:
            why, brief = shown.problem("kidney function result"), shown.brief("kidney function result")
    threshold = next((c for c in chars), None)
    section = section_of(job.run.knowledge.resolve(threshold.value_set) if threshold and threshold.value_set
                         else None) or guide.section
    current = job.drug_records(is_current)
    todo = wording.markdown(wording.KIDNEY_TEST["current" if current else "new"], drug=job.drug.name,
                            Drug=wording.sentence(job.drug.name),
                            where=wording.where(current[0], False) if current else "")
    return job.finding(
        "info",
        *wording.words("renal.unable", drug=job.drug.name, brief=brief, why=why, every=every, todo=todo,
                       threshold=f" ({threshold.comparator} {threshold.value:g} {threshold.unit})" if threshold
                       and threshold.value is not None else ""),
        section, "kidney-disease",
        {**kidney_facts, "window_days": job.window(KIDNEY_RESULTS).limit, "on_therapy": bool(current),
         **({"unavailable": gone} if (gone := job.run.unavailable(OBSERVATIONS, CONDITIONS)) else {})},
        unable=True)
