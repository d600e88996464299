"""Interaction and duplicate-therapy checks, both directions.

Forward (#3, #4): the drug is ordered and a member of one of its interaction classes (the interactant
value set of an interaction ClinicalUseDefinition) is among the other
draft orders or, where the class's rule says so, current in the medication list. Duplicate (#5): another
order of the same drug is current or drafted. Reverse (#19-#21): the order is a member of the class and
the drug is current or drafted (#19, #21), or was stopped within the interaction's ``washout-period``
(#20; an unknown end date says "Unable to check").
"""

from __future__ import annotations

from collections.abc import Iterable

from fhirsvc.checks.base import Job, check, lower_first, unavailable_text
from fhirsvc.checks.config import dosing_anchor, interaction_rule
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, PATIENT
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.patient import is_past, medication_end_when, reference_key
from fhirsvc.checks.recognition import describe, in_value_set, matched_name
from fhirsvc.checks.windows import Window
from fhirsvc.drugmodel.profile import Interaction, section_of
from fhirsvc.drugmodel.units import DAYS_PER_UNIT


def _management(inter: Interaction) -> str:
    parts = [m.get("text", "") for m in (inter.cud.get("interaction") or {}).get("management") or ()]
    effect = (((inter.cud.get("interaction") or {}).get("effect") or {}).get("concept") or {}).get("text")
    return " ".join(p for p in [f"Effect: {effect}." if effect else "", *parts] if p)


def class_label(job: Job, inter: Interaction) -> str:
    """The interactant class as a prescriber says it: the value set's title before any bracket
    (e.g. the title "Live vaccines (CVX)" gives "live vaccines")."""
    vs = job.run.knowledge.resolve(inter.value_set) or {}
    label = str(vs.get("title") or inter.text or "interacting drugs").split(" (")[0].split(",")[0].strip()
    return lower_first(label)


def member_name(job: Job, concepts, url: str) -> str:
    """A short name of the class member a medication was matched as: the member name found in its text,
    else the member's display in the value set (matched by code), else its own text (shortened)."""
    matcher = job.run.value_set(url)
    if matcher is None:
        return describe(concepts)
    for concept in concepts:
        for text in [concept.get("text"), *(c.get("display") for c in concept.get("coding") or ())]:
            found = matcher.find_name(text) if text else None
            if found:
                return found
    for concept in concepts:
        if any(matcher.has_code(c.get("system"), c.get("code")) for c in concept.get("coding") or ()):
            label = job.run.concept_display(url, concept)
            if label:
                return label
    name = matched_name(concepts, matcher) or describe(concepts)
    return name if len(name) <= 48 else name[:47].rstrip() + "\u2026"


def _what(job: Job, resource) -> str:
    return "draft order" if any(reference_key(resource) == reference_key(d) for d in job.context.draft_orders) \
        else f"{resource.get('status', '')} medication"


@check("interaction", (3, 4), "DRG", "interactions", "drug interactions", needs=(MEDICATIONS,))
def check_interactions(job: Job) -> Iterable[Finding]:
    """#3 DRG warning (a TNF inhibitor current or drafted; monograph SECTION 3 of 4 > TNF inhibitors,
    anti-inflammatory drugs) and #4 DRG critical (a live vaccine among the draft orders; SECTION 3 of 4 >
    Vaccines): one finding per interaction class of the drug, with the severity of the class's rule
    (``config.INTERACTION_RULES``). Suggestions: delete the other draft order, or this one."""
    out = []
    for inter in job.drug.interactions:
        matcher = job.run.value_set(inter.value_set)
        if matcher is None:
            continue
        rule = interaction_rule(inter.value_set, inter.id)
        conflicts = [(res, kind) for res, kind in job.run.others(job.order, medications=rule.current_medications)
                     if in_value_set(job.run.concepts(res), matcher)]
        if not conflicts:
            if rule.current_medications and MEDICATIONS in job.context.unavailable:
                out.append(job.finding(
                    rule.rule, "DRG", "warning",
                    f"Unable to check {job.drug.name} with {class_label(job, inter)}: medication list unavailable",
                    f"The {unavailable_text([MEDICATIONS])} could not be retrieved, so current "
                    f"{inter.text} could not be checked. {_management(inter)}",
                    section_of(inter.cud), rule.anchor, {"unavailable": [MEDICATIONS]}, unable=True))
            continue
        other, kind = conflicts[0]
        other_name = member_name(job, job.run.concepts(other), inter.value_set)
        suggestions = []
        if kind == "draft":
            suggestions.append(job.delete(other, f"Remove the {other_name} order"))
        suggestions.append(job.delete(job.order, f"Remove this {job.drug.name} order"))
        out.append(job.finding(
            rule.rule, "DRG", rule.indicator,
            f"{job.drug.name} with {class_label(job, inter)}: {other_name} ({_what(job, other)})",
            f"**{other_name}** ({reference_key(other)}, {_what(job, other)}) belongs to the class "
            f"\"{inter.text}\", which interacts with {job.drug.label}. {_management(inter)}",
            section_of(inter.cud), rule.anchor,
            {"interactant": reference_key(other), "interactant_kind": kind, "value_set": inter.value_set,
             "interaction": f"ClinicalUseDefinition/{inter.id}",
             "others": [reference_key(r) for r, _ in conflicts]},
            suggestions))
    return out


@check("duplicate-therapy", (5,), "DUPTHPY", "summary", "duplicate therapy", needs=(PATIENT, CONDITIONS, MEDICATIONS))
def check_duplicate(job: Job) -> Iterable[Finding]:
    """#5 DUPTHPY warning: another order of the same drug is active/on-hold in the medication list or in
    the draft Bundle (not this order). Monograph SECTION 4 of 4 > Pharmacist's Advice > What to Do If You
    Miss Doses: "Never double up on doses to catch up." Suggestion: delete this draft order."""
    guide = job.weight_based_indication or job.fixed_guideline
    section = guide.section if guide else job.drug.section
    anchor = dosing_anchor(guide.id if guide else None)
    same = [(res, kind) for res, kind in job.run.others(job.order)
            if res.get("resourceType") in ("MedicationRequest", "MedicationStatement")
            and any(d.id == job.drug.id for d in job.run.drugs_of(res))]
    if not same:
        if MEDICATIONS in job.context.unavailable:
            return [job.finding(
                "duplicate-therapy", "DUPTHPY", "warning",
                f"Unable to check for duplicate {job.drug.name} orders: medication list unavailable",
                f"The {unavailable_text([MEDICATIONS])} could not be retrieved, so a current {job.drug.name} "
                "order could not be looked for.", section, anchor, {"unavailable": [MEDICATIONS]}, unable=True)]
        return []
    other, kind = same[0]
    started = other.get("authoredOn")
    return [job.finding(
        "duplicate-therapy", "DUPTHPY", "warning",
        f"{job.drug.name} is already ordered ({_what(job, other)}{f', {started[:10]}' if started else ''})",
        f"Another {job.drug.label} order exists: {reference_key(other)} ({_what(job, other)}). "
        + (f"The monograph: \"{_instruction(guide)}\"" if _instruction(guide) else ""),
        section, anchor, {"duplicate": reference_key(other), "duplicate_kind": kind,
                          "others": [reference_key(r) for r, _ in same]},
        [job.delete(job.order, f"Remove this {job.drug.name} order")])]


def _instruction(guide) -> str:
    """The patient instruction of a guideline's first dosage (how often, never double up)."""
    return next((str(d.dosage["patientInstruction"]) for d in (guide.dosages if guide else ())
                 if d.dosage.get("patientInstruction")), "")


def _drug_records(job: Job) -> tuple[list, list]:
    """The records of the knowledge drug: current (active/on-hold medications and live drafts) and past
    (stopped/completed medications)."""
    current = [(res, kind) for res, kind in job.run.others(job.order)
               if any(d.id == job.drug.id for d in job.run.drugs_of(res))]
    past = [m for m in job.context.medications if is_past(m) and reference_key(m) != reference_key(job.order)
            and any(d.id == job.drug.id for d in job.run.drugs_of(m))]
    return current, past


def _order_name(job: Job) -> str:
    assert job.interaction is not None
    return member_name(job, job.run.concepts(job.order), job.interaction.value_set)


@check("interaction-reverse", (19, 21), "DRG", "interactions", "interactions with current medications",
       reverse=True, needs=(MEDICATIONS,))
def check_reverse_current(job: Job) -> Iterable[Finding]:
    """#19 DRG critical (a live vaccine is ordered and the drug is active/on-hold or in the same draft
    Bundle; monograph SECTION 3 of 4 > Vaccines) and #21 DRG warning (a TNF inhibitor is ordered and the
    drug is active/on-hold; SECTION 3 of 4 > TNF inhibitors, anti-inflammatory drugs). Suggestion: delete
    this draft order."""
    inter = job.interaction
    assert inter is not None
    rule = interaction_rule(inter.value_set, inter.id)
    current, _ = _drug_records(job)
    current = [(record, kind) for record, kind in current if rule.reverse_drafts or kind != "draft"]
    name = _order_name(job)
    if not current:
        if MEDICATIONS in job.context.unavailable:
            return [job.finding(
                rule.reverse_rule, "DRG", "warning",
                f"Unable to check {name} against {job.drug.name}: medication list unavailable",
                f"The {unavailable_text([MEDICATIONS])} could not be retrieved, so whether the patient takes "
                f"{job.drug.label} is unknown. {_management(inter)}",
                section_of(inter.cud), rule.anchor, {"unavailable": [MEDICATIONS]}, unable=True)]
        return []
    record, kind = current[0]
    return [job.finding(
        rule.reverse_rule, "DRG", rule.reverse_indicator,
        f"{name} ordered while the patient takes {job.drug.name} ({_what(job, record)})",
        f"This order (**{name}**) belongs to \"{inter.text}\", and {job.drug.label} is current: "
        f"{reference_key(record)} ({_what(job, record)}). {_management(inter)}",
        section_of(inter.cud), rule.anchor,
        {"drug_record": reference_key(record), "drug_record_kind": kind, "value_set": inter.value_set,
         "interaction": f"ClinicalUseDefinition/{inter.id}"},
        [job.delete(job.order, f"Remove this {name} order")])]


@check("interaction-washout", (20,), "DRG", "interactions", "the period after stopping", reverse=True,
       needs=(MEDICATIONS,))
def check_reverse_washout(job: Job) -> Iterable[Finding]:
    """#20 DRG warning: a member of an interaction class with a ``washout-period`` (live vaccines) is
    ordered and the drug was stopped or completed less than that period ago (end from ``boundsPeriod.end``,
    else ``dispenseRequest.validityPeriod.end``); an unknown end date says "Unable to check". Monograph
    SECTION 3 of 4 > Vaccines (the period after stopping). Not run when the drug is current (#19)."""
    inter = job.interaction
    assert inter is not None
    if inter.washout is None:
        return []
    rule = interaction_rule(inter.value_set, inter.id)
    current, past = _drug_records(job)
    if current or not past:
        return []
    name = _order_name(job)
    months = inter.washout.total_seconds() / 86400 / DAYS_PER_UNIT["mo"]
    span = f"{months:.0f} months" if abs(months - round(months)) < 0.05 else f"{inter.washout.days} days"
    washout_days = inter.washout.total_seconds() / 86400
    rule_text = (f"a live vaccine is not advised until {span} after stopping: a stop less than {washout_days:g} days "
                 "ago counts (days counted from the last day of treatment)")
    within, unknown = [], []
    for med in past:
        end = medication_end_when(med)
        if end is None:
            unknown.append(med)
            continue
        ago = int(Window(0).age(end, job.run.now, place="last"))  # a partial end: its last day
        if ago < washout_days:
            within.append((med, end, ago))
    if within:
        med, end, ago = min(within, key=lambda row: row[2])
        shown = end.day(job.run.now, place="last").isoformat()
        return [job.finding(
            rule.washout_rule, "DRG", rule.washout_indicator,
            f"{name} ordered {ago} days after {job.drug.name} was stopped ({shown}); wait {span}",
            f"{job.drug.label} ended on **{shown}** ({ago} days ago; {reference_key(med)}, {med.get('status')}). "
            f"The monograph: no {class_label(job, inter)} for at least {span} after stopping ({rule_text}). "
            f"{_management(inter)}",
            section_of(inter.cud), rule.anchor,
            {"drug_record": reference_key(med), "ended": shown, "end_as_recorded": end.text, "days_since_end": ago,
             "washout_days": round(washout_days, 4), "washout_rule": "days since the end < washout days",
             "interaction": f"ClinicalUseDefinition/{inter.id}"},
            [job.delete(job.order, f"Remove this {name} order")])]
    if unknown:
        med = unknown[0]
        return [job.finding(
            rule.washout_rule, "DRG", "warning",
            f"Unable to check {name}: {job.drug.name} was stopped, end date unknown",
            f"{job.drug.label} was {med.get('status')} ({reference_key(med)}) but the record has no end date "
            f"(neither `boundsPeriod.end` nor `dispenseRequest.validityPeriod.end`). The monograph: none for at "
            f"least {span} after stopping. {_management(inter)}",
            section_of(inter.cud), rule.anchor,
            {"drug_record": reference_key(med), "washout_days": round(inter.washout.total_seconds() / 86400, 4),
             "interaction": f"ClinicalUseDefinition/{inter.id}"}, unable=True)]
    return []
