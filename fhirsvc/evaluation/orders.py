"""Draft orders as the checks need them: R4 MedicationRequest shape, read leniently.

Real EHRs and the spec's own examples send slightly invalid R4 (tests/conformance/README.md):
``doseAndRate`` as an object, ``doseQuantity`` directly on the dosage (STU3), ``category`` as an
object, a Bundle without ``type``, an order with no medication yet. DSTU2 ``MedicationOrder`` is read
as a MedicationRequest. The incoming JSON is never mutated: every fix works on a copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError

from fhirsvc.errors import ApiError
from fhirsvc.fhirversion import r4b_class

log = logging.getLogger(__name__)

ORDER_TYPES = ("MedicationRequest", "MedicationOrder", "ServiceRequest", "Immunization")

# Most draft orders one call may hold (the draftOrders Bundle, the orders of $check-orders). An admission or
# chemotherapy order set holds tens of orders, the largest a couple of hundred, and a pipeline may check a
# thousand at once; each order is judged against the others and the record, so this bounds the work of one call
# (docs/api.md, "Limits of one request").
MAX_ORDERS = 1_000
# Most resources one Bundle the service reads may hold: draftOrders, each prefetch value (with its pages, also
# when read from fhirServer), the Bundle posted to $check-orders. A long-treated patient's medication list or
# the results of the few laboratory codes the checks read are hundreds of resources, rarely a thousand.
MAX_BUNDLE_RESOURCES = 5_000


def too_many(what: str, noun: str, name: str, limit: int) -> ApiError:
    """The 413 answered when a request holds more than a limit allows, naming the limit."""
    return ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"{what} holds more than {limit} {noun} (the service's limit {name} = {limit})", code="too-costly")


def check_bundle_size(bundle: Any, what: str) -> None:
    """413 when a Bundle holds more than MAX_BUNDLE_RESOURCES entries."""
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    if isinstance(entries, list) and len(entries) > MAX_BUNDLE_RESOURCES:
        raise too_many(what, "resources", "MAX_BUNDLE_RESOURCES", MAX_BUNDLE_RESOURCES)


def malformed_entry(entries: list[Any]) -> str | None:
    """What is wrong with the first entry of a Bundle's ``entry`` array that is not an object, or whose
    ``resource`` is there but is not a FHIR resource (an object with a ``resourceType``), naming it by its index
    (``entry[3].resource must be a FHIR resource, not a JSON string``); None if every entry is readable."""
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            return f"entry[{index}] must be an object, not a JSON {_json_type(entry)}"
        resource = entry.get("resource")
        if "resource" in entry and not (isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str)
                                        and resource["resourceType"]):
            kind = "an object without a resourceType" if isinstance(resource, Mapping) else \
                f"a JSON {_json_type(resource)}"
            return f"entry[{index}].resource must be a FHIR resource, not {kind}"
    return None


def _json_type(value: Any) -> str:
    names = {str: "string", bool: "boolean", int: "number", float: "number", list: "array", dict: "object",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def normalize_dosage(dosage: Mapping[str, Any]) -> dict[str, Any]:
    """One Dosage in R4 shape: ``doseAndRate`` a list, STU3/DSTU2 dose and rate fields moved into it."""
    fixed = dict(dosage)
    dose_and_rate = [dict(d) for d in _as_list(fixed.pop("doseAndRate", None)) if isinstance(d, Mapping)]
    moved = {key: fixed.pop(key) for key in ("doseQuantity", "doseRange", "rateRatio", "rateQuantity", "rateRange")
             if key in fixed}
    if moved:
        dose_and_rate.append(moved)
    if dose_and_rate:
        fixed["doseAndRate"] = dose_and_rate
    timing = fixed.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, Mapping) else None
    if isinstance(repeat, Mapping) and any(key in repeat for key in ("periodUnits", "durationUnits")):
        renamed = {"periodUnits": "periodUnit", "durationUnits": "durationUnit"}  # DSTU2 names
        fixed["timing"] = {**fixed["timing"], "repeat": {renamed.get(k, k): v for k, v in repeat.items()}}
    if "additionalInstruction" in fixed:
        fixed["additionalInstruction"] = _as_list(fixed["additionalInstruction"])
    return fixed


def normalize_order(resource: Mapping[str, Any]) -> dict[str, Any]:
    """One draft order in R4 shape (MedicationOrder becomes MedicationRequest): a new object wherever something is
    changed (the order itself, a list made of a single value, each dosage, its ``doseAndRate`` and ``timing``), the
    parts left as they were shared with the request, which is never changed."""
    order = dict(resource)
    if order.get("resourceType") == "MedicationOrder":
        order["resourceType"] = "MedicationRequest"
        order.setdefault("intent", "order")
        if "patient" in order:
            order["subject"] = order.pop("patient")
        if "dateWritten" in order:
            order["authoredOn"] = order.pop("dateWritten")
        if "reasonCodeableConcept" in order:
            order["reasonCode"] = _as_list(order.pop("reasonCodeableConcept"))
    for key in ("category", "reasonCode", "dosageInstruction", "note", "identifier"):
        if key in order:
            order[key] = _as_list(order[key])
    if "dosageInstruction" in order:
        order["dosageInstruction"] = [normalize_dosage(d) for d in order["dosageInstruction"] if isinstance(d, Mapping)]
    return order


def read_draft_orders(bundle: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(orders, other resources) of the draftOrders Bundle; orders normalised, others (Medication) as sent.
    413 (ApiError) when it holds more than MAX_BUNDLE_RESOURCES resources or MAX_ORDERS orders."""
    check_bundle_size(bundle, "draftOrders")
    orders: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for entry in _as_list(bundle.get("entry")):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            continue
        if resource["resourceType"] in ORDER_TYPES:
            if len(orders) == MAX_ORDERS:
                raise too_many("the request", "draft orders", "MAX_ORDERS", MAX_ORDERS)
            order = normalize_order(resource)
            if not isinstance(order.get("id"), str):  # missing, or not a FHIR id at all
                order["id"] = f"draft-order-{len(orders) + 1}"
            _check_r4(order)
            orders.append(order)
        else:
            others.append(dict(resource))
    return orders, others


def _check_r4(order: Mapping[str, Any]) -> None:
    """Log (never reject) what R4B models still find wrong after normalisation, for the integrator: at DEBUG
    level (``FHIRSVC_LOG_LEVEL=DEBUG``), and validated only then, as a model validation costs more than the
    checks of the order."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    try:
        r4b_class(order["resourceType"]).model_validate(order)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})[:5]
        log.debug("draft %s/%s read leniently despite: %s", order["resourceType"], order.get("id"), ", ".join(fields))


def order_ids(orders: Iterable[Mapping[str, Any]], references: Iterable[str]) -> frozenset[str]:
    """The ids of the orders named by ``Type/id`` references (MedicationOrder/x names MedicationRequest x)."""
    wanted = {ref.rsplit("/", 1)[-1] for ref in references}
    return frozenset(o["id"] for o in orders if o.get("id") in wanted)
