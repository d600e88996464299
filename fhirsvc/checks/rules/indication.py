"""Indication (#17): none of the drug's indications is recorded, or the recorded one must follow other therapy
that the medication list does not show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check, lower_first
from fhirsvc.checks.context import CONDITIONS, MEDICATIONS, Resource
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.checks.rules.warning import unable_finding
from fhirsvc.drugmodel.profile import section_of, value_set_of


def indication_text(cud: Resource) -> str:
    concept = ((cud.get("indication") or {}).get("diseaseSymptomProcedure") or {}).get("concept") or {}
    return str(concept.get("text") or cud.get("id")).split(";")[0]


def short_name(text: str) -> str:
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
    recorded = [(cud, vs, job.indication_recorded(vs)) for cud, vs in indications]
    recorded = [(cud, vs, names) for cud, vs, names in recorded if names]
    if not recorded:
        return [_none_recorded(job, indications)]
    prerequisites = [_prerequisite(cud) for cud, _, _ in recorded]
    if any(prior_vs is None for prior_vs, _ in prerequisites):
        return []
    cud, _, found = recorded[0]
    return _before_other_therapy(job, cud, found, prerequisites[0])


def _none_recorded(job: Job, indications: list[tuple[Resource, str]]) -> Finding:
    """#17 when none of the drug's indications is recorded (or the condition list could not be had)."""
    section = section_of(indications[0][0])
    if CONDITIONS in job.context.unavailable:
        return unable_finding(job, "info", "the indication", [CONDITIONS], section, "summary")
    texts = [indication_text(cud) for cud, _ in indications]
    return job.finding(
        "info",
        *wording.words("indication.none", drug=job.drug.name, short=" or ".join(short_name(t) for t in texts),
                       names="; ".join(texts)),
        section, "summary", {"indications": [f"ClinicalUseDefinition/{c.get('id')}" for c, _ in indications]})


def _before_other_therapy(job: Job, cud: Resource, found: list[str], prerequisite: tuple[str | None, str]
                          ) -> list[Finding]:
    """#17 when the recorded indication must follow other therapy (``prerequisite``: its value set and text) and
    the medication list shows none (any record but entered-in-error, other than the order itself)."""
    prior_vs, prior_text = prerequisite
    if job.run.value_set(prior_vs) is None:
        return []
    if MEDICATIONS in job.context.unavailable:
        return [unable_finding(job, "info", "earlier therapy", [MEDICATIONS], section_of(cud), "summary")]
    if any(m.get("status") != "entered-in-error" and reference_key(m) != job.order_ref
           for m in job.run.medications_in(prior_vs)):
        return []
    vs = job.run.knowledge.resolve(prior_vs or "") or {}
    title = str(vs.get("title") or prior_text)
    relation = next((str((o.get("relationshipType") or {}).get("text") or "")
                     for o in (cud.get("indication") or {}).get("otherTherapy") or ()), "")
    return [job.finding(
        "info",
        *wording.words("indication.prior", indication=short_name(indication_text(cud)), drug=job.drug.name,
                       prior=lower_first(title.split(" (")[0]), prior_full=lower_first(title), found=found[0],
                       relation=lower_first(relation or "not first-line therapy")),
        section_of(cud), "summary",
        {"indication": f"ClinicalUseDefinition/{cud.get('id')}", "recorded_as": found, "prior_therapy": prior_vs})]
