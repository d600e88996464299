"""Pregnancy (#15) and breastfeeding (#16): recorded as an active condition, or as the newest status
observation (its answer matched by code), when the drug has a warning pointing to that value set.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check
from fhirsvc.checks.config import (
    PREGNANCY_STATUSES,
    VS_BREASTFEEDING,
    VS_BREASTFEEDING_STATUS,
    VS_PREGNANCY,
    VS_PREGNANCY_STATUS,
    VS_PREGNANCY_STATUS_PREGNANT,
)
from fhirsvc.checks.context import CONDITIONS, OBSERVATIONS
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.observations import (
    Measurement,
    newest_coded,
)
from fhirsvc.checks.reading.resources import has_code_in, reference_key
from fhirsvc.checks.reading.windows import Window, day
from fhirsvc.checks.rules.warning import unable_finding, warning_quote, warning_words
from fhirsvc.drugmodel.profile import section_of
from fhirsvc.fhirtypes import concept_text


def _newest_status(job: Job, code_vs: str, max_age: Window | None) -> Measurement | None:
    """The newest readable status observation of the value set (``patient.newest_coded``), or None without
    the value set."""
    matcher = job.run.value_set(code_vs)
    return None if matcher is None else newest_coded(job.run.observations, matcher, job.run.now, max_age)


Evidence = tuple[str, str, str]  # what was recorded, ", <date>" or "", where it was found


def _on_problem_list(job: Job, value_set: str) -> tuple[Evidence | None, dict[str, str | None]]:
    """The first active condition of the value set, as evidence and facts (None and {} without one)."""
    found = job.run.conditions_in(value_set)
    if not found:
        return None, {}
    return ((wording.record_name(found[0]), wording.recorded_on(found[0]), "Problem list"),
            {"condition": reference_key(found[0])})


@check("pregnancy", (15,), "PREG", "pregnancy", "pregnancy", needs=(CONDITIONS, OBSERVATIONS))
def check_pregnancy(job: Job) -> Iterable[Finding]:
    """#15 PREG warning: an active pregnancy condition, or the newest pregnancy status observation (its
    code in the knowledge's pregnancy-status value set) answers pregnant (matched by code: "Not pregnant"
    contains the name "pregnant"). Monograph SECTION 3 of 4 > Pregnant women."""
    cud = job.drug.warning(VS_PREGNANCY)
    if cud is None:
        return []
    section, max_age = section_of(cud), job.threshold_window(PREGNANCY_STATUSES)
    evidence, facts = _on_problem_list(job, VS_PREGNANCY)
    if evidence is None:
        status = _newest_status(job, VS_PREGNANCY_STATUS, max_age)
        pregnant = job.run.value_set(VS_PREGNANCY_STATUS_PREGNANT)
        answer = status.observation.get("valueCodeableConcept") if status and status.observation else None
        if status is not None and status.found and pregnant is not None and has_code_in(pregnant, answer):
            evidence = (concept_text(answer), f", {day(status.when)}", "Pregnancy status")
            facts = {"observation": reference_key(status.observation or {}), "date": day(status.when),
                     "value": concept_text(answer)}
    if evidence is None:
        missing = job.run.unavailable(CONDITIONS, OBSERVATIONS)
        if missing:
            return [unable_finding(job, "warning", "pregnancy", missing, section, "pregnancy")]
        reading = status.reading if status is not None and status.status == "unreadable" else None
        if status is not None and reading is not None and max_age.contains(reading.when, job.run.now):
            label = "pregnancy status"
            return [job.finding(
                "warning",
                *wording.words("warning.unable", what="pregnancy", drug=job.drug.name, problem=status.brief(label),
                               reason=f"No pregnancy is recorded, and {status.problem(label)}.",
                               todo="Confirm the pregnancy status (a coded answer, status final) before signing.",
                               quote=warning_quote(cud)),
                section, "pregnancy", status.facts("pregnancy_status"), unable=True)]
        return []
    what, when, where = evidence
    return [job.finding(
        "warning",
        *warning_words(job, f"Pregnancy recorded ({what}{when})",
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
    evidence, facts = _on_problem_list(job, VS_BREASTFEEDING)
    if evidence is None:
        status = _newest_status(job, VS_BREASTFEEDING_STATUS, None)
        answers = job.run.value_set(VS_BREASTFEEDING)
        obs = status.observation if status is not None and status.found else None
        if status is not None and obs is not None and answers is not None and (
                obs.get("valueBoolean") is True or has_code_in(answers, obs.get("valueCodeableConcept"))):
            evidence = (concept_text(obs.get("valueCodeableConcept")) or "breastfeeding", f", {day(status.when)}",
                        "Breastfeeding status")
            facts = {"observation": reference_key(obs), "date": day(status.when)}
    if evidence is None:
        missing = job.run.unavailable(CONDITIONS, OBSERVATIONS)
        return [unable_finding(job, "info", "breastfeeding", missing, section, "breastfeeding")] if missing else []
    return [job.finding(
        "info",
        *warning_words(job, f"Breastfeeding recorded ({evidence[0]}{evidence[1]})",
                  wording.markdown("{where}: **{what}**{when}.", where=evidence[2], what=evidence[0],
                                   when=evidence[1]), cud,
                  wording.ADVICE["breastfeeding"]),
        section, "breastfeeding", {**facts, "warning": f"ClinicalUseDefinition/{cud.get('id')}"})]
