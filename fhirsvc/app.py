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
from fhirsvc.knowledge import APP_EXTENSION, get_knowledge, load_knowledge

__all__ = ["create_app", "get_knowledge"]


class _JsonProvider(DefaultJSONProvider):
    """Flask's JSON, with the keys in the order the code builds them."""

    sort_keys = False


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, knowledge (validated; bad knowledge raises KnowledgeError), the database
    (StorageError if it cannot be used), routes."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    app.json = _JsonProvider(app)
    logging.getLogger("fhirsvc").setLevel(app.config["LOG_LEVEL"])
    knowledge = app.extensions[APP_EXTENSION] = load_knowledge(knowledge_dirs(app.config),
                                                               app.config["VALIDATION_CACHE"] or None)
    handlers.init_app(app)
    cors.init_app(app)
    urls.init_app(app)
    app.register_blueprint(health.blueprint)
    fhir.init_app(app, knowledge)
    storage.init_app(app)
    cds_views.init_app(app, knowledge)
    monograph.init_app(app)
    governance.init_app(app)
    bodies.init_app(app)
    return app

