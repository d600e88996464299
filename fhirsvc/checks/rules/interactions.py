"""Interaction and duplicate-therapy checks, both directions.

Forward (#3, #4): the drug is ordered and a member of one of its interaction classes (the interactant
value set of an interaction ClinicalUseDefinition) is among the other
draft orders or, where the class's rule says so, current in the medication list. Duplicate (#5): another
order of the same drug is current or drafted. Reverse (#19-#21): the order is a member of the class and
the drug is current or drafted (#19, #21), or was stopped within the interaction's ``washout-period``
(#20; an unknown end date says "Unable to check").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from itertools import islice
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import MAX_ACTIONS_PER_SUGGESTION, Job, Others, check
from fhirsvc.checks.config import dosing_anchor, interaction_rule
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, PATIENT
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.medications import is_past, medication_end_when
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.reading.windows import Window
from fhirsvc.drugmodel.profile import Guideline, Interaction, section_of
from fhirsvc.drugmodel.units import DAYS_PER_UNIT
from fhirsvc.terminology import codings


def _effect(inter: Interaction) -> str:
    return str((((inter.cud.get("interaction") or {}).get("effect") or {}).get("concept") or {}).get("text") or "")


def _quote(inter: Interaction) -> str:
    """What the monograph says of the interaction, quoted with the section: its effect when the card cannot say
    it in its own words (the effect addresses the patient), else its first management advice that does not."""
    effect = _effect(inter)
    if effect and wording.SECOND_PERSON.search(effect):
        return wording.quote(effect.rstrip(".") + ".", section_of(inter.cud))
    parts = [str(m.get("text") or "") for m in (inter.cud.get("interaction") or {}).get("management") or ()]
    advice = next((p for p in parts if p and not wording.SECOND_PERSON.search(p)), "")
    return wording.quote(advice, section_of(inter.cud)) if advice else ""


def _span(inter: Interaction) -> str | None:
    """The washout period as a card says it (``3 months``, ``42 days``), or None."""
    if inter.washout is None:
        return None
    months = inter.washout.total_seconds() / 86400 / DAYS_PER_UNIT["mo"]
    return f"{months:.0f} months" if abs(months - round(months)) < 0.05 else f"{inter.washout.days} days"


def _group(job: Job, inter: Interaction, concepts: Iterable[Mapping[str, Any]], plural: bool = False
           ) -> dict[str, str]:
    """The group facts of a class member: ``group`` (plural), ``group_one``, ``a_member`` ("a live vaccine
    (typhoid, oral)"), from the value set's member name and the member's label."""
    knowledge = job.run.knowledge
    one = wording.member_name(knowledge, inter.value_set)
    matcher = job.run.value_set(inter.value_set)
    texts = [text for concept in concepts
             for text in [concept.get("text"), *(c.get("display") for c in codings(concept))]]
    found = [name for text in texts if matcher is not None for name in matcher.names_in(text)]
    label = wording.member_label(knowledge, inter.value_set, concepts, found)
    return {"group": wording.member_name(knowledge, inter.value_set, plural=True), "group_one": one,
            "a_member": wording.group_with_member(one, label)}


def _relation(job: Job, inter: Interaction, indicator: str, reverse: bool = False,
              current: bool = False) -> dict[str, str]:
    relation, todo = wording.interaction_relation(wording.member_name(job.run.knowledge, inter.value_set, True),
                                                  indicator, _effect(inter), _span(inter), job.drug.name, reverse,
                                                  current)
    return {"relation": relation, "todo": todo}


def _is_draft(job: Job, resource: Mapping[str, Any]) -> bool:
    return reference_key(resource) in job.run.draft_keys


@check("interaction", (3, 4), "DRG", "interactions", "drug interactions", needs=(MEDICATIONS,))
def check_interactions(job: Job) -> Iterable[Finding]:
    """#3 DRG warning (a TNF inhibitor current or drafted; monograph SECTION 3 of 4 > TNF inhibitors,
    anti-inflammatory drugs) and #4 DRG critical (a live vaccine among the draft orders; SECTION 3 of 4 >
    Vaccines): one finding per interaction class of the drug, with the severity of the class's rule
    (``config.INTERACTION_RULES``). Suggestions: delete the other draft orders of the class (all of them, one
    suggestion of a delete action each), or this one."""
    out = []
    for inter in job.drug.interactions:
        if job.run.value_set(inter.value_set) is None:
            continue
        rule = interaction_rule(inter.value_set, inter.id)
        conflicts = job.run.others_in(job.order, inter.value_set, medications=rule.current_medications)
        if not conflicts:
            if rule.current_medications and MEDICATIONS in job.context.unavailable:
                group = _group(job, inter, ())
                out.append(job.finding(
                    "warning",
                    *wording.words("interaction.unable", drug=job.drug.name, group=group["group"],
                                   quote=_quote(inter)),
                    section_of(inter.cud), rule.anchor, {"unavailable": [MEDICATIONS], "not_checked": group["group"]},
                    unable=True, rule=rule.rule))
            continue
        other, kind = conflicts[0]
        concepts = job.run.concepts(other)
        drafted = _is_draft(job, other)
        # drafted interactants can be cancelled with this order (all of them together: one left keeps the problem);
        # current therapy is the record's, said in words
        suggestions = []
        # the drafts come first among the conflicts: past the bound, no need to read on
        drafts = list(islice((record for record, record_kind in conflicts if record_kind == "draft"),
                             MAX_ACTIONS_PER_SUGGESTION + 1))
        if drafts:
            suggestions.append(job.delete_all(drafts, wording.member_name(job.run.knowledge, inter.value_set)))
        suggestions.append(job.delete(job.order))
        out.append(job.finding(
            rule.indicator,
            *wording.words("interaction.forward" if drafted else "interaction.current", drug=job.drug.name,
                           other=job.name_of(other), where=wording.where(other, drafted),
                           state="also ordered" if drafted else str(other.get("status") or "current")
                           .replace("-", " "), **_group(job, inter, concepts),
                           **_relation(job, inter, rule.indicator, current=not drafted), quote=_quote(inter)),
            section_of(inter.cud), rule.anchor,
            {"interactant": reference_key(other), "interactant_kind": kind, "value_set": inter.value_set,
             "interaction": f"ClinicalUseDefinition/{inter.id}",
             "others": conflicts.keys(), "others_count": len(conflicts)},
            suggestions, rule=rule.rule))
    return out


# What a duplicate order can be: a medication order or statement (not a procedure or a vaccination).
MEDICATION_RECORDS = frozenset({"MedicationRequest", "MedicationStatement"})


@check("duplicate-therapy", (5,), "DUPTHPY", "summary", "duplicate therapy", needs=(PATIENT, CONDITIONS, MEDICATIONS))
def check_duplicate(job: Job) -> Iterable[Finding]:
    """#5 DUPTHPY warning: another order of the same drug is active/on-hold in the medication list or in
    the draft Bundle (not this order). Monograph SECTION 4 of 4 > Pharmacist's Advice > What to Do If You
    Miss Doses: "Never double up on doses to catch up." Suggestion: delete this draft order."""
    guide = job.weight_based_indication or job.fixed_guideline
    section = guide.section if guide else job.drug.section
    anchor = dosing_anchor(guide.id if guide else None)
    same = job.run.others_of(job.order, job.drug.id, types=MEDICATION_RECORDS)
    if not same:
        if MEDICATIONS in job.context.unavailable:
            return [job.finding(
                "warning",
                *wording.words("duplicate.unable", drug=job.drug.name),
                section, anchor, {"unavailable": [MEDICATIONS]}, unable=True)]
        return []
    other, kind = same[0]
    return [job.finding(
        "warning",
        *wording.words("duplicate.found", drug=job.drug.name, other=job.name_of(other),
                       where=wording.where(other, _is_draft(job, other)),
                       quote=wording.quote(_instruction(guide), section)),
        section, anchor, {"duplicate": reference_key(other), "duplicate_kind": kind,
                          "others": same.keys(), "others_count": len(same)},
        [job.delete(job.order)])]


def _instruction(guide: Guideline | None) -> str:
    """The patient instruction of a guideline's first dosage (how often, never double up)."""
    return next((str(d.dosage["patientInstruction"]) for d in (guide.dosages if guide else ())
                 if d.dosage.get("patientInstruction")), "")


def _current_records(job: Job, drafts: bool = True) -> Others:
    """The current records of the knowledge drug (active/on-hold medications and, with ``drafts``, live drafts)."""
    return job.run.others_of(job.order, job.drug.id, drafts=drafts)


def _past_records(job: Job) -> tuple[list, bool]:
    """The past records of the knowledge drug (stopped/completed medications) but the order's own, and whether
    that is every one of them (the answer for any order)."""
    past = job.drug_records(is_past)
    others = [m for m in past if reference_key(m) != job.order_ref]
    return (past, True) if len(others) == len(past) else (others, False)


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
    current = _current_records(job, drafts=rule.reverse_drafts)
    name = job.name_of(job.order)
    group = _group(job, inter, job.run.concepts(job.order))
    if not current:
        if MEDICATIONS in job.context.unavailable:
            return [job.finding(
                "warning",
                *wording.words("interaction.reverse_unable", drug=job.drug.name, order=name, **group,
                               quote=_quote(inter)),
                section_of(inter.cud), rule.anchor, {"unavailable": [MEDICATIONS]}, unable=True,
                rule=rule.reverse_rule)]
        return []
    record, kind = current[0]
    return [job.finding(
        rule.reverse_indicator,
        *wording.words("interaction.reverse", drug=job.drug.name, order=name, record=job.name_of(record),
                       where=wording.where(record, kind == "draft"), **group,
                       **_relation(job, inter, rule.reverse_indicator, reverse=True), quote=_quote(inter)),
        section_of(inter.cud), rule.anchor,
        {"drug_record": reference_key(record), "drug_record_kind": kind, "value_set": inter.value_set,
         "interaction": f"ClinicalUseDefinition/{inter.id}"},
        [job.delete(job.order)], rule=rule.reverse_rule)]


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
    past, every = _past_records(job)
    if _current_records(job) or not past:
        return []
    name = job.name_of(job.order)
    span = _span(inter)
    washout_days = inter.washout.total_seconds() / 86400
    if every:
        nearest, unknown = job.run.once(("washout", job.drug.id, inter.id), lambda: _washout(job, past, washout_days))
    else:
        nearest, unknown = _washout(job, past, washout_days)
    group = _group(job, inter, job.run.concepts(job.order))
    if nearest:
        med, end, ago = nearest
        last_day = end.day(job.run.now, place="last")
        shown = last_day.isoformat()
        after = (last_day + timedelta(days=math.ceil(washout_days))).isoformat()  # the first day that does not count
        return [job.finding(
            rule.washout_indicator,
            *wording.words("interaction.washout", drug=job.drug.name, order=name, record=job.name_of(med),
                           ended=shown, ago=ago, span=span, days=f"{washout_days:.1f}", after=after, **group,
                           quote=_quote(inter)),
            section_of(inter.cud), rule.anchor,
            {"drug_record": reference_key(med), "ended": shown, "end_as_recorded": end.text, "days_since_end": ago,
             "washout_days": round(washout_days, 4), "washout_rule": "days since the end < washout days",
             "interaction": f"ClinicalUseDefinition/{inter.id}"},
            [job.delete(job.order)], rule=rule.washout_rule)]
    if unknown:
        med = unknown
        return [job.finding(
            "warning",
            *wording.words("interaction.washout_unknown", drug=job.drug.name, order=name, record=job.name_of(med),
                           status=str(med.get("status") or "stopped"), span=span, **group, quote=_quote(inter)),
            section_of(inter.cud), rule.anchor,
            {"drug_record": reference_key(med), "washout_days": round(inter.washout.total_seconds() / 86400, 4),
             "interaction": f"ClinicalUseDefinition/{inter.id}"}, unable=True, rule=rule.washout_rule)]
    return []


def _washout(job: Job, past: list, washout_days: float) -> tuple[tuple | None, Any]:
    """Of the past records: (the one that ended most recently within the washout period, with its end and days
    since, or None; the first whose end is unknown, or None)."""
    within, unknown = [], None
    for med in past:
        end = medication_end_when(med)
        if end is None:
            unknown = unknown or med
            continue
        ago = int(Window(0).age(end, job.run.now, place="last"))  # a partial end: its last day
        if ago < washout_days:
            within.append((med, end, ago))
    return (min(within, key=lambda row: row[2]) if within else None), unknown
