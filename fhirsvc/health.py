"""``GET /healthz``: liveness, what knowledge is being served, and whether the database answers."""

from __future__ import annotations

from flask import Blueprint

from fhirsvc.knowledge import get_knowledge, get_site_config
from fhirsvc.storage import get_store

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> dict:
    """200 with the knowledge version and resource counts (a load balancer's and an operator's view), and the
    database's state. A database that does not answer makes the status ``degraded``, still 200: the instance
    answers CDS calls with their cards, and every instance shares the database, so taking this one out of the
    load balancer would not help."""
    knowledge = get_knowledge()
    counts = knowledge.counts()
    database = get_store().health()
    return {
        "status": "ok" if database["status"] == "ok" else "degraded",
        "knowledge": {"version": knowledge.version, "total": sum(counts.values()), "resources": counts},
        "database": database,
        # the site configuration in force (docs/configuration.md): its version, and a digest of its settings
        "siteConfig": {"version": site.version, "digest": site.digest} if (site := get_site_config()).version
        else {"version": None},
    }
