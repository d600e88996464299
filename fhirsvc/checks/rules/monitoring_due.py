"""Blood count monitoring at ordering (#14): a count due by the drug's monitoring PlanDefinition.

The plan's schedule (``drugmodel.schedule``) and the ServiceRequest a card suggests are shared with the
patient-view reminders (``checks.monitoring``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check, plain
from fhirsvc.checks.config import VS_NEUTROPHIL_COUNT
from fhirsvc.checks.context import MEDICATIONS, OBSERVATIONS, Resource
from fhirsvc.checks.findings import Finding, Suggestion
from fhirsvc.checks.reading.medications import course_start, is_current, is_live_draft, is_past
from fhirsvc.checks.reading.observations import Measurement, Reading, newest_measurement
from fhirsvc.checks.reading.resources import code_pairs, reference_key
from fhirsvc.checks.reading.windows import Window, day, whole_days
from fhirsvc.checks.rules.infection import anc_test
from fhirsvc.checks.rules.warning import unable_finding
from fhirsvc.drugmodel.schedule import Phase, plan_schedule, renewal_gap
from fhirsvc.drugmodel.units import DAYS_PER_UNIT, cells_10e9_per_l
from fhirsvc.fhirtypes import concept_text
from fhirsvc.terminology import ValueSetMatcher


def _schedule(job: Job, plan: Resource) -> list[Phase]:
    """The plan's orderable phases (``drugmodel.schedule``: the actions with a code value set and a
    ``definitionCanonical``): ``before`` (new therapy: a result within ``window`` days) or ``after``
    (``start``-``end`` days after starting: one every ``window`` days)."""
    return [phase for phase in plan_schedule(job.run.knowledge, plan) if phase.value_set and phase.definition
            and (phase.kind == "after" or (phase.kind == "before" and phase.window))]


def schedule_text(plan: Resource) -> str:
    """The monitoring plan's schedule, as its description's first sentence says it (without a lead-in such as
    "Computable monitoring schedule of the monograph:")."""
    text = str(plan.get("description") or "").split(". ")[0].rstrip(".")
    return wording.lower_first(text.split(": ", 1)[1]) if ": " in text else text


def service_request(job: Job, action: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ServiceRequest of the action's ActivityDefinition: its code, intent, status draft, the patient."""
    definition = job.run.knowledge.resolve(str(action.get("definitionCanonical")).split("|")[0])
    if definition is None or not definition.get("code"):
        return None
    code = plain(definition["code"])
    for coding in code.get("coding") or []:
        coding.pop("extension", None)
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest", "status": "draft", "intent": definition.get("intent") or "proposal",
        "code": code, "instantiatesCanonical": [definition["url"]] if definition.get("url") else [],
        "reasonCode": [{"text": f"Monitoring during {job.drug.name} treatment"}],
    }
    if job.run.patient_reference:
        request["subject"] = {"reference": job.run.patient_reference}
    if not request["instantiatesCanonical"]:
        del request["instantiatesCanonical"]
    return request


def _current_records(job: Job) -> list[Resource]:
    """The patient's current medication records of the drug (not the draft orders): on therapy if any."""
    return [m for m, _ in job.run.others_of(job.order, job.drug.id, drafts=False)]


def _phase_now(job: Job, phases: list[Phase], started: datetime | None) -> tuple[Phase | None, str]:
    """The phase the therapy is in, and the stage as a card says it: new therapy (``started`` None) is the
    ``before`` phase; on therapy, the ``after`` phase of the whole calendar days since the start (windows.py)."""
    if started is None:
        return next((p for p in phases if p.kind == "before"), None), "before starting"
    elapsed = whole_days(started, job.run.now)
    phase = next((p for p in phases if p.kind == "after" and p.start <= elapsed < p.end), None)
    return phase, f"{elapsed / DAYS_PER_UNIT['mo']:.1f} months after starting"


def count_within(job: Job, matcher: ValueSetMatcher, window: Window) -> Measurement:
    """The newest result of a schedule's value set against its window, read one way for #14 at ordering and for
    the patient-view reminder: only a readable result found within the window is a done test; a newest result
    that cannot be read (text, no value; for a neutrophil count also a percentage or any unit that is not a
    count, which must be an absolute count converted to 10*9/L) with nothing readable in the window is not
    (``status`` unreadable)."""
    if matcher.url == VS_NEUTROPHIL_COUNT:
        return newest_measurement(job.run.observations, matcher, job.run.now, cells_10e9_per_l, "10*9/L", window,
                                  anc_test(job))
    return newest_measurement(job.run.observations, matcher, job.run.now, _as_reported, "", window)


def _as_reported(value: float, _unit: str) -> float:
    """A monitored result other than a neutrophil count, read in the unit it was reported in (any unit)."""
    return value


def last_count(measure: Measurement, window: Window, now: datetime) -> tuple[Reading | None, Reading | None, str]:
    """Of a count not found within the window: the newest readable one (too old), the newest that cannot be
    read, and when the last one was, as a card says it."""
    readable = measure.reading if measure.status == "stale" else measure.older
    unreadable = measure.reading if measure.status == "unreadable" else measure.newest_unreadable
    if readable is not None and readable.when is not None:
        return readable, unreadable, f"last {readable.date}, {window.how_old(readable.when, now)}"
    return readable, unreadable, "none recorded" if unreadable is None else "no usable count"


def already_ordered(job: Job, request: Mapping[str, Any]) -> Resource | None:
    """A ServiceRequest for the test (one of its codings) that already stands: a live draft order among the
    draft orders, or an active or on-hold one in the record."""
    wanted = set(code_pairs(request.get("code")))
    candidates = [(r, is_live_draft(r)) for r in job.context.draft_orders]
    candidates += [(r, is_current(r)) for r in job.context.medications]
    return next((r for r, stands in candidates if stands and r.get("resourceType") == "ServiceRequest"
                 and wanted & set(code_pairs(r.get("code")))), None)


def ordered_note(job: Job, action: Mapping[str, Any]) -> str:
    """`` A CBC with differential is already ordered.`` when the action's test already stands (``already_ordered``),
    else empty: the card says why it suggests nothing."""
    request = service_request(job, action)
    if not request or already_ordered(job, request) is None:
        return ""
    return f" A {concept_text(request['code'])} is already ordered."


def order_test(job: Job, action: Mapping[str, Any], label: str) -> list[Suggestion]:
    """Suggest creating the ServiceRequest of the action's ActivityDefinition (nothing without one, nor when one
    is already ordered: ``already_ordered``)."""
    request = service_request(job, action)
    if not request or already_ordered(job, request) is not None:
        return []
    test_label, description = wording.suggestion_words("order-test", test=concept_text(request["code"]),
                                                       purpose=wording.lower_first(label))
    return [Suggestion(label=test_label, action="create", description=description, resource=request,
                       recommended=True)]


@check("monitoring-due", (14,), "LAB", "monitoring", "blood count monitoring", needs=(MEDICATIONS, OBSERVATIONS))
def check_monitoring(job: Job) -> Iterable[Finding]:
    """#14 LAB info: a count is due by the drug's monitoring PlanDefinition: new therapy (no current order
    of the drug) and none within the baseline action's ``offsetRange``; on therapy and none within the
    period (rounded up to whole days) of the phase the therapy is in (``timingTiming`` with ``count`` or
    ``boundsRange``); past the last phase, nothing. Suggestion: ``create`` the action's ActivityDefinition
    as a ServiceRequest. Monograph SECTION 4 of 4 > Clinical Monitoring > Blood test."""
    if not job.drug.monitoring or job.order.get("resourceType") not in ("MedicationRequest", "MedicationStatement"):
        return []
    plan = job.drug.monitoring[0]
    phases = _schedule(job, plan)
    if not phases:
        return []
    section = phases[0].section(plan)
    missing = job.run.unavailable(MEDICATIONS, OBSERVATIONS)
    if missing:
        return [unable_finding(job, "info", "whether a blood count is due", missing, section, "monitoring")]
    current = _current_records(job)
    started = None
    if current:
        started = course_start([*current, *job.drug_records(is_past)], renewal_gap(plan))
        if started is None:
            return [job.finding(
                "info",
                *wording.words("monitoring.unable", drug=job.drug.name, record=job.name_of(current[0]),
                               schedule=schedule_text(plan)),
                section, "monitoring", {"current": [reference_key(m) for m in current]}, unable=True)]
    phase, stage = _phase_now(job, phases, started)
    matcher = job.run.value_set(phase.value_set) if phase else None
    if phase is None or phase.window is None or matcher is None:
        return []
    window = Window(phase.window, "day", "counts")
    measure = count_within(job, matcher, window)
    if measure.found:
        return []
    return [_due(job, plan, section, phase, stage, started, window, measure)]


def _due(job: Job, plan: Resource, section: str, phase: Phase, stage: str, started: datetime | None,
         window: Window, measure: Measurement) -> Finding:
    """#14's finding: the count the phase wants is due (none within its window), with the last one and the test
    to order."""
    readable, unreadable, last = last_count(measure, window, job.run.now)
    also = (f" The newest count ({unreadable.described()}) does not count as a result." if unreadable is not None
            else "") + ordered_note(job, phase.action)
    label = concept_text(phase.action.get("code")) or "Blood count"
    return job.finding(
        "info",
        *wording.words("monitoring.due", label=label, drug=job.drug.name, stage=stage, last=last,
                       title=phase.action.get("title", label), window=f"{phase.window:g}",
                       stage_full=stage + (f" on {day(started)}" if started else ""),
                       rule=window.rule, also=also, schedule=schedule_text(plan)),
        section, "monitoring",
        {"stage": "new therapy" if started is None else "on therapy", "started": day(started),
         "window_days": phase.window, "last_count_date": readable.date if readable else None,
         "last_count": {"value": readable.value, "unit": "10*9/L"} if readable and readable.value is not None
         else None,
         **({"unreadable_count": {"observation": reference_key(unreadable.observation), "date": unreadable.date,
                                  "found": unreadable.shown, "problem": unreadable.problem}} if unreadable else {}),
         "plan": f"PlanDefinition/{plan.get('id')}", "action": phase.action.get("id")},
        order_test(job, phase.action, label))
