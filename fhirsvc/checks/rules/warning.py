"""What the patient checks (#10-#17) say of a drug's warning ClinicalUseDefinition, and their "Unable to check"
finding when patient data could not be had.
"""

from __future__ import annotations

from fhirsvc.checks import wording
from fhirsvc.checks.base import Job, lower_first, unavailable_text
from fhirsvc.checks.context import Resource
from fhirsvc.checks.findings import Finding
from fhirsvc.drugmodel.profile import section_of


def _description(cud: Resource | None) -> str:
    return str(((cud or {}).get("warning") or {}).get("description") or "")


def warning_statement(cud: Resource | None, after_colon: bool = False) -> str:
    """The warning's own short statement (``warning.code.text``), first letter lower-cased; with
    ``after_colon`` only what follows its first colon ("Age over ...: higher risk ..." -> "higher risk ...")."""
    text = str((((cud or {}).get("warning") or {}).get("code") or {}).get("text") or "see the monograph warning")
    if after_colon and ": " in text:
        text = text.split(": ", 1)[1]
    return lower_first(text)


def _short_text(cud: Resource | None) -> str:
    """The warning's statement without its bracketed explanation ("Pregnancy (category ...)" -> "pregnancy")."""
    return warning_statement(cud).split(" (")[0]


def warning_words(job: Job, found: str, evidence: str, cud: Resource, todo: str) -> tuple[str, str]:
    """The ``warning.found`` wording: what was found, the drug's warning (its statement), what to do, and the
    monograph quoted."""
    return wording.words("warning.found", found=found, evidence=evidence, drug=job.drug.name,
                         warning=_short_text(cud), warning_full=warning_statement(cud), todo=todo,
                         quote=warning_quote(cud))


def warning_quote(cud: Resource | None) -> str:
    """The warning's monograph sentences worth quoting to a prescriber, with the section."""
    return wording.quote(wording.quote_sentences(_description(cud)), section_of(cud) if cud else "")


def unable_finding(job: Job, indicator: str, what: str, missing: list[str], section: str, anchor: str,
                   advice: str = "", not_checked: str | None = None) -> Finding:
    """The running check's "Unable to check <what>": the patient data ``missing`` could not be had.
    ``not_checked``: what the check checks, in words, when the check's title does not say it."""
    return job.finding(
        indicator,
        *wording.words("unavailable", what=what, drug=job.drug.name, data=unavailable_text(missing), advice=advice),
        section, anchor, {"unavailable": missing, **({"not_checked": not_checked} if not_checked else {})},
        unable=True)
