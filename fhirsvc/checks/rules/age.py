"""Age checks: a child below the fixed dose's age (#10) and the seniors' warning (#11).

Each runs for a drug only where its knowledge says so: an age characteristic on its fixed-dose guidelines
(#10), a warning under the monograph's seniors heading (#11). A partial birth date that allows two ages
on either side of the limit says "Unable to check".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check
from fhirsvc.checks.config import CHILDREN_HEADING, SENIORS_HEADING
from fhirsvc.checks.context import CONDITIONS, PATIENT, Resource
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.rules.indication import indication_text, short_name
from fhirsvc.checks.rules.warning import warning_quote, warning_statement
from fhirsvc.drugmodel.profile import Guideline, section_of


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


def _unknown(job: Job, holds: Callable[[int], bool]) -> dict[str, Any] | None:
    """The facts of an age that does not tell whether the limit ``holds``: none recorded, or a partial birth date
    whose two ages give different answers. None when the age decides."""
    why = _no_age(job)
    if why:
        return {"age_unknown": why, **({"unavailable": [PATIENT]} if PATIENT in job.context.unavailable else {})}
    undecided = _undecided_age(job, holds)
    if undecided:
        return {"age_unknown": undecided, "ages": list(job.run.ages or ())}
    return None


def _unable(job: Job, indicator: str, cud: Resource | None, section: str, anchor: str, rule: str,
            unknown: dict[str, Any]) -> Finding:
    """"Unable to check" the age against the warning's limit (``rule`` says which)."""
    return job.finding(indicator,
                       *wording.words("age.unable", drug=job.drug.name, why=unknown["age_unknown"], rule=rule,
                                      quote=warning_quote(cud)),
                       section, anchor, unknown, unable=True)


@check("age", (10,), "AGE", "children", "the age limit", needs=(PATIENT, CONDITIONS))
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

    def adult(years: int) -> bool:
        return any(all(c.holds(years) for c in g.of_kind("age")) for g in aged)

    unknown = _unknown(job, adult)
    if unknown:
        return [_unable(job, "warning", children, section_of(children) or aged[0].section, "children",
                        "Confirm the age before signing: the fixed dose is for adults.", unknown)]
    age = job.run.age
    assert age is not None
    return [] if adult(age) else [_child(job, aged, children, age)]


def _exemptions(job: Job) -> str:
    """The weight-based indications under which a child's dose is set, by their short names ("A or B")."""
    return " or ".join(dict.fromkeys(
        short_name(indication_text(cud)) for g in job.drug.guidelines if g.weight_based and g.indication_id
        for cud in [job.run.knowledge.get("ClinicalUseDefinition", g.indication_id)] if cud))


def _child(job: Job, aged: list[Guideline], children: Resource | None, age: int) -> Finding:
    """#10's finding: the fixed dose's age limit, and what the monograph says of the dose at the patient's age
    (a guideline whose dose is not established for it)."""
    limit = aged[0].of_kind("age")[0]
    exempt = _exemptions(job)
    bound = f"{limit.comparator or ''} {limit.value:g} years" if limit.value is not None else "the adult age range"
    covering = [g for g in job.drug.guidelines if g.not_established and all(c.holds(age) for c in g.of_kind("age"))
                and g.of_kind("age")]
    statement = " ".join(d.dosage.get("text", "") for g in covering[:1] for d in g.dosages).strip()
    born = (job.context.patient or {}).get("birthDate")
    return job.finding(
        "warning",
        *wording.words("age.child", drug=job.drug.name, age=age, bound=bound.strip().replace(">=", "\u2265"),
                       exempt=f" (no {exempt} recorded)" if exempt else "", born=f" (born {born})" if born else "",
                       statement=f"{statement} " if statement else "", quote=warning_quote(children)),
        (covering[0].section if covering else section_of(children)) or aged[0].section, "children",
        {"age_years": age, "birth_date": born,
         "required_age": {"comparator": limit.comparator, "value": limit.value, "unit": "a"},
         **({"guideline": covering[0].id} if covering else {})})


@check("geriatric", (11,), "GEALRT", "seniors", "the seniors' warning", needs=(PATIENT,))
def check_geriatric(job: Job) -> Iterable[Finding]:
    """#11 GEALRT info: the patient's age meets the knowledge's ``seniors-age`` threshold and the drug has a
    seniors warning (infection risk, reduced kidney function). Monograph SECTION 3 of 4 > For Seniors."""
    cud = job.drug.warning_with_heading(SENIORS_HEADING)
    if cud is None:
        return []
    senior = job.threshold("seniors-age")
    unknown = _unknown(job, senior.holds)
    if unknown:
        return [_unable(job, "info", cud, section_of(cud), "seniors",
                        f"The seniors' warning applies from {senior.value}.", unknown)]
    age = job.run.age
    assert age is not None
    if not senior.holds(age):
        return []
    return [job.finding(
        "info",
        *wording.words("age.senior", age=age, risk=warning_statement(cud, after_colon=True),
                       threshold=senior.value, quote=warning_quote(cud)),
        section_of(cud), "seniors", {"age_years": age, "threshold_years": senior.value,
                                     "warning": f"ClinicalUseDefinition/{cud.get('id')}"})]
