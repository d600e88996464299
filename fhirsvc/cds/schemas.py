"""The request envelope (CDS Hooks 2.0.1 "Calling a CDS Service"), validated with marshmallow.

Unknown top-level fields are ignored (``extension`` included, as the spec reserves it for vendors); a
bad field gives a 400 naming it.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema


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

    selections = fields.List(fields.String())
    draftOrders = fields.Dict(required=True)

    @validates_schema
    def _draft_orders_is_a_bundle(self, data: dict, **kwargs) -> None:
        orders = data.get("draftOrders") or {}
        if orders.get("resourceType") != "Bundle":
            raise ValidationError("must be a FHIR Bundle", "draftOrders")
        if not isinstance(orders.get("entry", []), list):
            raise ValidationError("entry must be an array", "draftOrders")


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
    def _server_with_authorization(self, data: dict, **kwargs) -> None:
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("required when fhirAuthorization is present", "fhirServer")


# Built once: a schema keeps no state between loads, and building one costs as much as a load.
_REQUEST, _ORDER_CONTEXT, _PATIENT_VIEW_CONTEXT = RequestSchema(), OrderContextSchema(), PatientViewContextSchema()


def validate_request(body: object) -> dict:
    """The validated envelope with an order-hook or patient-view context; raises ValidationError with field
    messages."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["the request body must be a JSON object"]})
    data = _REQUEST.load(body)
    context_schema = _PATIENT_VIEW_CONTEXT if data["hook"] == "patient-view" else (
        _ORDER_CONTEXT if data["hook"] in ("order-select", "order-sign") else None)
    if context_schema is not None:
        try:
            data["context"] = context_schema.load(data["context"])
        except ValidationError as exc:
            raise ValidationError({"context": exc.messages}) from exc
        if data["hook"] == "order-select" and not data["context"].get("selections"):
            raise ValidationError({"context": {"selections": ["required for order-select"]}})
    return data
