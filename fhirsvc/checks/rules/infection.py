"""Patient checks: age (#10, #11), infection (#12), neutropenia (#13), blood count monitoring (#14),
pregnancy (#15), breastfeeding (#16), indication (#17).

Each rule runs for a drug only where the drug's knowledge says so: an age characteristic on its dosing
guidelines (#10), a seniors warning (#11), a warning ClinicalUseDefinition pointing to the infection,
neutropenia, pregnancy or breastfeeding value set (#12, #13, #15, #16), a monitoring PlanDefinition
(#14), indication ClinicalUseDefinitions (#17).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check, lower_first, plain, unavailable_text
from fhirsvc.checks.config import (
    CHILDREN_HEADING,
    FEVER_CELSIUS,
    GERIATRIC_AGE_YEARS,
    NEUTROPENIA_ANC_10E9_PER_L,
    PREGNANCY_STATUS_MAX_AGE,
    SENIORS_HEADING,
    TEMPERATURE_WINDOW,
    VS_BODY_TEMPERATURE,
    VS_BREASTFEEDING,
    VS_BREASTFEEDING_STATUS,
    VS_NEUTROPENIA,
    VS_NEUTROPHIL_COUNT,
    VS_PREGNANCY,
    VS_PREGNANCY_STATUS,
    VS_PREGNANCY_STATUS_PREGNANT,
    VS_SERIOUS_INFECTIONS,
)
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, OBSERVATIONS, PATIENT
from fhirsvc.checks.findings import Finding, Suggestion
from fhirsvc.checks.reading.medications import medication_start
from fhirsvc.checks.reading.observations import (
    Measurement,
    Threshold,
    newest_coded,
    newest_measurement,
    readings_within,
)
from fhirsvc.checks.reading.resources import has_code_in, reference_key
from fhirsvc.checks.reading.windows import Window, day, whole_days
from fhirsvc.drugmodel.profile import section_of, value_set_of
from fhirsvc.drugmodel.schedule import monitoring_schedule
from fhirsvc.drugmodel.units import DAYS_PER_UNIT, cells_10e9_per_l, celsius
from fhirsvc.fhirtypes import concept_text

Resource = Mapping[str, Any]
GIGA_PER_L = "\u00d7 10\u2079/L"  # x 10^9/L as printed on a card
# #13: is the count below the threshold (a count reported as a bound, "<0.5", is read when it decides this)
ANC_TEST = Threshold.compare("<", NEUTROPENIA_ANC_10E9_PER_L, "10*9/L")


def _description(cud: Resource | None) -> str:
    return str(((cud or {}).get("warning") or {}).get("description") or "")


def _code_text(cud: Resource | None, after_colon: bool = False) -> str:
    """The warning's own short statement (``warning.code.text``), first letter lower-cased; with
    ``after_colon`` only what follows its first colon ("Age over ...: higher risk ..." -> "higher risk ...")."""
    text = str((((cud or {}).get("warning") or {}).get("code") or {}).get("text") or "see the monograph warning")
    if after_colon and ": " in text:
        text = text.split(": ", 1)[1]
    return lower_first(text)


def _short_text(cud: Resource | None) -> str:
    """The warning's statement without its bracketed explanation ("Pregnancy (category ...)" -> "pregnancy")."""
    return _code_text(cud).split(" (")[0]


def _sentence(text: str) -> str:
    """The text with its first letter upper-cased (a clause as a sentence)."""
    return text[:1].upper() + text[1:]


def _warning(job: Job, found: str, evidence: str, cud: Resource, todo: str) -> tuple[str, str]:
    """The ``warning.found`` wording: what was found, the drug's warning (its statement), what to do, and the
    monograph quoted."""
    return wording.words("warning.found", found=found, evidence=evidence, drug=job.drug.name,
                         warning=_short_text(cud), warning_full=_code_text(cud), todo=todo, quote=_quote(cud))


def _quote(cud: Resource | None) -> str:
    """The warning's monograph sentences worth quoting to a prescriber, with the section."""
    return wording.quote(wording.quote_sentences(_description(cud)), section_of(cud) if cud else "")


def _unable(job: Job, rule: str, topic: str, indicator: str, what: str, missing: list[str], section: str,
            anchor: str, advice: str = "") -> Finding:
    return job.finding(
        rule, topic, indicator,
        *wording.words("unavailable", what=what, drug=job.drug.name, data=unavailable_text(missing), advice=advice),
        section, anchor, {"unavailable": missing}, unable=True)


# --- age ------------------------------------------------------------------------------------------------

def _no_age(job: Job) -> str | None:
    """Why the age is unknown (or None if it is known)."""
    if job.run.age is not None:
        return None
    if PATIENT in job.context.unavailable:
        return "patient record unavailable"
    return "no birth date recorded"


def _undecided_age(job: Job, holds: Callable[[int], bool]) -> str | None:
    """Why a partial birth date (a year, a year-month) does not tell whether the age limit holds: the two
    ages it allows give different answers. None when it decides (or the birth date is a full date)."""
    ages = job.run.ages
    if ages is None or ages[0] == ages[1] or holds(ages[0]) == holds(ages[1]):
        return None
    written = str((job.context.patient or {}).get("birthDate"))
    return f"birth date recorded as {written} only: {ages[0]} or {ages[1]} years old"


@check("age", (10,), "AGE", "children", "age", needs=(PATIENT, CONDITIONS))
def check_age(job: Job) -> Iterable[Finding]:
    """#10 AGE warning: the patient is younger than the age the fixed-dose guidelines require (their age
    ``patientCharacteristic``) and no weight-based indication is recorded. Monograph SECTION 3 of 4 > For
    Children; SECTION 4 of 4 > the indication's Child Dosage (dose not established)."""
    if job.weight_based_indication is not None:
        return []
    aged = [g for g in job.drug.guidelines if g.fixed_limits and g.of_kind("age")]
    if not aged:
        return []
    children = job.drug.warning_with_heading(CHILDREN_HEADING)
    why = _no_age(job)
    if why:
        return [job.finding("age", "AGE", "warning",
                            *wording.words("age.unable", drug=job.drug.name, why=why, rule="Confirm the age before "
                                           "signing: the fixed dose is for adults.", quote=_quote(children)),
                            section_of(children) or aged[0].section, "children", {"age_unknown": why}, unable=True)]
    age = job.run.age
    assert age is not None

    def adult(years: int) -> bool:
        return any(all(c.holds(years) for c in g.of_kind("age")) for g in aged)

    undecided = _undecided_age(job, adult)
    if undecided:
        return [job.finding("age", "AGE", "warning",
                            *wording.words("age.unable", drug=job.drug.name, why=undecided, rule="Confirm the age "
                                           "before signing: the fixed dose is for adults.", quote=_quote(children)),
                            section_of(children) or aged[0].section, "children",
                            {"age_unknown": undecided, "ages": list(job.run.ages or ())}, unable=True)]
    if adult(age):
        return []
    limit = aged[0].of_kind("age")[0]
    exempt = " or ".join(dict.fromkeys(
        _short(_indication_text(cud)) for g in job.drug.guidelines if g.weight_based and g.indication_id
        for cud in [job.run.knowledge.get("ClinicalUseDefinition", g.indication_id)] if cud))
    bound = f"{limit.comparator or ''} {limit.value:g} years" if limit.value is not None else "the adult age range"
    covering = [g for g in job.drug.guidelines if g.not_established and all(c.holds(age) for c in g.of_kind("age"))
                and g.of_kind("age")]
    statement = " ".join(d.dosage.get("text", "") for g in covering[:1] for d in g.dosages)
    return [job.finding(
        "age", "AGE", "warning",
        *wording.words("age.child", drug=job.drug.name, age=age, bound=bound.strip().replace(">=", "\u2265"),
                       exempt=f" (no {exempt} recorded)" if exempt else "",
                       born=f" (born {(job.context.patient or {}).get('birthDate')})"
                       if (job.context.patient or {}).get("birthDate") else "",
                       statement=f"{statement.strip()} " if statement.strip() else "", quote=_quote(children)),
        (covering[0].section if covering else section_of(children)) or aged[0].section, "children",
        {"age_years": age, "birth_date": (job.context.patient or {}).get("birthDate"),
         "required_age": {"comparator": limit.comparator, "value": limit.value, "unit": "a"},
         **({"guideline": covering[0].id} if covering else {})})]


@check("geriatric", (11,), "GEALRT", "seniors", "age", needs=(PATIENT,))
def check_geriatric(job: Job) -> Iterable[Finding]:
    """#11 GEALRT info: the patient is at least ``GERIATRIC_AGE_YEARS`` old and the drug has a seniors
    warning (infection risk, reduced kidney function). Monograph SECTION 3 of 4 > For Seniors."""
    cud = job.drug.warning_with_heading(SENIORS_HEADING)
    if cud is None:
        return []
    why = _no_age(job)
    if why:
        return [job.finding("geriatric", "GEALRT", "info",
                            *wording.words("age.unable", drug=job.drug.name, why=why,
                                           rule=f"The seniors' warning applies from {GERIATRIC_AGE_YEARS}.",
                                           quote=_quote(cud)),
                            section_of(cud), "seniors", {"age_unknown": why}, unable=True)]
    age = job.run.age
    assert age is not None
    undecided = _undecided_age(job, lambda years: years >= GERIATRIC_AGE_YEARS)
    if undecided:
        return [job.finding("geriatric", "GEALRT", "info",
                            *wording.words("age.unable", drug=job.drug.name, why=undecided,
                                           rule=f"The seniors' warning applies from {GERIATRIC_AGE_YEARS}.",
                                           quote=_quote(cud)),
                            section_of(cud), "seniors", {"age_unknown": undecided,
                                                         "ages": list(job.run.ages or ())}, unable=True)]
    if age < GERIATRIC_AGE_YEARS:
        return []
    return [job.finding(
        "geriatric", "GEALRT", "info",
        *wording.words("age.senior", age=age, risk=_code_text(cud, after_colon=True), threshold=GERIATRIC_AGE_YEARS,
                       quote=_quote(cud)),
        section_of(cud), "seniors", {"age_years": age, "threshold_years": GERIATRIC_AGE_YEARS,
                                     "warning": f"ClinicalUseDefinition/{cud.get('id')}"})]


# --- infection and neutropenia ----------------------------------------------------------------------------

@check("active-infection", (12,), "COND", "warnings", "active infection", needs=(CONDITIONS, OBSERVATIONS))
def check_infection(job: Job) -> Iterable[Finding]:
    """#12 COND warning: an active condition in the drug's serious-infection value set, or a body
    temperature of at least ``FEVER_CELSIUS`` within ``TEMPERATURE_WINDOW``. Monograph SECTION 1 of 4 >
    IMPORTANT INFORMATION > Inability to fight infections."""
    cud = job.drug.warning(VS_SERIOUS_INFECTIONS)
    if cud is None:
        return []
    section = section_of(cud)
    found = job.run.conditions_in(VS_SERIOUS_INFECTIONS)
    if found:
        cond = found[0]
        name = wording.record_name(cond)
        return [job.finding(
            "active-infection", "COND", "warning",
            *_warning(job, f"Active infection recorded ({name})",
                      wording.markdown("Active infection on the problem list: **{name}**{recorded}.", name=name,
                                       recorded=wording.recorded_on(cond)), cud,
                      wording.ADVICE["infection"]),
            section, "warnings", {"condition": reference_key(cond), "value_set": VS_SERIOUS_INFECTIONS})]
    matcher = job.run.value_set(VS_BODY_TEMPERATURE)
    readings = readings_within(job.run.observations, matcher, job.run.now, TEMPERATURE_WINDOW, celsius,
                               Threshold.compare(">=", FEVER_CELSIUS, "°C")) if matcher is not None else []
    fevers = [r for r in readings if r.readable and r.meets]
    window_text = f"within {TEMPERATURE_WINDOW.limit} hours; {TEMPERATURE_WINDOW.rule}"
    if fevers:
        fever = max(fevers, key=lambda r: (r.value or 0.0))
        value, obs, when = round(fever.value or 0.0, 1), fever.observation, fever.when
        shown = f"{fever.comparator}{value:g}"
        return [job.finding(
            "active-infection", "COND", "warning",
            *_warning(job, f"Fever {shown} °C ({fever.date})",
                      wording.markdown("Body temperature **{shown} °C** on {date}, a sign of infection (fever: "
                                       "{fever:g} °C or more {window}).", shown=shown, date=fever.date,
                                       fever=FEVER_CELSIUS, window=window_text), cud, wording.ADVICE["infection"]),
            section, "warnings",
            {"temperature": {"value": value, "unit": "Cel", "date": fever.date, "observation": reference_key(obs),
                             **({"comparator": fever.comparator} if fever.comparator else {})},
             "threshold_celsius": FEVER_CELSIUS, "window_hours": TEMPERATURE_WINDOW.limit,
             "placed_at": "last instant of its date" if when and not when.exact else "as recorded"})]
    missing = job.run.unavailable(CONDITIONS, OBSERVATIONS)
    if missing:
        return [_unable(job, "active-infection", "COND", "warning", "active infection", missing, section,
                        "warnings", "Ask about infection and fever before signing.")]
    if readings and not any(r.readable for r in readings):
        newest = readings[0]
        return [job.finding(
            "active-infection", "COND", "warning",
            *wording.words("warning.unable", what="fever", drug=job.drug.name,
                           problem=f"newest temperature cannot be used ({newest.shown or 'no value'}, {newest.date})",
                           reason=f"No active infection is recorded, and no body temperature of the last "
                           f"{TEMPERATURE_WINDOW.limit} hours can be used: the newest ({newest.described()}). Fever "
                           f"is {FEVER_CELSIUS:g} °C or more ({window_text}).",
                           todo="Take the temperature before signing.", quote=_quote(cud)),
            section, "warnings",
            {"temperature_unreadable": [{"observation": reference_key(r.observation), "date": r.date,
                                         "found": r.shown, "problem": r.problem} for r in readings],
             "window_hours": TEMPERATURE_WINDOW.limit}, unable=True)]
    return []


@check("neutropenia", (13,), "LAB", "warnings", "neutrophil count", needs=(CONDITIONS, OBSERVATIONS))
def check_neutropenia(job: Job) -> Iterable[Finding]:
    """#13 LAB warning: the newest absolute neutrophil count is below ``NEUTROPENIA_ANC_10E9_PER_L`` (units
    converted; a percentage is not usable), or an active condition in the drug's neutropenia value set. Monograph
    SECTION 1 of 4 > IMPORTANT INFORMATION > Decreased white blood cells. A missing count is #14's."""
    cud = job.drug.warning(VS_NEUTROPENIA)
    if cud is None:
        return []
    section = section_of(cud)
    matcher = job.run.value_set(VS_NEUTROPHIL_COUNT)
    measure = (newest_measurement(job.run.observations, matcher, job.run.now, cells_10e9_per_l, "10*9/L",
                                  test=ANC_TEST) if matcher else None)
    if measure is not None and measure.found and measure.meets:
        shown = f"{measure.shown.split(' ')[0]} {GIGA_PER_L}"
        per_ul = round((measure.value or 0.0) * 1000)
        return [job.finding(
            "neutropenia", "LAB", "warning",
            *_warning(job, f"Low neutrophil count {shown} ({day(measure.when)})",
                      wording.markdown("Newest absolute neutrophil count: **{shown}** ({per_ul} /\u00b5L) on {when}, "
                                       "below {limit:g} {unit}.", shown=shown, per_ul=per_ul, when=day(measure.when),
                                       limit=NEUTROPENIA_ANC_10E9_PER_L, unit=GIGA_PER_L), cud,
                      wording.ADVICE['neutropenia']),
            section, "warnings", {**measure.facts("neutrophils"), "threshold_10e9_per_l": NEUTROPENIA_ANC_10E9_PER_L})]
    found = job.run.conditions_in(VS_NEUTROPENIA)
    if found:
        cond = found[0]
        name = wording.record_name(cond)
        return [job.finding(
            "neutropenia", "LAB", "warning",
            *_warning(job, f"Neutropenia recorded ({name})" if name.lower() != "neutropenia"
                      else "Neutropenia recorded",
                      wording.markdown("Active on the problem list: **{name}**{recorded}.", name=name,
                                       recorded=wording.recorded_on(cond)), cud,
                      wording.ADVICE["neutropenia"]),
            section, "warnings", {"condition": reference_key(cond),
                                  **(measure.facts("neutrophils") if measure else {})})]
    missing = job.run.unavailable(OBSERVATIONS)
    if not missing and CONDITIONS in job.context.unavailable and not (measure and measure.found):
        missing = [CONDITIONS]
    if missing:
        return [_unable(job, "neutropenia", "LAB", "warning", "the neutrophil count", missing, section, "warnings",
                        "Review the latest neutrophil count before signing.")]
    if measure is not None and measure.status == "unreadable":
        label = "neutrophil count"
        return [job.finding(
            "neutropenia", "LAB", "warning",
            *wording.words("warning.unable", what="the neutrophil count", drug=job.drug.name,
                           problem=measure.brief(label), reason=f"{_sentence(measure.problem(label))}.",
                           todo=f"An absolute count (\u00d7 10\u2079/L or /\u00b5L, status final) is needed to check "
                           f"for neutropenia (below {NEUTROPENIA_ANC_10E9_PER_L:g} {GIGA_PER_L}).", quote=_quote(cud)),
            section, "warnings", {**measure.facts("neutrophils"), "threshold_10e9_per_l": NEUTROPENIA_ANC_10E9_PER_L},
            unable=True)]
    return []


# --- monitoring -------------------------------------------------------------------------------------------

def _schedule(plan: Resource) -> list[dict[str, Any]]:
    """The plan's orderable phases (``drugmodel.schedule``: the actions with a code value set and a
    ``definitionCanonical``): ``before`` (new therapy: a result within ``window`` days) or ``after``
    (``start``-``end`` days after starting: one every ``window`` days)."""
    return [{"kind": phase.kind, "window": phase.window, "action": phase.action, "value_set": phase.value_set,
             **({"start": phase.start, "end": phase.end} if phase.kind == "after" else {})}
            for phase in monitoring_schedule(plan) if phase.value_set and phase.definition
            and (phase.kind == "after" or (phase.kind == "before" and phase.window))]


def _schedule_text(plan: Resource) -> str:
    """The monitoring plan's schedule, as its description's first sentence says it (without a lead-in such as
    "Computable monitoring schedule of the monograph:")."""
    text = str(plan.get("description") or "").split(". ")[0].rstrip(".")
    return wording.lower_first(text.split(": ", 1)[1]) if ": " in text else text


def _service_request(job: Job, action: Mapping[str, Any]) -> dict[str, Any] | None:
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
    phases = _schedule(plan)
    if not phases:
        return []
    section = section_of(phases[0]["action"], plan)
    missing = job.run.unavailable(MEDICATIONS, OBSERVATIONS)
    if missing:
        return [_unable(job, "monitoring-due", "LAB", "info", "whether a blood count is due", missing, section,
                        "monitoring")]
    current = [m for m, _ in job.run.others_where(job.order, ("current-medications", job.drug.id),
                                                  lambda m, kind: kind == "medication"
                                                  and any(d.id == job.drug.id for d in job.run.drugs_of(m)))]
    if not current:
        phase = next((p for p in phases if p["kind"] == "before"), None)
        stage, started = "before starting", None
    else:
        starts = [medication_start(m) for m in current]
        known = [s for s in starts if s is not None]
        if not known:
            return [job.finding(
                "monitoring-due", "LAB", "info",
                *wording.words("monitoring.unable", drug=job.drug.name, record=job.name_of(current[0]),
                               schedule=_schedule_text(plan)),
                section, "monitoring", {"current": [reference_key(m) for m in current]}, unable=True)]
        started = min(known)
        elapsed = whole_days(started, job.run.now)  # whole calendar days since the start date (windows.py)
        phase = next((p for p in phases if p["kind"] == "after" and p["start"] <= elapsed < p["end"]), None)
        stage = f"{elapsed / DAYS_PER_UNIT['mo']:.1f} months after starting ({day(started)})"
    if phase is None:
        return []
    matcher = job.run.value_set(phase["value_set"])
    if matcher is None:
        return []
    window = Window(phase["window"], "day", "counts")
    measure = newest_measurement(job.run.observations, matcher, job.run.now, cells_10e9_per_l, "10*9/L", window,
                                 ANC_TEST)
    if measure.found:
        return []
    readable = measure.reading if measure.status == "stale" else measure.older
    unreadable = measure.reading if measure.status == "unreadable" else measure.newest_unreadable
    if readable is not None and readable.when is not None:
        last = f"last {readable.date}, {window.how_old(readable.when, job.run.now)}"
    else:
        last = "none recorded" if unreadable is None else "no usable count"
    also = (f" The newest count ({unreadable.described()}) does not count as a result." if unreadable is not None
            else "")
    request = _service_request(job, phase["action"])
    label = concept_text(phase["action"].get("code")) or "Blood count"
    suggestions = []
    if request:
        test_label, description = wording.suggestion_words("order-test", test=concept_text(request["code"]),
                                                           purpose=wording.lower_first(label))
        suggestions.append(Suggestion(label=test_label, action="create", description=description, resource=request,
                                      recommended=True))
    return [job.finding(
        "monitoring-due", "LAB", "info",
        *wording.words("monitoring.due", label=label, drug=job.drug.name, stage=stage.split(" (")[0], last=last,
                       title=phase["action"].get("title", label), window=f"{phase['window']:g}",
                       stage_full=stage.split(" (")[0] + (f" on {day(started)}" if started else ""),
                       rule=window.rule, also=also, schedule=_schedule_text(plan)),
        section, "monitoring",
        {"stage": "new therapy" if started is None else "on therapy", "started": day(started),
         "window_days": phase["window"], "last_count_date": readable.date if readable else None,
         "last_count": {"value": readable.value, "unit": "10*9/L"} if readable and readable.value is not None
         else None,
         **({"unreadable_count": {"observation": reference_key(unreadable.observation), "date": unreadable.date,
                                  "found": unreadable.shown, "problem": unreadable.problem}} if unreadable else {}),
         "plan": f"PlanDefinition/{plan.get('id')}", "action": phase["action"].get("id")},
        suggestions)]


# --- pregnancy, breastfeeding -----------------------------------------------------------------------------

def _newest_status(job: Job, code_vs: str, max_age: Window | None) -> Measurement | None:
    """The newest readable status observation of the value set (``patient.newest_coded``), or None without
    the value set."""
    matcher = job.run.value_set(code_vs)
    return None if matcher is None else newest_coded(job.run.observations, matcher, job.run.now, max_age)


@check("pregnancy", (15,), "PREG", "pregnancy", "pregnancy", needs=(CONDITIONS, OBSERVATIONS))
def check_pregnancy(job: Job) -> Iterable[Finding]:
    """#15 PREG warning: an active pregnancy condition, or the newest pregnancy status observation (its
    code in the knowledge's pregnancy-status value set) answers pregnant (matched by code: "Not pregnant"
    contains the name "pregnant"). Monograph SECTION 3 of 4 > Pregnant women."""
    cud = job.drug.warning(VS_PREGNANCY)
    if cud is None:
        return []
    section = section_of(cud)
    found = job.run.conditions_in(VS_PREGNANCY)
    evidence, facts = None, {}
    if found:
        evidence = (wording.record_name(found[0]), wording.recorded_on(found[0]), "Problem list")
        facts = {"condition": reference_key(found[0])}
    else:
        status = _newest_status(job, VS_PREGNANCY_STATUS, PREGNANCY_STATUS_MAX_AGE)
        pregnant = job.run.value_set(VS_PREGNANCY_STATUS_PREGNANT)
        answer = status.observation.get("valueCodeableConcept") if status and status.observation else None
        if status is not None and status.found and pregnant is not None and has_code_in(pregnant, answer):
            evidence = (concept_text(answer), f", {day(status.when)}", "Pregnancy status")
            facts = {"observation": reference_key(status.observation or {}), "date": day(status.when),
                     "value": concept_text(answer)}
    if evidence is None:
        missing = job.run.unavailable(CONDITIONS, OBSERVATIONS)
        if missing:
            return [_unable(job, "pregnancy", "PREG", "warning", "pregnancy", missing, section, "pregnancy")]
        reading = status.reading if status is not None and status.status == "unreadable" else None
        if reading is not None and PREGNANCY_STATUS_MAX_AGE.contains(reading.when, job.run.now):
            label = "pregnancy status"
            return [job.finding(
                "pregnancy", "PREG", "warning",
                *wording.words("warning.unable", what="pregnancy", drug=job.drug.name, problem=status.brief(label),
                               reason=f"No pregnancy is recorded, and {status.problem(label)}.",
                               todo="Confirm the pregnancy status (a coded answer, status final) before signing.",
                               quote=_quote(cud)),
                section, "pregnancy", status.facts("pregnancy_status"), unable=True)]
        return []
    what, when, where = evidence
    return [job.finding(
        "pregnancy", "PREG", "warning",
        *_warning(job, f"Pregnancy recorded ({what}{when})",
                  wording.markdown("{where}: **{what}**{when}.", where=where, what=what, when=when), cud,
                  wording.ADVICE["pregnancy"]),
        section, "pregnancy", {**facts, "warning": f"ClinicalUseDefinition/{cud.get('id')}"})]


@check("breastfeeding", (16,), "LACT", "breastfeeding", "breastfeeding", needs=(CONDITIONS, OBSERVATIONS))
def check_breastfeeding(job: Job) -> Iterable[Finding]:
    """#16 LACT info: breastfeeding recorded, as an active condition of the breastfeeding value set or as
    the newest breastfeeding status observation (its code in the knowledge's breastfeeding-status value
    set) whose answer is in the breastfeeding value set (by code) or ``true``. Monograph SECTION 3 of 4 >
    Women who are nursing."""
    cud = job.drug.warning(VS_BREASTFEEDING)
    if cud is None:
        return []
    section = section_of(cud)
    found = job.run.conditions_in(VS_BREASTFEEDING)
    evidence, facts = None, {}
    if found:
        evidence = (wording.record_name(found[0]), wording.recorded_on(found[0]), "Problem list")
        facts = {"condition": reference_key(found[0])}
    else:
        status = _newest_status(job, VS_BREASTFEEDING_STATUS, None)
        answers = job.run.value_set(VS_BREASTFEEDING)
        obs = status.observation if status is not None and status.found else None
        if obs is not None and answers is not None and (
                obs.get("valueBoolean") is True or has_code_in(answers, obs.get("valueCodeableConcept"))):
            evidence = (concept_text(obs.get("valueCodeableConcept")) or "breastfeeding", f", {day(status.when)}",
                        "Breastfeeding status")
            facts = {"observation": reference_key(obs), "date": day(status.when)}
    if evidence is None:
        missing = job.run.unavailable(CONDITIONS, OBSERVATIONS)
        return [_unable(job, "breastfeeding", "LACT", "info", "breastfeeding", missing, section, "breastfeeding")] \
            if missing else []
    return [job.finding(
        "breastfeeding", "LACT", "info",
        *_warning(job, f"Breastfeeding recorded ({evidence[0]}{evidence[1]})",
                  wording.markdown("{where}: **{what}**{when}.", where=evidence[2], what=evidence[0],
                                   when=evidence[1]), cud,
                  wording.ADVICE["breastfeeding"]),
        section, "breastfeeding", {**facts, "warning": f"ClinicalUseDefinition/{cud.get('id')}"})]


# --- indication ---------------------------------------------------------------------------------------------

def _indication_text(cud: Resource) -> str:
    concept = ((cud.get("indication") or {}).get("diseaseSymptomProcedure") or {}).get("concept") or {}
    return str(concept.get("text") or cud.get("id")).split(";")[0]


def _short(text: str) -> str:
    """An indication's short name: its abbreviation in brackets ("(ABC)") if it has one, else the text
    before any bracket."""
    match = re.search(r"\(([A-Z][A-Z0-9-]{1,9})\)", text)
    return match[1] if match else text.split(" (")[0]


def _prerequisite(cud: Resource) -> tuple[str | None, str]:
    """The value set of therapy that must come first (``otherTherapy`` indicated-only-before), and its text."""
    for other in (cud.get("indication") or {}).get("otherTherapy") or ():
        codes = [c.get("code") for c in (other.get("relationshipType") or {}).get("coding") or ()]
        if "indicated-only-before" in codes:
            concept = (other.get("treatment") or {}).get("concept") or {}
            return value_set_of(concept), str(concept.get("text") or "")
    return None, ""


@check("indication", (17,), "COND", "summary", "the indication", needs=(CONDITIONS, MEDICATIONS))
def check_indication(job: Job) -> Iterable[Finding]:
    """#17 COND info: none of the drug's indications is recorded (conditions or the order's reason); or
    the recorded indication must follow other therapy (``otherTherapy`` indicated-only-before, e.g.
    conventional DMARDs) and none is in the medication list. Monograph SECTION 1 of 4 > Why It's Used;
    More Details (not first-line therapy)."""
    indications = [(cud, vs) for cud, vs in job.drug.indications() if vs]
    if not indications:
        return []
    section = section_of(indications[0][0])
    recorded = [(cud, vs, job.indication_recorded(vs)) for cud, vs in indications]
    recorded = [(cud, vs, names) for cud, vs, names in recorded if names]
    texts = [_indication_text(cud) for cud, _ in indications]
    names = "; ".join(texts)
    short = " or ".join(_short(t) for t in texts)
    if not recorded:
        if CONDITIONS in job.context.unavailable:
            return [_unable(job, "indication", "COND", "info", "the indication", [CONDITIONS], section, "summary")]
        return [job.finding(
            "indication", "COND", "info",
            *wording.words("indication.none", drug=job.drug.name, short=short, names=names),
            section, "summary", {"indications": [f"ClinicalUseDefinition/{c.get('id')}" for c, _ in indications]})]
    if any(_prerequisite(cud)[0] is None for cud, _, _ in recorded):
        return []
    cud, _, found = recorded[0]
    prior_vs, prior_text = _prerequisite(cud)
    matcher = job.run.value_set(prior_vs)
    if matcher is None:
        return []
    if MEDICATIONS in job.context.unavailable:
        return [_unable(job, "indication", "COND", "info", "earlier therapy", [MEDICATIONS], section_of(cud),
                        "summary")]
    recorded_keys = job.run.once(("recorded-in", prior_vs), lambda: {
        reference_key(m) for m in job.context.medications if m.get("status") != "entered-in-error"
        and any(matcher.matches_concept(c) for c in job.run.concepts(m))})
    earlier = bool(recorded_keys - {job.order_ref})
    if earlier:
        return []
    vs = job.run.knowledge.resolve(prior_vs or "") or {}
    title = str(vs.get("title") or prior_text)
    relation = next((str((o.get("relationshipType") or {}).get("text") or "")
                     for o in (cud.get("indication") or {}).get("otherTherapy") or ()), "")
    return [job.finding(
        "indication", "COND", "info",
        *wording.words("indication.prior", indication=_short(_indication_text(cud)), drug=job.drug.name,
                       prior=lower_first(title.split(" (")[0]), prior_full=lower_first(title), found=found[0],
                       relation=lower_first(relation or "not first-line therapy")),
        section_of(cud), "summary",
        {"indication": f"ClinicalUseDefinition/{cud.get('id')}", "recorded_as": found, "prior_therapy": prior_vs})]
