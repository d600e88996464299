"""Relevance first: ask the EHR only for what the judged orders need.

A health system calls order-sign for every order it signs, nearly all of them for drugs the knowledge does
not judge. So before any patient data is read, the draft orders alone decide (``checks.engine.relevance``,
over the knowledge's drug index and interaction value sets) which judged orders matter:

1. ``medicationReference``s are resolved from what the request holds (``evaluation.references``): contained,
   the draft Bundle (by fullUrl or ``Type/id``), the Medications inline in the ``medications`` and ``statements``
   prefetch. The FHIR server is asked for a Medication only when a
   judged order is still unresolved and matters by nothing else.
2. No order matters: no fetch at all and no card, with or without prefetch or ``fhirServer``.
3. Some do: only the data keys their checks declare (``Check.needs``) are read, from prefetch or the FHIR
   server (``prefetch.assemble_context``); 412 only when none of those could be had.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from fhirsvc.checks.context import PatientContext
from fhirsvc.checks.engine import relevance
from fhirsvc.checks.reading.medications import is_live_draft
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.evaluation.environment import Call
from fhirsvc.evaluation.prefetch import assemble_context, fhir_server, medication_fetcher, medication_pools
from fhirsvc.evaluation.references import names_elsewhere, resolve_medications, unresolved

log = logging.getLogger(__name__)


def judged_context(call: Call) -> PatientContext | None:
    """The patient context for the judged orders that matter, or None when none does (nothing fetched).
    PreconditionFailed (412) when none of the data their checks need could be had."""
    server = None  # named only when something is to be fetched
    knowledge = call.env.knowledge
    # the Medications of the request gathered only for an order that names one elsewhere (else: by assemble_context)
    pools = medication_pools(call) if names_elsewhere(call.orders) else None
    referenced = resolve_medications(list(call.orders), pools or ())
    drafts = PatientContext(now=call.now, hook=call.request["hook"], draft_orders=tuple(call.orders),
                            judged_ids=call.judged, referenced_medications=referenced)
    found = relevance(drafts, knowledge)
    mattering = set(found.orders)
    pending = [order for order in unresolved(drafts.judged_orders(), referenced)
               if is_live_draft(order) and reference_key(order) not in mattering]
    if pending:  # still needed: only the FHIR server can tell what these orders are for
        server = fhir_server(call.request, call.env)
        referenced = resolve_medications(pending, pools or (), medication_fetcher(server), known=referenced)
        found = relevance(replace(drafts, referenced_medications=referenced), knowledge)
    if not found.orders:
        log.debug("no judged order is for a drug the knowledge knows or interacts with: nothing fetched, no card")
        return None
    log.debug("judging %d order(s); data keys needed: %s", len(found.orders), ", ".join(sorted(found.keys)))
    return assemble_context(call, keys=found.keys, server=server, referenced=referenced, pools=pools)

