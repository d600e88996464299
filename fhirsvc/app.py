"""The Flask app factory: configuration, knowledge, error handlers and every face's routes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from fhirsvc import bodies, cors, fhir, governance, handlers, health, monograph, storage, urls
from fhirsvc.cds import views as cds_views
from fhirsvc.config import knowledge_dirs, load_config
from fhirsvc.errors import FhirsvcError
from fhirsvc.knowledge import APP_EXTENSION, SITE_EXTENSION, get_knowledge, load_knowledge
from fhirsvc.knowledge.site import load_site_config
from fhirsvc.storage import StorageError

__all__ = ["create_app", "get_knowledge"]


class _JsonProvider(DefaultJSONProvider):
    """Flask's JSON, with the keys in the order the code builds them."""

    sort_keys = False


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, knowledge (validated; bad knowledge raises KnowledgeError), the site
    configuration (ConfigError naming each mistake), the database (StorageError if it cannot be used), routes."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    app.json = _JsonProvider(app)
    logging.getLogger("fhirsvc").setLevel(app.config["LOG_LEVEL"])
    knowledge = app.extensions[APP_EXTENSION] = load_knowledge(knowledge_dirs(app.config),
                                                               app.config["VALIDATION_CACHE"] or None)
    # the site configuration, validated against the knowledge's rules: a mistake raises ConfigError naming it
    site = app.extensions[SITE_EXTENSION] = load_site_config(app.config["SITE_CONFIG"], knowledge)
    handlers.init_app(app)
    cors.init_app(app)
    urls.init_app(app)
    app.register_blueprint(health.blueprint)
    fhir.init_app(app, knowledge)
    store = storage.init_app(app)
    if site.version is not None:  # its version and first-seen time, for governance (when a rule's settings changed)
        try:
            store.config_seen(site.version, site.document)
        except FhirsvcError as exc:
            raise StorageError(f"the site configuration {site.version!r} could not be recorded: {exc}") from None
    cds_views.init_app(app, knowledge)
    monograph.init_app(app)
    governance.init_app(app)
    bodies.init_app(app)
    return app

