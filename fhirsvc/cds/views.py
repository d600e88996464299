"""CDS Hooks routes: discovery, the service call, feedback and feedback statistics.

Errors are FHIR OperationOutcomes sent as ``application/json`` (CDS Hooks 3.0 "Returning OperationOutcome";
``handlers.py``) with the right status: 400 invalid request (an issue per bad field, its path in ``expression``),
401 authentication (no detail), 404 unknown service, 412 no patient data, 413 body too large, 415 not JSON. A call
logs one structured line (hookInstance, service, hook, status, duration, card count) and nothing about the patient.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from http import HTTPStatus
from typing import Any

import orjson
from flask import Blueprint, Flask, current_app
from requests.adapters import HTTPAdapter

from fhirsvc.bodies import json_body
from fhirsvc.cds.auth import AUTHENTICATION, JwtVerifier, authenticate, load_issuers
from fhirsvc.cds.feedback import parse_feedback, reporter
from fhirsvc.checks.index import drug_index
from fhirsvc.errors import ApiError, ConfigError, FhirsvcError
from fhirsvc.evaluation.environment import Environment, FetchSettings
from fhirsvc.evaluation.reasons import family_counts
from fhirsvc.evaluation.rules import catalogue, describe_id
from fhirsvc.evaluation.services import HOOKS, LEGACY_SERVICE_ID, Service, run, services, validated
from fhirsvc.evaluation.urlpolicy import UrlPolicy
from fhirsvc.knowledge import Knowledge, get_knowledge, get_site_config
from fhirsvc.storage import get_store
from fhirsvc.storage.base import JudgedOrder
from fhirsvc.urls import public_base

blueprint = Blueprint("cds", __name__, url_prefix="/cds-services")
STATE = "fhirsvc.cds"
calls_log = logging.getLogger("fhirsvc.cds.calls")
log = logging.getLogger(__name__)
# judged orders are stored under a name-based key (no patient data): the same order judged again is one row
ORDER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fhirsvc.org/cds-services/judged-orders")


class CdsState:
    """What the CDS routes share: the evaluation environment (its fetch settings and HTTP connection pool), the
    service table, the JWT verifier, the feedback store.

    A configuration that cannot be served safely stops start-up with ConfigError: an unreadable trust file,
    an allow-list entry that is not a plain http(s) URL, or authentication required with no
    PUBLIC_BASE_URL (the JWT audience would otherwise come from the caller's own Host header, so a token
    minted for another service could be replayed here)."""

    def __init__(self, app: Flask, knowledge: Knowledge):
        config = app.config
        try:
            self.services = services(knowledge, str(config["PREFETCH_STYLE"]))
        except ValueError as exc:
            raise ConfigError(f"FHIRSVC_{exc}") from None
        drug_index(knowledge)  # built once here, before gunicorn forks the workers, and shared by every call
        self.auth_required = config["AUTH"] != "off"
        self.public_base = str(config["PUBLIC_BASE_URL"]).rstrip("/")
        try:
            issuers = load_issuers(config["JWT_ISSUERS"]) if config["JWT_ISSUERS"] else []
            allowlist = UrlPolicy.from_setting(config["FHIR_SERVER_ALLOWLIST"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.auth_required and not self.public_base:
            raise ConfigError(
                "FHIRSVC_AUTH=required needs FHIRSVC_PUBLIC_BASE_URL (the service's public URL, e.g. "
                "https://cds.example.org): the JWT audience is checked against it, never against the caller's "
                "Host header. Set it, or FHIRSVC_AUTH=off on a trusted local machine only.")
        fetch = FetchSettings(
            allowlist=allowlist,
            connect_timeout=float(config["FETCH_CONNECT_TIMEOUT"]), read_timeout=float(config["FETCH_READ_TIMEOUT"]),
            deadline=float(config["FETCH_DEADLINE"]), max_call_bytes=int(config["FETCH_MAX_CALL_BYTES"]))
        # the public base is the request's when PUBLIC_BASE_URL is not set: each call sets its own (evaluate)
        # one bare HTTPAdapter for everything fetched: the EHR's FHIR server (prefetch) and trusted issuers' JWK Sets
        http = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.env = Environment(knowledge, self.public_base, fetch, http, site=get_site_config(app))
        self.feedback = get_store(app)  # feedback, issued cards and used token ids (fhirsvc.storage)
        # used token ids in the shared database, so that every worker and instance refuses a token replayed to it
        self.verifier = JwtVerifier(issuers, replay_cache=self.feedback, http=http)
        if not self.auth_required:
            log.warning("CDS Hooks authentication is OFF (FHIRSVC_AUTH=off): use only on a trusted local machine")

    def service(self, service_id: str, hook: str | None = None) -> Service:
        """The service that answers ``hook`` at ``service_id`` (the deprecated shared id answers both order hooks);
        404 for an unknown id, 400 for a hook the id does not serve."""
        legacy = service_id == LEGACY_SERVICE_ID
        matching = [s for s in self.services if (s.hook in HOOKS if legacy else s.id == service_id)]
        if not matching:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no CDS service {service_id!r}")
        if hook is None:
            return matching[0]
        for service in matching:
            if service.hook == hook:
                return service
        raise ApiError(HTTPStatus.BAD_REQUEST, f"service {service_id!r} does not serve hook {hook!r}",
                       fields={"hook": [f"must be one of {', '.join(s.hook for s in matching)}"]})


def state() -> CdsState:
    return current_app.extensions[STATE]


@blueprint.get("")
def discovery() -> dict:
    authenticate()
    return {"services": [s.discovery() for s in state().services]}


@blueprint.get("/rules")
def rule_list() -> dict:
    """The rules of the knowledge (``evaluation.rules``): id, number, title, topic, default indicator, source
    section and the services that run each (no patient data)."""
    authenticate()
    return {"rules": catalogue(get_knowledge())}


@blueprint.get("/rules/<rule_id>")
def rule_detail(rule_id: str) -> dict:
    """One rule as the listing gives it, with its HTI-1 source attributes (``sourceAttributes``); 404 for an id the
    knowledge has none of. Its page for people: ``/rules/<rule id>``."""
    authenticate()
    described = describe_id(get_knowledge(), rule_id)
    if described is None:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no rule {rule_id[:100]!r}")
    return described


@blueprint.post("/<service_id>")
def call(service_id: str) -> Any:
    started = time.monotonic()
    outcome: dict[str, Any] = {"service": service_id, "status": HTTPStatus.OK}
    try:
        authenticate()
        state().service(service_id)
        body = json_body()
        if isinstance(body, dict):
            outcome.update({key: str(body.get(key))[:100] for key in ("hookInstance", "hook") if key in body})
        cards = evaluate(service_id, body)
        outcome["cards"] = len(cards)
        return current_app.response_class(orjson.dumps({"cards": cards}), mimetype="application/json")
    except FhirsvcError as exc:
        outcome["status"] = exc.status
        raise
    except Exception:
        outcome["status"] = HTTPStatus.INTERNAL_SERVER_ERROR
        raise
    finally:
        outcome["ms"] = round((time.monotonic() - started) * 1000, 1)
        calls_log.info(orjson.dumps(outcome).decode())


def evaluate(service_id: str, body: Any, now: datetime | None = None) -> list[dict]:
    """Validate the request, assemble the patient context, run the checks, build the cards."""
    cds = state()
    env = replace(cds.env, knowledge=get_knowledge(), public_base=public_base()).at(now)
    request_data = validated(body, env.knowledge, "the request is not a valid CDS Hooks call")  # 400, fields named
    result = run(cds.service(service_id, request_data["hook"]), request_data, env)  # PreconditionFailed: 412
    # a card per finding: each card's drug and rule for the statistics; each judged order of a drug of the knowledge
    # with its number of cards (cards per order)
    patient = str(request_data["context"]["patientId"])
    cds.feedback.remember_cards(
        service_id, result.cards, [finding.drug for finding in result.findings],
        [JudgedOrder(str(uuid.uuid5(ORDER_NAMESPACE, "|".join((patient, order, drug)))), drug, cards)
         for order, drug, cards in result.cards_per_order()], env.site.version)
    return result.cards


@blueprint.post("/<service_id>/feedback")
def feedback(service_id: str) -> dict:
    claims = authenticate()
    state().service(service_id)
    items = parse_feedback(json_body())  # FeedbackInvalid: 400 naming each bad field; 413 beyond the item limit
    stored = state().feedback.record(service_id, items, reporter=reporter(claims))
    return {"received": len(items), "stored": stored}


@blueprint.get("/<service_id>/feedback/stats")
def feedback_stats(service_id: str) -> Mapping[str, Any]:
    """Counts per card topic and outcome, and overrides per reason code and reason family, so that noisy rules can
    be seen (no patient data)."""
    authenticate()
    state().service(service_id)
    stats = state().feedback.stats(service_id)
    for group in [*stats["byRule"], *stats["byTopic"]]:  # ours and HL7's codes in one count per family (reasons)
        group["overrideReasonFamilies"] = family_counts(
            get_knowledge(), {(None, code): count for code, count in group["overrideReasons"].items()})
    return stats


def init_app(app: Flask, knowledge: Knowledge) -> None:
    cds = app.extensions[STATE] = CdsState(app, knowledge)
    app.extensions[AUTHENTICATION] = cds.verifier if cds.auth_required else None
    app.register_blueprint(blueprint)
