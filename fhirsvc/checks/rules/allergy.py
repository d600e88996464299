"""Allergy checks: contraindicating allergies (#1) and the latex warning (#2).

Every contraindication ClinicalUseDefinition of the drug whose ``diseaseSymptomProcedure.concept``
stands for a value set (the drug's own products: a previous allergic reaction; a substance the drug is
made with) is matched against the active allergies; the latex warning's value set against allergies and
conditions (latex allergy is often on the problem list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, check
from fhirsvc.checks.config import VS_LATEX_ALLERGY
from fhirsvc.checks.context import ALLERGIES, CONDITIONS
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.conditions import allergy_concepts
from fhirsvc.checks.reading.resources import concept_codes, reference_key
from fhirsvc.checks.rules.warning import warning_quote
from fhirsvc.drugmodel.profile import section_of, value_set_of


@check("allergy-contraindication", (1,), "ALGY", "allergies", "allergies", needs=(ALLERGIES,))
def check_allergy_contraindication(job: Job) -> Iterable[Finding]:
    """#1 ALGY critical: an active allergy (not refuted / entered-in-error) to a substance of one of the
    drug's contraindication value sets (its own products; the proteins it is made from). Monograph
    SECTION 1 of 4 > IMPORTANT INFORMATION (allergy warning) and SECTION 3 of 4 > Allergies. Suggestion:
    delete the draft order."""
    contraindications = [(cud, value_set_of(((cud.get("contraindication") or {}).get("diseaseSymptomProcedure")
                                             or {}).get("concept")))
                         for cud in job.drug.cuds_of_type("contraindication")]
    contraindications = [(cud, vs) for cud, vs in contraindications if vs]
    if not contraindications:
        return []
    if ALLERGIES in job.context.unavailable:
        reasons = [wording.lower_first(wording.impersonal(_concept_text(c)).split("; ")[0])
                   for c, _ in contraindications]
        return [job.finding(
            "warning",
            *wording.words("allergy.unable", drug=job.drug.name, reasons=" or ".join(reasons),
                           quote=""),
            section_of(contraindications[0][0]), "allergies", {"unavailable": [ALLERGIES]}, unable=True)]
    out = []
    for cud, vs in contraindications:
        found = job.run.allergies_in(vs)
        if not found:
            continue
        allergy = found[0]
        out.append(job.finding(
            "critical",
            *wording.words("allergy.contraindicated", drug=job.drug.name, allergen=wording.record_name(allergy),
                           recorded=wording.recorded_on(allergy), order=job.name_of(job.order),
                           reason=wording.lower_first(wording.impersonal(_concept_text(cud))), quote=""),
            section_of(cud, cud.get("contraindication")), "allergies",
            {"allergy": reference_key(allergy), "allergy_code": [c for a in allergy_concepts(allergy)
                                                                 for c in concept_codes(a)],
             "contraindication": f"ClinicalUseDefinition/{cud.get('id')}", "value_set": vs},
            [job.delete(job.order)]))
        break  # one critical allergy card per order is enough
    return out


def _concept_text(cud: Mapping[str, Any]) -> str:
    return str((((cud.get("contraindication") or {}).get("diseaseSymptomProcedure") or {}).get("concept") or {})
               .get("text") or cud.get("id"))


@check("latex-allergy", (2,), "ALGY", "allergies", "latex allergy", needs=(ALLERGIES, CONDITIONS))
def check_latex_allergy(job: Job) -> Iterable[Finding]:
    """#2 ALGY warning: an active allergy (or condition) of latex / natural rubber, when the drug has a
    latex warning (its needle cover). Monograph SECTION 3 of 4 > People with latex allergy."""
    cud = job.drug.warning(VS_LATEX_ALLERGY)
    if cud is None:
        return []
    missing = job.run.unavailable(ALLERGIES)
    records = job.run.allergies_in(VS_LATEX_ALLERGY) or job.run.conditions_in(VS_LATEX_ALLERGY)
    if not records:
        if missing:
            return [job.finding(
                "warning",
                *wording.words("latex.unable", drug=job.drug.name, quote=warning_quote(cud)),
                section_of(cud), "allergies", {"unavailable": missing}, unable=True)]
        return []
    record = records[0]
    return [job.finding(
        "warning",
        *wording.words("latex.found", drug=job.drug.name, what=wording.record_name(record),
                       list="Allergy list" if record.get("resourceType") == "AllergyIntolerance" else "Problem list",
                       recorded=wording.recorded_on(record), quote=warning_quote(cud)),
        section_of(cud), "allergies",
        {"record": reference_key(record), "value_set": VS_LATEX_ALLERGY,
         "warning": f"ClinicalUseDefinition/{cud.get('id')}",
         **({"conditions_unavailable": True} if CONDITIONS in job.context.unavailable else {})})]
