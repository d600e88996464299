"""The entry point of the clinical rules: ``run_checks(context, knowledge) -> list[Finding]``.

For each judged draft order (order-select: the selections; order-sign: all), in the order of the draft
Bundle: find the knowledge drugs it is for (forward checks: allergy, interactions, duplicates, dose,
kidney, age, conditions, labs, monitoring, pregnancy, breastfeeding, indication, route) and the knowledge
drugs whose interaction classes it belongs to (reverse checks: a member of the class, such as a vaccine
or another biologic, ordered while the patient takes the knowledge drug). An order that is for nothing
the knowledge knows and interacts with nothing it knows gives no finding; it is logged (type and id
only, no patient data).

A check that raises does not take the others down: the engine logs the exception (its type and where it
was raised, never its message or values) and returns an "Unable to check" finding of that check's topic.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Sequence

# Importing the check modules registers their checks (kept in contract order by the registry).
from fhirsvc.checks import allergy, dosing, interactions, patient_rules, wording  # noqa: F401
from fhirsvc.checks.base import CHECKS, Check, Job, Run
from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.patient import is_live_draft, reference_key
from fhirsvc.knowledge.store import Knowledge

logger = logging.getLogger(__name__)


def jobs_for(run: Run, order) -> tuple[list[Job], list[Job]]:
    """The forward jobs (one per knowledge drug the order is for) and the reverse jobs (one per
    interaction of another knowledge drug whose interactant class the order belongs to)."""
    drugs = sorted(run.drugs_of(order), key=lambda d: d.id)
    forward = [Job(run, order, drug) for drug in drugs]
    reverse = [Job(run, order, found.drug, found.interaction)
               for found in run.index.reverse(run.concepts(order), own={d.id for d in drugs})]
    return forward, reverse


def run_one(check: Check, job: Job) -> list[Finding]:
    """Run one check on one job; a failure becomes an "Unable to check" finding of its topic."""
    try:
        return list(check.function(job))
    except Exception as exc:
        where = "; ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
                          for frame in traceback.extract_tb(exc.__traceback__)[-3:])
        logger.error("check %s failed for %s on a %s order: %s (%s)", check.rule, job.drug.id,
                     job.order.get("resourceType", "?"), type(exc).__name__, where)
        return [job.finding(
            check.rule, check.topic, "warning",
            *wording.words("failed", what=check.title, drug=job.drug.name),
            job.drug.section, check.anchor, {"error": type(exc).__name__}, unable=True)]


def run_checks(context: PatientContext, knowledge: Knowledge, checks: Sequence[Check] | None = None) -> list[Finding]:
    """Every finding about the judged draft orders, in a deterministic order: by the order's position in
    the draft Bundle, then by check (registry order), then as each check reports them."""
    run = Run(context, knowledge)
    registry: Sequence[Check] = CHECKS if checks is None else checks
    findings: list[Finding] = []
    for order in context.judged_orders():
        if not is_live_draft(order):
            continue
        forward, reverse = jobs_for(run, order)
        if not forward and not reverse:
            logger.info("no knowledge for judged order %s: no drug of the knowledge, no interaction",
                        reference_key(order))
            continue
        for chk in registry:
            for job in _jobs(chk, forward, reverse):
                findings.extend(run_one(chk, job))
    return findings


def _jobs(chk: Check, forward: Iterable[Job], reverse: Iterable[Job]) -> Iterable[Job]:
    return reverse if chk.reverse else forward
