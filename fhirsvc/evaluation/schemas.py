"""The request envelope (CDS Hooks 2.0.1 "Calling a CDS Service"), validated with marshmallow.

Unknown top-level fields are ignored (``extension`` included, as the spec reserves it for vendors); a
bad field gives a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from fhirsvc.evaluation.orders import malformed_entry

if TYPE_CHECKING:
    from fhirsvc.evaluation.services import Service


class FhirAuthorizationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    access_token = fields.String(required=True, validate=validate.Length(min=1))
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer", "bearer"]))
    expires_in = fields.Integer(required=True, strict=True)
    scope = fields.String(required=True)
    subject = fields.String(required=True)
    patient = fields.String()


class PatientViewContextSchema(Schema):
    """patient-view context: the user and the patient (the encounter optional)."""

    class Meta:
        unknown = EXCLUDE

    userId = fields.String(required=True, validate=validate.Length(min=1))
    patientId = fields.String(required=True, validate=validate.Length(min=1))
    encounterId = fields.String()


class OrderContextSchema(PatientViewContextSchema):
    """order-select / order-sign context: the patient-view fields, the selections and draftOrders, a Bundle (type
    optional: real clients omit it)."""

    selections_required = False  # order-select: the orders to judge
    selections = fields.List(fields.String())
    draftOrders = fields.Dict(required=True)

    @validates_schema
    def _draft_orders_is_a_bundle(self, data: dict, **kwargs: Any) -> None:
        orders = data.get("draftOrders") or {}
        if orders.get("resourceType") != "Bundle":
            raise ValidationError("must be a FHIR Bundle", "draftOrders")
        if not isinstance(orders.get("entry", []), list):
            raise ValidationError("entry must be an array", "draftOrders")
        problem = malformed_entry(orders.get("entry", []))
        if problem:  # a draft order that is not a resource is refused, never skipped
            raise ValidationError(problem, "draftOrders")
        if self.selections_required and not data.get("selections"):
            raise ValidationError("required for order-select", "selections")


class OrderSelectContextSchema(OrderContextSchema):
    """order-select context: the order context with at least one selection."""

    selections_required = True


class RequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    hook = fields.String(required=True, validate=validate.Length(min=1))
    hookInstance = fields.String(required=True, validate=validate.Length(min=1))
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema)
    context = fields.Dict(required=True)
    prefetch = fields.Dict()  # JSON object keys are strings; a value may be anything, null included
    extension = fields.Dict()

    @validates_schema
    def _server_with_authorization(self, data: dict, **kwargs: Any) -> None:
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("required when fhirAuthorization is present", "fhirServer")


# Built once: a schema keeps no state between loads, and building one costs as much as a load.
_REQUEST = RequestSchema()
ORDER_CONTEXT, ORDER_SELECT_CONTEXT, PATIENT_VIEW_CONTEXT = (
    OrderContextSchema(), OrderSelectContextSchema(), PatientViewContextSchema())


def validate_request(body: object, services: Iterable[Service]) -> dict:
    """The validated envelope, its context validated by the context schema of the service of its hook (a hook
    no service answers keeps its context as sent); raises ValidationError with field messages."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["the request body must be a JSON object"]})
    data = _REQUEST.load(body)
    service = next((s for s in services if s.hook == data["hook"]), None)
    if service is not None:
        try:
            data["context"] = service.context.load(data["context"])
        except ValidationError as exc:
            raise ValidationError({"context": exc.messages}) from exc
    return data
