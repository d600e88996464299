"""Monitoring reminders for a patient already on therapy (CDS Hooks ``patient-view``).

Entry point: ``run_patient_view(context, knowledge) -> list[Finding]``. For each knowledge drug the patient
has a current record of (``reading.medications.is_current``: an order or a statement the medication list
reads as current therapy), in contract order:

- ``active-infection`` (COND warning): an active infection or a recent fever while on therapy (the order
  hooks' check #12, run on the current record).
- ``neutropenia`` (LAB warning): a low newest neutrophil count or a neutropenia condition (#13, read the same
  way); a newest count that cannot be read is left to the reminder below (counted as not done).
- ``monitoring-overdue`` (LAB info): the phase of the drug's monitoring PlanDefinition the course is in
  (whole days since the start of the course: ``reading.medications.course_start``, over renewals within the
  plan's ``course-renewal-gap``) wants a result every ``window`` days and none readable was taken within it
  (``rules.monitoring_due.count_within``, the reading of #14 at ordering); the card says when the last one was
  and which interval applies, and suggests creating the ServiceRequest of the action's ActivityDefinition
  unless one is already ordered. Past the last phase (12 months), nothing.
- ``monitoring-baseline`` (LAB info): a before-starting test the schedule does not repeat (kidney function)
  was never recorded at all.
- ``interaction-reverse`` (DRG, the class's severity): a member of an interaction class named in
  ``config.PATIENT_VIEW_INTERACTION_CLASSES`` (live vaccines) recorded as due or ordered (a MedicationRequest
  that still stands) while the drug is current (the order hooks' check #19, run on that record).

Nothing for a patient on none of the knowledge's drugs, or whose therapy was stopped or completed. When the
medication list could not be had, whether the patient is on therapy is unknown: one "Unable to check" finding
says so, and nothing else is said. Monograph SECTION 4 of 4 > Clinical Monitoring (blood test, kidney test,
infection); SECTION 1 of 4 > IMPORTANT INFORMATION (decreased white blood cells); SECTION 3 of 4 > Vaccines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Check, Job, Run
from fhirsvc.checks.config import PATIENT_VIEW_INTERACTION_CLASSES, TOPICS, interaction_rule
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, OBSERVATIONS, PatientContext
from fhirsvc.checks.engine import run_one
from fhirsvc.checks.findings import INDICATORS, Finding
from fhirsvc.checks.reading.medications import course_start, is_current, is_live_draft, is_past, medication_start
from fhirsvc.checks.reading.observations import READABLE_STATUSES, Reading, observations_of
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.reading.windows import Window, day, whole_days
from fhirsvc.checks.rules.infection import check_infection, neutropenia
from fhirsvc.checks.rules.interactions import check_reverse_current
from fhirsvc.checks.rules.monitoring_due import (
    count_within,
    last_count,
    order_test,
    ordered_note,
    schedule_text,
)
from fhirsvc.checks.rules.warning import unable_finding
from fhirsvc.drugmodel.profile import DrugProfile, section_of
from fhirsvc.drugmodel.schedule import Phase, plan_schedule, renewal_gap
from fhirsvc.drugmodel.units import DAYS_PER_UNIT
from fhirsvc.fhirtypes import concept_text
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.terminology import ValueSetMatcher

logger = logging.getLogger(__name__)
Resource = Mapping[str, Any]


def _has_result(job: Job, matcher: ValueSetMatcher) -> bool:
    """Whether a usable result of the value set is recorded: a readable status (``READABLE_STATUSES``) and a value."""
    return any(o.get("status") in READABLE_STATUSES and any(key.startswith("value") for key in o)
               for o in observations_of(job.run.observations, matcher))


def _plan(job: Job) -> tuple[Resource | None, tuple[Phase, ...]]:
    if not job.drug.monitoring:
        return None, ()
    plan = job.drug.monitoring[0]
    return plan, plan_schedule(job.run.knowledge, plan)


def check_overdue(job: Job) -> Iterable[Finding]:
    """monitoring-overdue: the phase of the course wants a count every ``window`` days and none readable was taken
    within it (read as #14 reads it at ordering: ``monitoring_due.count_within``). The course starts at the
    earliest start of the continuous run of the drug's records (``course_start``: a renewal within the plan's
    renewal gap of the previous record's end continues it). Monograph SECTION 4 of 4 > Clinical Monitoring >
    Blood test."""
    plan, after = _repeated_tests(job)
    if plan is None:
        return []
    current = job.drug_records(is_current)
    started = course_start([*current, *job.drug_records(is_past)], renewal_gap(plan))
    if started is None:
        return [_start_unknown(job, plan, after[0].section(plan), current)]
    elapsed = whole_days(started, job.run.now)  # whole calendar days since the start date, as #14 counts them
    due = _phase_test(job, after, elapsed)
    if due is None:  # past the last phase (12 months): the monograph gives no schedule
        return []
    phase, matcher = due
    if OBSERVATIONS in job.context.unavailable:
        return [unable_finding(job, "info", f"whether a {_action_label(phase).lower()} is due",
                               [OBSERVATIONS], phase.section(plan), "monitoring")]
    window = Window(int(phase.window or 0), "day", "counts")  # inclusive, in whole calendar days (windows.py)
    measure = count_within(job, matcher, window)
    if measure.found:
        return []
    return [_overdue(job, plan, phase, started, elapsed, last_count(measure, window, job.run.now))]


def _repeated_tests(job: Job) -> tuple[Resource | None, list[Phase]]:
    """The drug's monitoring plan and its phases of repeated tests (``after`` the start, of a value set); no plan
    when it has none."""
    plan, phases = _plan(job)
    after = [p for p in phases if p.kind == "after" and p.value_set]
    return (plan, after) if plan is not None and after else (None, [])


def _phase_test(job: Job, after: list[Phase], elapsed: int) -> tuple[Phase, ValueSetMatcher] | None:
    """The phase the course is in after ``elapsed`` days, with its test's value set; None past the last phase (or
    when the knowledge lacks the value set)."""
    phase = next((p for p in after if p.start <= elapsed < p.end), None)
    matcher = job.run.value_set(phase.value_set) if phase is not None else None
    return None if phase is None or matcher is None else (phase, matcher)


def _action_label(phase: Phase) -> str:
    """What the phase's action measures, for card text: its code's text, else the phase's title."""
    return concept_text(phase.action.get("code")) or phase.title


def _start_unknown(job: Job, plan: Resource, section: str, current: list[Resource]) -> Finding:
    """The course's start cannot be read from the drug's records: whether a count is due is unknown."""
    return job.finding(
        "info",
        *wording.words("monitoring.start_unknown", drug=job.drug.name, record=job.name_of(job.order),
                       schedule=schedule_text(plan)),
        section, "monitoring", {"current": [reference_key(m) for m in current]}, unable=True)


def _overdue(job: Job, plan: Resource, phase: Phase, started: datetime, elapsed: int,
             last: tuple[Reading | None, Reading | None, str]) -> Finding:
    """The reminder that the phase's count is due: when the last one was (``last_count``), which interval applies,
    and the ServiceRequest of the action's ActivityDefinition unless one is already ordered."""
    readable, unreadable, when = last
    label = _action_label(phase)
    also = (f" The newest count ({unreadable.described()}) does not count as a result." if unreadable is not None
            else "") + ordered_note(job, phase.action)
    months = elapsed / DAYS_PER_UNIT["mo"]
    return job.finding(
        "info",
        *wording.words("monitoring.overdue", label=label, drug=job.drug.name, last=when, interval=phase.interval,
                       title=phase.title, started=day(started), months=f"{months:.1f}", window=f"{phase.window:g}",
                       schedule=schedule_text(plan), also=also),
        phase.section(plan), "monitoring",
        {"started": day(started), "months_on_therapy": round(months, 2), "interval": phase.interval,
         "window_days": phase.window, "last_date": readable.date if readable else None,
         **_unreadable_facts(unreadable), "plan": f"PlanDefinition/{plan.get('id')}", "action": phase.action.get("id")},
        order_test(job, phase.action, label) if phase.definition else [])


def _unreadable_facts(unreadable: Reading | None) -> dict[str, Any]:
    """The newest count that could not be read, for the facts (nothing when there is none)."""
    if unreadable is None:
        return {}
    return {"unreadable_count": {"observation": reference_key(unreadable.observation), "date": unreadable.date,
                                 "found": unreadable.shown, "problem": unreadable.problem}}


def neutropenia_on_therapy(job: Job) -> Iterable[Finding]:
    """#13 on therapy: the newest readable neutrophil count is low, or a neutropenia condition (the order hooks'
    check, read the same way). A newer count that cannot be read is not a card of its own here: the blood-count
    reminder counts it as not done."""
    return neutropenia(job, newest_readable=True)


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
        label = _action_label(phase)
        if OBSERVATIONS in job.context.unavailable:
            out.append(unable_finding(job, "info",
                                      f"whether {label.lower()} was measured", [OBSERVATIONS], phase.section(plan),
                                      "monitoring", not_checked=f"{label.lower()} test"))
            continue
        if _has_result(job, matcher):
            continue
        out.append(job.finding(
            "info",
            *wording.words("monitoring.baseline", label=label, drug=job.drug.name, title=phase.title,
                           quote=wording.quote(wording.quote_sentences(str(phase.action.get("description") or "")),
                                               phase.section(plan))),
            phase.section(plan), "monitoring",
            {"plan": f"PlanDefinition/{plan.get('id')}", "action": phase.action.get("id"),
             "value_set": phase.value_set},
            order_test(job, phase.action, label) if phase.definition else []))
    return out


# In contract order: the most severe of them names the card when the medication list could not be had.
PATIENT_VIEW_CHECKS = (
    Check("active-infection", (12,), "COND", "warnings", "active infection", False, check_infection, 12.0,
          frozenset({CONDITIONS, OBSERVATIONS})),
    Check("neutropenia", (13,), "LAB", "warnings", "neutrophil count", False, neutropenia_on_therapy, 13.0,
          frozenset({CONDITIONS, OBSERVATIONS})),
    Check("monitoring-overdue", (14,), "LAB", "monitoring", "blood count monitoring", False, check_overdue, 14.0,
          frozenset({MEDICATIONS, OBSERVATIONS})),
    Check("monitoring-baseline", (14,), "LAB", "monitoring", "kidney function test", False, check_baseline, 14.1,
          frozenset({OBSERVATIONS}), rule_key="kidney-function-test"),
)
VACCINE_CHECK = Check("interaction-reverse", (19,), "DRG", "interactions", "interactions with current medications",
                      True, check_reverse_current, 19.0, frozenset({MEDICATIONS}))


# The indicator of each reminder (the contract's "Patient view" table).
REMINDER_INDICATORS = {"active-infection": "warning", "neutropenia": "warning", "monitoring-overdue": "info",
                       "monitoring-baseline": "info"}


def therapy_unknown(run: Run) -> list[Finding]:
    """The one "Unable to check" finding when the medication list could not be had: whether the patient is on any
    drug with reminders is unknown, so none of them could be checked (indicator and topic of the most severe
    reminder, section of the drug's monitoring plan). Nothing else is said."""
    drugs = [d for d in run.drugs if d.monitoring]
    if not drugs:
        return []
    worst = max(PATIENT_VIEW_CHECKS, key=lambda c: INDICATORS.index(REMINDER_INDICATORS[c.rule]))
    job = Job(run, {}, drugs[0])  # the registry ids of the drug's reminders
    ids = [job.rule_id(c.key, c.rule) for c in PATIENT_VIEW_CHECKS]
    names = [c.title for c in PATIENT_VIEW_CHECKS]
    drug = wording.joined(d.name for d in drugs)
    plan = drugs[0].monitoring[0]
    summary, detail = wording.words("monitoring.therapy_unknown", drug=drug, checks=wording.joined(names))
    return [Finding(
        rule=job.rule_id(worst.key, worst.rule), topic=worst.topic, topic_display=TOPICS[worst.topic],
        indicator=REMINDER_INDICATORS[worst.rule], summary=summary, detail=detail, drug=drugs[0].id,
        section=section_of(plan), anchor="monitoring", unable=True, data_key=MEDICATIONS,
        facts={"unavailable": [MEDICATIONS], "rules": ids, "not_checked": names,
               "drugs": [d.id for d in drugs]})]


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
    run = Run(context, knowledge, site)
    if MEDICATIONS in context.unavailable:
        logger.info("patient-view: medication list unavailable, therapy unknown")
        return therapy_unknown(run)
    findings: list[Finding] = []
    on = therapies(run)
    for drug, record in on:
        job = Job(run, record, drug)
        for chk in PATIENT_VIEW_CHECKS:
            findings.extend(run_one(chk, job))
    for job in reminded_orders(run, on):
        findings.extend(run_one(VACCINE_CHECK, job))
    return findings


def reminded_orders(run: Run, on: list[tuple[DrugProfile, Resource]]) -> list[Job]:
    """A job per order of the medication list (a MedicationRequest that still stands) that is a member of an
    interaction class patient-view reminds of (``PATIENT_VIEW_INTERACTION_CLASSES``) of a drug the patient is on:
    in the order of the list, then as the drug index orders the interactions (``DrugIndex.reverse``: by drug id,
    then by interaction id and value set). Only those classes are asked of each order."""
    reminded = sorted(((drug, inter) for drug, _ in on for inter in drug.interactions
                       if inter.value_set in PATIENT_VIEW_INTERACTION_CLASSES and run.value_set(inter.value_set)),
                      key=lambda pair: (pair[0].id, pair[1].id, pair[1].value_set))
    if not reminded:
        return []
    return [Job(run, med, drug, inter) for med in run.context.medications
            if med.get("resourceType") == "MedicationRequest" and is_live_draft(med) and med.get("status") != "unknown"
            for drug, inter in reminded if run.concepts_in(med, run.knowledge.value_sets[inter.value_set])]

