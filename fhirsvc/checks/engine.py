"""The entry point of the clinical rules: ``run_checks(context, knowledge) -> list[Finding]``.

For each judged draft order (order-select: the selections; order-sign: all), in the order of the draft
Bundle: find the knowledge drugs it is for (forward checks: allergy, interactions, duplicates, dose,
kidney, age, conditions, labs, monitoring, pregnancy, breastfeeding, indication, route) and the knowledge
drugs whose interaction classes it belongs to (reverse checks: a member of the class, such as a vaccine
or another biologic, ordered while the patient takes the knowledge drug). An order that is for nothing
the knowledge knows and interacts with nothing it knows gives no finding; it is logged (type and id
only, no patient data).

Which orders matter is decided first, from the draft orders alone (``relevance``): an order matters when
the knowledge knows its drug or one of the knowledge drugs' interaction classes has it as a member. The
CDS layer fetches patient data only for orders that matter, and only the keys their checks declare
(``Check.needs``). An order code that looks like an NDC but matches nothing in the knowledge is logged
(the code, never patient data), so integrators can see what the service did not recognise.

A check that raises does not take the others down: the engine logs the exception (its type and where it
was raised, never its message or values) and returns an "Unable to check" finding of that check's topic.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Importing the check modules registers their checks (kept in contract order by the registry).
from fhirsvc.checks import rules, wording  # noqa: F401
from fhirsvc.checks.base import CHECKS, Check, Job, Run
from fhirsvc.checks.config import interaction_rule
from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.findings import Finding
from fhirsvc.checks.reading.medications import is_live_draft
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.drugmodel.profile import DrugProfile
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.ndc import NDC, parse
from fhirsvc.terminology import codings

logger = logging.getLogger(__name__)


def jobs_for(run: Run, order: Mapping[str, Any]) -> tuple[list[Job], list[Job]]:
    """The forward jobs (one per knowledge drug the order is for) and the reverse jobs (one per
    interaction of another knowledge drug whose interactant class the order belongs to)."""
    named = run.named(order)
    drugs = sorted(named.drugs, key=lambda d: d.id)
    forward = [Job(run, order, drug) for drug in drugs]
    reverse = [Job(run, order, found.drug, found.interaction)
               for found in run.index.reverse(named.concepts, {d.id for d in drugs}, named.keys)]
    return forward, reverse


@dataclass(frozen=True)
class Relevance:
    """What a call must judge: the judged orders that matter (``Type/id``) and the patient data keys their
    checks need (``Check.needs``). No orders: nothing to fetch, no card."""

    orders: tuple[str, ...] = ()
    keys: frozenset[str] = frozenset()


def relevance(context: PatientContext, knowledge: Knowledge, checks: Sequence[Check] | None = None) -> Relevance:
    """Which judged live draft orders matter, from the orders alone (``context`` needs only the draft orders,
    the judged ids and the referenced medications resolved so far), and the keys the checks that will run
    on them need: the forward checks' for an order of a knowledge drug, the reverse checks' for a member of
    one of the drugs' interaction classes."""
    run = Run(context, knowledge)
    registry: Sequence[Check] = CHECKS if checks is None else checks
    orders: list[str] = []
    keys: set[str] = set()
    for order in context.judged_orders():
        if not is_live_draft(order):
            continue
        forward, reverse = jobs_for(run, order)
        log_unmatched_ndcs(run.concepts(order), knowledge, order.get("resourceType"))
        if not forward and not reverse:
            continue
        orders.append(reference_key(order))
        keys.update(key for chk in registry if (reverse if chk.reverse else forward) for key in chk.needs)
    return Relevance(tuple(orders), frozenset(keys))


def log_unmatched_ndcs(concepts: Iterable[Mapping[str, Any]], knowledge: Knowledge, what: Any = "order") -> None:
    """Log each code of an order that looks like an NDC (the NDC system, or no system and a hyphenated NDC
    form) and matches no NDC of the knowledge: its form and why. Codes only, no patient data."""
    for concept in concepts:
        for coding in codings(concept):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(code, str) or not (system == NDC or (not system and "-" in code and parse(code))):
                continue
            found = knowledge.ndc.lookup(code)
            if system == NDC and any(key in knowledge.by_code for key in found.keys):
                continue
            why = {"not-ndc": "not an NDC in any form", "ambiguous": "10 digits without hyphens, and more than one "
                   "of its three readings is a known NDC", "unknown": "10 digits without hyphens, none of its "
                   "three readings is a known NDC"}.get(found.status, "no NDC of the knowledge")
            if not system:
                why = "no system given: codes are matched with their system only"
            form = found.ndc.form if found.ndc else "-"
            logger.info("unrecognised NDC %r (form %s) in a %s order: %s", code[:40], form, str(what)[:40], why)


def run_one(check: Check, job: Job) -> list[Finding]:
    """Run one check on one job; a failure becomes an "Unable to check" finding of its topic."""
    job.check = check
    try:
        return list(check.function(job))
    except Exception as exc:
        where = "; ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
                          for frame in traceback.extract_tb(exc.__traceback__)[-3:])
        logger.error("check %s failed for %s on a %s order: %s (%s)", check.rule, job.drug.id,
                     job.order.get("resourceType", "?"), type(exc).__name__, where)
        return [job.finding(
            "warning",
            *wording.words("failed", what=check.title, drug=job.drug.name),
            job.drug.section, check.anchor, {"error": type(exc).__name__}, unable=True)]


def drug_orders(run: Run) -> list[tuple[str, str]]:
    """The judged live draft orders of the ``run``'s call that are for a drug of the knowledge, as (order id, drug
    id): the orders whose cards are counted per order (cards per order, governance). Given the Run the checks ran
    in, each order's drugs are those they recognised, not recognised again."""
    return [(str(order.get("id")), drug.id) for order in run.context.judged_orders() if is_live_draft(order)
            for drug in sorted(run.drugs_of(order), key=lambda d: d.id)]


def run_checks(context: PatientContext, knowledge: Knowledge, checks: Sequence[Check] | None = None,
               site: SiteConfig = NO_SITE_CONFIG) -> list[Finding]:
    """Every finding about the judged draft orders, in a deterministic order: by the order's position in
    the draft Bundle, then by check (registry order), then as each check reports them. ``site``: the site
    configuration, whose adjustable values the checks read."""
    return findings_of(Run(context, knowledge, site), checks)


def findings_of(run: Run, checks: Sequence[Check] | None = None) -> list[Finding]:
    """``run_checks`` in a Run made by the caller (who reads more of the call from it: ``drug_orders``)."""
    registry: Sequence[Check] = CHECKS if checks is None else checks
    findings: list[Finding] = []
    for order in run.context.judged_orders():
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


# The checks that report under their interaction class's rules (``config.InteractionRule``), not their own.
INTERACTION_CHECKS = frozenset({"interaction", "interaction-reverse", "interaction-washout"})


def rule_keys(drug: DrugProfile, checks: Sequence[Check] | None = None) -> set[str]:
    """The rule keys (``knowledge.rules.Rule.key``) the order checks can give a finding of ``drug``: each check's
    own, and for the interaction checks the rules of the drug's interaction classes (a wash-out rule only for a
    class with a wash-out period)."""
    registry: Sequence[Check] = CHECKS if checks is None else checks
    keys = {chk.key for chk in registry if chk.rule not in INTERACTION_CHECKS}
    for inter in drug.interactions:
        found = interaction_rule(inter.value_set, inter.id)
        keys |= {found.rule, found.reverse_rule} | ({found.washout_rule} if inter.washout is not None else set())
    return keys

