"""``POST [base]/$check-orders``: the order checks as a FHIR operation (``OperationDefinition/check-orders``).

Input: a Bundle (``collection`` or ``transaction``) of the orders and the patient's record, or Parameters with
that Bundle as ``orders`` and optional ``now`` (dateTime), ``unavailable`` (code, repeated: a part of the record
the caller could not read) and ``selection`` (string, repeated: ``Type/id`` of the orders to judge, the other
drafts being context, as in order-select). The Bundle becomes the same request ``fhirsvc check`` makes of it
(``evaluation.bundles``) and goes through the service table and the one pipeline of the CDS routes
(``evaluation.services``); nothing is fetched.

Output: a ``searchset`` Bundle with one DetectedIssue per finding, in the base's FHIR version
(``evaluation.bundles.answer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fhirsvc.bodies import json_body
from fhirsvc.checks.context import DATA_KEYS
from fhirsvc.checks.reading.windows import parse_datetime
from fhirsvc.errors import ApiError
from fhirsvc.evaluation.bundles import answer, check_entries, orders_request, searchset
from fhirsvc.evaluation.environment import Environment
from fhirsvc.evaluation.orders import ORDER_TYPES, check_bundle_size
from fhirsvc.evaluation.prefetch import PreconditionFailed
from fhirsvc.evaluation.services import evaluate
from fhirsvc.knowledge import get_knowledge, get_site_config
from fhirsvc.urls import public_base

if TYPE_CHECKING:
    from fhirsvc.fhir.operations import Call

BUNDLE_TYPES = ("collection", "transaction")
PARAMETERS = ("orders", "now", "unavailable", "selection")


def read_input(body: Any) -> tuple[dict[str, Any], datetime | None, list[str], list[str]]:
    """(Bundle, now, unavailable keys, selections) of the posted body; 400 naming what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") not in ("Bundle", "Parameters"):
        what = body.get("resourceType") if isinstance(body, dict) else None
        raise ApiError(HTTPStatus.BAD_REQUEST, "post a Bundle (collection or transaction) of MedicationRequests and "
                       "the patient's record, or Parameters with that Bundle as orders"
                       + (f", not a {what}" if isinstance(what, str) else ""))
    now, unavailable, selections = None, [], []
    bundle: Any = body
    if body["resourceType"] == "Parameters":
        items = body.get("parameter")
        if not isinstance(items, list) or not all(isinstance(p, dict) for p in items):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Parameters.parameter must be an array of objects")
        bundle = None
        for item in items:
            name = item.get("name")
            if name not in PARAMETERS:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown parameter {name!r}: $check-orders takes "
                               f"{', '.join(PARAMETERS)}")
            if name == "orders":
                bundle = item.get("resource")
            elif name == "now":
                now = _now(item.get("valueDateTime"))
            elif name == "unavailable":
                code = item.get("valueCode")
                if code not in DATA_KEYS:
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"unavailable must be a code among {', '.join(DATA_KEYS)}, "
                                   f"not {code!r}")
                unavailable.append(code)
            else:
                value = item.get("valueString")
                if not isinstance(value, str) or "/" not in value:
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"selection must be a valueString Type/id, not {value!r}")
                selections.append(value)
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise ApiError(HTTPStatus.BAD_REQUEST, "the orders parameter must hold a Bundle resource")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"Bundle.type must be collection or transaction, not "
                       f"{bundle.get('type')!r}")
    check_entries(bundle)  # every entry an object, every resource a FHIR resource: else 400 naming the entry
    check_bundle_size(bundle, "the Bundle")  # its orders are counted once they are told apart (evaluation.orders)
    return bundle, now, unavailable, selections


def _now(value: Any) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) and len(value) >= 10 else None
    if parsed is None:
        raise ApiError(HTTPStatus.BAD_REQUEST,
                       f"now must be a valueDateTime (e.g. 2026-11-24T12:00:00Z), not {value!r}")
    return parsed


def has_orders(bundle: Mapping[str, Any]) -> bool:
    return any(isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") in ORDER_TYPES[:2]
               for e in bundle.get("entry", []))


def check_orders(body: Any, env: Environment, version: str, base_url: str) -> dict[str, Any]:
    """The answer of ``$check-orders`` (a searchset Bundle) for a posted body; ApiError for bad input."""
    bundle, now, unavailable, selections = read_input(body)
    env = env.at(now)
    if not has_orders(bundle):
        return searchset(base_url, env.clock(), [], outcome="the Bundle holds no MedicationRequest: nothing to check")
    try:
        result = evaluate(orders_request(bundle, version, unavailable, selections), env, "the Bundle")
    except PreconditionFailed as exc:
        raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"nothing about the patient can be read: {exc}") from None
    return answer(result, version, base_url, bundle)


def check_orders_call(call: Call) -> dict[str, Any]:
    """``POST [base]/$check-orders`` on the posted body, offline (nothing is fetched)."""
    env = Environment.offline(get_knowledge(), public_base(), site=get_site_config())  # the site configuration too
    return check_orders(json_body("application/fhir+json"), env, call.base.name, call.url)
