"""Monitoring reminders for a patient already on therapy (CDS Hooks ``patient-view``).

Entry point: ``run_patient_view(context, knowledge) -> list[Finding]``. For each knowledge drug the patient
has a current record of (an active or on-hold MedicationRequest, or an active MedicationStatement), what is
due by the drug's monitoring PlanDefinition (``checks.schedule``):

- ``monitoring-overdue`` (LAB info): the phase of the schedule the therapy is in (months since the
  earliest start) wants a result every ``window`` days and the newest one is older (or there is none);
  the card says when the last one was and which interval applies, and suggests creating the
  ServiceRequest of the action's ActivityDefinition where the plan names one. Past the last phase, nothing.
- ``monitoring-baseline`` (LAB info): a before-starting test the schedule does not repeat (kidney function)
  was never recorded at all.
- ``active-infection`` (COND warning): an active infection or a recent fever while on therapy (the order
  hooks' check #12, run on the current record).
- ``interaction-reverse`` (DRG, the class's severity): a member of an interaction class named in
  ``config.PATIENT_VIEW_INTERACTION_CLASSES`` (live vaccines) recorded as due or ordered (a MedicationRequest
  that still stands) while the drug is current (the order hooks' check #19, run on that record).

Nothing for a patient on none of the knowledge's drugs, and nothing when the medication list could not be
had (whether the patient is on therapy is then unknown: no card rather than noise). Monograph SECTION 4 of 4 >
Clinical Monitoring (blood test, kidney test, infection); SECTION 3 of 4 > Vaccines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Check, Job, Run
from fhirsvc.checks.config import PATIENT_VIEW_INTERACTION_CLASSES, interaction_rule
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, OBSERVATIONS, PatientContext
from fhirsvc.checks.engine import run_one
from fhirsvc.checks.findings import Finding, Suggestion
from fhirsvc.checks.reading.medications import is_current, is_live_draft, medication_start
from fhirsvc.checks.reading.observations import READABLE_STATUSES, observation_when, observations_of
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.reading.windows import Window, day, whole_days
from fhirsvc.checks.rules.infection import check_infection
from fhirsvc.checks.rules.interactions import check_reverse_current
from fhirsvc.checks.rules.monitoring_due import schedule_text, service_request
from fhirsvc.checks.rules.warning import unable_finding
from fhirsvc.drugmodel.profile import DrugProfile
from fhirsvc.drugmodel.schedule import Phase, monitoring_schedule
from fhirsvc.drugmodel.units import DAYS_PER_UNIT
from fhirsvc.fhirtypes import concept_text
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.terminology import ValueSetMatcher

logger = logging.getLogger(__name__)
Resource = Mapping[str, Any]


def _results(job: Job, matcher: ValueSetMatcher) -> list[Resource]:
    """The usable results of a value set, newest first: a readable status (``READABLE_STATUSES``) and a value."""
    return [o for o in observations_of(job.run.observations, matcher) if o.get("status") in READABLE_STATUSES
            and any(key.startswith("value") for key in o)]


def _plan(job: Job) -> tuple[Resource | None, tuple[Phase, ...]]:
    if not job.drug.monitoring:
        return None, ()
    plan = job.drug.monitoring[0]
    return plan, monitoring_schedule(plan)


def _suggestion(job: Job, phase: Phase, label: str) -> list[Suggestion]:
    request = service_request(job, phase.action) if phase.definition else None
    if request is None:
        return []
    text, description = wording.suggestion_words("order-test", test=concept_text(request["code"]),
                                                 purpose=label.lower())
    return [Suggestion(label=text, action="create", description=description, resource=request, recommended=True)]


def check_overdue(job: Job) -> Iterable[Finding]:
    """monitoring-overdue: the therapy's current phase wants a result every ``window`` days and the newest is
    older, or there is none. Monograph SECTION 4 of 4 > Clinical Monitoring > Blood test."""
    plan, phases = _plan(job)
    after = [p for p in phases if p.kind == "after" and p.value_set]
    if plan is None or not after:
        return []
    section = after[0].section(plan)
    current = [m for m in job.context.medications if is_current(m)
               and any(d.id == job.drug.id for d in job.run.drugs_of(m))]
    known = [s for s in (medication_start(m) for m in current) if s is not None]
    if not known:
        return [job.finding(
            "info",
            *wording.words("monitoring.start_unknown", drug=job.drug.name, record=job.name_of(job.order),
                           schedule=schedule_text(plan)),
            section, "monitoring", {"current": [reference_key(m) for m in current]}, unable=True)]
    started = min(known)
    elapsed = whole_days(started, job.run.now)  # whole calendar days since the start date, as #14 counts them
    phase = next((p for p in after if p.start <= elapsed < p.end), None)
    if phase is None:
        return []
    matcher = job.run.value_set(phase.value_set)
    if matcher is None:
        return []
    label = concept_text(phase.action.get("code")) or phase.title
    if OBSERVATIONS in job.context.unavailable:
        return [unable_finding(job, "info", f"whether a {label.lower()} is due",
                               [OBSERVATIONS], phase.section(plan), "monitoring")]
    window = Window(int(phase.window or 0), "day", "results")  # inclusive, in whole calendar days (windows.py)
    when = next((w for w in map(observation_when, _results(job, matcher)) if w is not None), None)
    if window.contains(when, job.run.now):
        return []
    months = elapsed / DAYS_PER_UNIT["mo"]
    last = f"last {when.label()}, {window.how_old(when, job.run.now)}" if when else "none recorded"
    return [job.finding(
        "info",
        *wording.words("monitoring.overdue", label=label, drug=job.drug.name, last=last, interval=phase.interval,
                       title=phase.title, started=day(started), months=f"{months:.1f}", window=f"{phase.window:g}",
                       schedule=schedule_text(plan)),
        phase.section(plan), "monitoring",
        {"started": day(started), "months_on_therapy": round(months, 2), "interval": phase.interval,
         "window_days": phase.window, "last_date": when.label() if when else None,
         "plan": f"PlanDefinition/{plan.get('id')}", "action": phase.action.get("id")},
        _suggestion(job, phase, label))]


def check_baseline(job: Job) -> Iterable[Finding]:
    """monitoring-baseline: a test the schedule wants before starting, and does not repeat, was never recorded
    (no result at any date). Monograph SECTION 4 of 4 > Clinical Monitoring > Kidney test."""
    plan, phases = _plan(job)
    if plan is None:
        return []
    repeated = {p.value_set for p in phases if p.kind == "after"}
    out = []
    for phase in (p for p in phases if p.kind == "before" and p.value_set and p.value_set not in repeated):
        matcher = job.run.value_set(phase.value_set)
        if matcher is None:
            continue
        label = concept_text(phase.action.get("code")) or phase.title
        if OBSERVATIONS in job.context.unavailable:
            out.append(unable_finding(job, "info",
                                      f"whether {label.lower()} was measured", [OBSERVATIONS], phase.section(plan),
                                      "monitoring"))
            continue
        if _results(job, matcher):
            continue
        out.append(job.finding(
            "info",
            *wording.words("monitoring.baseline", label=label, drug=job.drug.name, title=phase.title,
                           quote=wording.quote(wording.quote_sentences(str(phase.action.get("description") or "")),
                                               phase.section(plan))),
            phase.section(plan), "monitoring",
            {"plan": f"PlanDefinition/{plan.get('id')}", "action": phase.action.get("id"),
             "value_set": phase.value_set},
            _suggestion(job, phase, label)))
    return out


PATIENT_VIEW_CHECKS = (
    Check("monitoring-overdue", (14,), "LAB", "monitoring", "the monitoring schedule", False, check_overdue, 14.0,
          frozenset({MEDICATIONS, OBSERVATIONS})),
    Check("monitoring-baseline", (14,), "LAB", "monitoring", "baseline tests", False, check_baseline, 14.1,
          frozenset({OBSERVATIONS}), rule_key="kidney-function-test"),
    Check("active-infection", (12,), "COND", "warnings", "active infection", False, check_infection, 12.0,
          frozenset({CONDITIONS, OBSERVATIONS})),
)
VACCINE_CHECK = Check("interaction-reverse", (19,), "DRG", "interactions", "interactions with current medications",
                      True, check_reverse_current, 19.0, frozenset({MEDICATIONS}))


def patient_view_rule_keys(drug: DrugProfile) -> set[str]:
    """The rule keys (``knowledge.rules.Rule.key``) the reminders can give a finding of ``drug``: the checks' own,
    and the reverse rule of each interaction class patient-view reminds of."""
    keys = {chk.key for chk in PATIENT_VIEW_CHECKS}
    return keys | {interaction_rule(inter.value_set, inter.id).reverse_rule for inter in drug.interactions
                   if inter.value_set in PATIENT_VIEW_INTERACTION_CLASSES}


def therapies(run: Run) -> list[tuple[DrugProfile, Resource]]:
    """The knowledge drugs the patient is on, each with its current record (the earliest started), in drug id
    order."""
    found: dict[str, tuple[DrugProfile, list[Resource]]] = {}
    for med in run.context.medications:
        if is_current(med):
            for drug in run.drugs_of(med):
                found.setdefault(drug.id, (drug, []))[1].append(med)
    out = []
    for drug_id in sorted(found):
        drug, records = found[drug_id]
        records.sort(key=lambda m: (medication_start(m) is None, medication_start(m) or run.now))
        out.append((drug, records[0]))
    return out


def run_patient_view(context: PatientContext, knowledge: Knowledge, site: SiteConfig = NO_SITE_CONFIG) -> list[Finding]:
    """Every reminder for the patient, in a deterministic order: by drug id, then by check, then the live
    vaccines in the order of the medication list."""
    if MEDICATIONS in context.unavailable:
        logger.info("patient-view: medication list unavailable, no reminders")
        return []
    run = Run(context, knowledge, site)
    findings: list[Finding] = []
    on = therapies(run)
    for drug, record in on:
        job = Job(run, record, drug)
        for chk in PATIENT_VIEW_CHECKS:
            findings.extend(run_one(chk, job))
    drugs = {drug.id for drug, _ in on}
    for med in context.medications:
        if med.get("resourceType") != "MedicationRequest" or not is_live_draft(med) or med.get("status") == "unknown":
            continue
        for found in run.index.reverse(run.concepts(med)):
            if found.drug.id in drugs and found.interaction.value_set in PATIENT_VIEW_INTERACTION_CLASSES:
                findings.extend(run_one(VACCINE_CHECK, Job(run, med, found.drug, found.interaction)))
    return findings

