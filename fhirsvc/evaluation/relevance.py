"""Relevance first: ask the EHR only for what the judged orders need.

A health system calls order-sign for every order it signs, nearly all of them for drugs the knowledge does
not judge. So before any patient data is read, the draft orders alone decide (``checks.engine.relevance``,
over the knowledge's drug index and interaction value sets) which judged orders matter:

1. ``medicationReference``s are resolved from what the request holds: contained, the draft Bundle, the
   Medications inline in the ``medications`` prefetch. The FHIR server is asked for a Medication only when a
   judged order is still unresolved and matters by nothing else.
2. No order matters: no fetch at all and no card, with or without prefetch or ``fhirServer``.
3. Some do: only the data keys their checks declare (``Check.needs``) are read, from prefetch or the FHIR
   server (``prefetch.assemble_context``); 412 only when none of those could be had.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from fhirsvc.checks.context import MEDICATIONS, PatientContext
from fhirsvc.checks.engine import relevance
from fhirsvc.checks.reading.medications import is_live_draft
from fhirsvc.checks.reading.resources import reference_key
from fhirsvc.evaluation.environment import Call
from fhirsvc.evaluation.prefetch import assemble_context, fhir_server, resolve_medications

log = logging.getLogger(__name__)


def inline_medications(prefetch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Medication resources the ``medications`` prefetch holds in itself (no page is fetched)."""
    value = prefetch.get(MEDICATIONS)
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Medication":
        return [value]
    entries = value.get("entry") if value.get("resourceType") == "Bundle" else None
    return [entry["resource"] for entry in entries or () if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict) and entry["resource"].get("resourceType") == "Medication"] \
        if isinstance(entries, list) else []


def _unresolved(orders: Iterable[Mapping[str, Any]], referenced: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The orders whose ``medicationReference`` names a Medication outside the request not yet resolved."""
    out = []
    for order in orders:
        medication = order.get("medicationReference")
        reference = medication.get("reference") if isinstance(medication, Mapping) else None
        if isinstance(reference, str) and not reference.startswith("#") and reference not in referenced:
            out.append(order)
    return out


def judged_context(call: Call) -> PatientContext | None:
    """The patient context for the judged orders that matter, or None when none does (nothing fetched).
    PreconditionFailed (412) when none of the data their checks need could be had."""
    server = None  # named only when something is to be fetched
    knowledge = call.env.knowledge
    pool = [*call.others, *inline_medications(call.request.get("prefetch") or {})]
    referenced = resolve_medications(list(call.orders), pool, None)
    drafts = PatientContext(now=call.now, hook=call.request["hook"], draft_orders=tuple(call.orders),
                            judged_ids=call.judged, referenced_medications=referenced)
    found = relevance(drafts, knowledge)
    mattering = set(found.orders)
    pending = [order for order in _unresolved(drafts.judged_orders(), referenced)
               if is_live_draft(order) and reference_key(order) not in mattering]
    if pending:  # still needed: only the FHIR server can tell what these orders are for
        server = fhir_server(call.request, call.env)
        referenced = resolve_medications(pending, pool, server, known=referenced)
        found = relevance(replace(drafts, referenced_medications=referenced), knowledge)
    if not found.orders:
        log.debug("no judged order is for a drug the knowledge knows or interacts with: nothing fetched, no card")
        return None
    log.debug("judging %d order(s); data keys needed: %s", len(found.orders), ", ".join(sorted(found.keys)))
    return assemble_context(call, keys=found.keys, server=server, referenced=referenced)

