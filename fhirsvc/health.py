"""``GET /healthz``: liveness plus what knowledge is being served."""

from __future__ import annotations

from flask import Blueprint

from fhirsvc.knowledge import get_knowledge

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> dict:
    """200 with the knowledge version and resource counts (a load balancer's and an operator's view)."""
    knowledge = get_knowledge()
    counts = knowledge.counts()
    return {
        "status": "ok",
        "knowledge": {"version": knowledge.version, "total": sum(counts.values()), "resources": counts},
    }
