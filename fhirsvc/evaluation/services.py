"""The service declarations: one table drives discovery and routing (CDS Hooks 2.0.1 "Discovery").

Each hook has a service of its own id (``medication-safety-order-select``, ``medication-safety-order-sign``,
``medication-safety-patient-view``): ids are unique in discovery, as clients such as the CDS Hooks sandbox key the
services they discover by id (docs/cds-checks.md, "Service contract"). The earlier id ``medication-safety``, which
served both order hooks, still answers both for existing callers (deprecated, not listed in discovery); the call
is then routed by the body's ``hook``. ``patient-view`` gives monitoring reminders for patients already on
therapy. Each declaration names the pipeline that answers it (``evaluation.pipeline``) and the schema of its
context (``evaluation.schemas``); a hook is dispatched through this table alone (``validate_request``, ``run``).
Prefetch keys are the service contract's; the observation codes come from the knowledge's LOINC value sets. The
templates are of the CDS Hooks 2.0.1 kind, or with ``PREFETCH_STYLE=3.0`` the observations of the last 400 days
only, in the 3.0.0 ballot's FHIRPath tokens (``evaluation.tokens``). Each service advertises the CDS Hooks version
it implements (the 3.0.0 ballot's discovery ``version``: ``STU2``, or ``STU3`` with the 3.0 templates, which only a
3.0 client fills).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from marshmallow import Schema, ValidationError

from fhirsvc.errors import ApiError
from fhirsvc.evaluation.callconfig import options_extension, parse_call_configuration
from fhirsvc.evaluation.environment import Environment
from fhirsvc.evaluation.pipeline import Evaluation, evaluate_orders, evaluate_patient_view
from fhirsvc.evaluation.schemas import ORDER_CONTEXT, ORDER_SELECT_CONTEXT, PATIENT_VIEW_CONTEXT, validate_request
from fhirsvc.evaluation.tokens import check_style, observation_value_sets, observations_template
from fhirsvc.knowledge import Knowledge
from fhirsvc.terminology import LOINC

HOOKS = ("order-select", "order-sign")
PATIENT_VIEW = "patient-view"
LEGACY_SERVICE_ID = "medication-safety"  # deprecated: one id for both order hooks; not in discovery
# the discovery ``version`` (3.0.0 ballot, "Discovery" > "Response": STU1 | STU2 | STU3) of each prefetch style
CDS_HOOKS_VERSION = {"2.0": "STU2", "3.0": "STU3"}


def service_id(hook: str) -> str:
    """The id of the service for ``hook``."""
    return f"medication-safety-{hook}"


PATIENT_VIEW_ID = service_id(PATIENT_VIEW)


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    usage_requirements: str
    version: str = CDS_HOOKS_VERSION["2.0"]
    context: Schema = field(default=ORDER_CONTEXT, compare=False)  # the schema of the request's context
    handler: Callable[[Mapping[str, Any], Mapping[str, str], Environment], Evaluation] = field(
        default=evaluate_orders, compare=False)  # the pipeline that answers a call

    def discovery(self) -> dict:
        return {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description,
                "prefetch": self.prefetch, "usageRequirements": self.usage_requirements, "version": self.version,
                "extension": options_extension()}


def observation_codes(knowledge: Knowledge) -> list[str]:
    """The LOINC observation codes the rules read (value-set members; LOINC answer codes LA... excluded)."""
    return sorted(set().union(*observation_value_sets(knowledge).values()))


def declare_services(knowledge: Knowledge, style: str = "2.0") -> tuple[Service, ...]:
    """The services this knowledge supports, one per hook, each with its own id, with the prefetch templates of
    ``style`` (``evaluation.tokens``)."""
    loinc = ",".join(f"{LOINC}|{code}" for code in observation_codes(knowledge))
    version = CDS_HOOKS_VERSION[check_style(style)]
    prefetch = {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}",
        "medications": "MedicationRequest?patient={{context.patientId}}",
        # optional: what the patient reports or another organisation prescribed (the medication list's other half)
        "statements": "MedicationStatement?patient={{context.patientId}}",
        "observations": observations_template(loinc, style),
    }
    drugs = ", ".join(sorted(mk["name"][0] for mk in knowledge.of_type("MedicationKnowledge") if mk.get("name")))
    usage = ("Works best with the prefetch data; without it the service reads the same data from fhirServer "
             "(allow-listed servers only). Checks whose data cannot be had say 'Unable to check'.")
    orders = tuple(Service(
        service_id(hook), hook, "Medication safety checks from drug monographs",
        f"Checks {'the selected' if hook == 'order-select' else 'all draft'} medication orders against the "
        f"monograph knowledge ({drugs}): allergies, interactions, live vaccines, duplicates, dose limits, "
        "kidney function, age, infections, neutrophils, monitoring, pregnancy, breastfeeding, route.",
        prefetch, usage, version, ORDER_SELECT_CONTEXT if hook == "order-select" else ORDER_CONTEXT) for hook in HOOKS)
    view = Service(
        PATIENT_VIEW_ID, PATIENT_VIEW, "Monitoring reminders for patients on therapy",
        f"For a patient with a current order of a drug of the monograph knowledge ({drugs}): what its monitoring "
        "plan says is due (blood counts overdue, kidney function never measured), an active infection or fever "
        "while on therapy, a live vaccine due or ordered. Nothing for patients on none of these drugs.",
        {key: prefetch[key] for key in ("patient", "conditions", "medications", "statements", "observations")},
        "Works best with the prefetch data; without it the service reads the same data from fhirServer "
        "(allow-listed servers only). Without the medication list, nothing is said.", version, PATIENT_VIEW_CONTEXT,
        evaluate_patient_view)
    return (*orders, view)


def services(knowledge: Knowledge, style: str = "2.0") -> tuple[Service, ...]:
    """The services of ``knowledge`` with the prefetch templates of ``style``, declared on first use and kept with
    it."""
    return knowledge.derived(f"evaluation.services.{style}", lambda known: declare_services(known, style))


def validated(body: Any, knowledge: Knowledge, message: str | None = None) -> dict:
    """The request ``body`` validated (``schemas.validate_request``, and its per-call configuration,
    ``callconfig``); else 400 (ApiError) with the message of each bad field, and ``message`` (default: those
    messages on one line)."""
    try:
        data = validate_request(body, services(knowledge))
    except ValidationError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, message or f"not a valid CDS Hooks request: {one_line(exc.messages)}",
                       fields=exc.normalized_messages()) from None
    parse_call_configuration(data.get("extension"))  # a bad per-call configuration: 400 before anything is read
    return data


def run(service: Service, data: Mapping[str, Any], env: Environment, what: str = "the request") -> Evaluation:
    """The evaluation of the validated request ``data`` by ``service``'s pipeline. Errors as every face answers
    them: PreconditionFailed (412) when nothing about the patient could be had, 413 (ApiError) beyond a limit,
    400 (ApiError) when ``what``'s resources have a structure the checks cannot read."""
    try:
        return service.handler(data, service.prefetch, env)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST,
                       f"{what}'s resources have an unexpected structure ({type(exc).__name__})") from None


def evaluate(body: Any, env: Environment, what: str = "the request") -> Evaluation:
    """A document evaluated as the CDS service would answer it (``fhirsvc check``, ``$check-orders``): validated,
    then run by the service of its hook; a hook no service answers is refused (400)."""
    data = validated(body, env.knowledge)
    service = next((s for s in services(env.knowledge) if s.hook == data["hook"]), None)
    if service is None:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"hook {data['hook']!r} is not checked here (only "
                       f"{', '.join(dict.fromkeys(s.hook for s in services(env.knowledge)))})")
    return run(service, data, env, what)


def one_line(messages: Any, prefix: str = "") -> str:
    """marshmallow's field messages on one line: ``context.draftOrders: must be a FHIR Bundle``."""
    if isinstance(messages, Mapping):
        return "; ".join(one_line(v, f"{prefix}{k}." if not str(k).startswith("_") else prefix)
                         for k, v in messages.items())
    if isinstance(messages, list):
        return ", ".join(one_line(m, prefix) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages)
