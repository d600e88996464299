"""The monograph as a page people can read: ``/monographs/`` and ``/monographs/<id>``, and each rule's page
``/rules/<rule id>`` (server-rendered HTML)."""

from __future__ import annotations

from flask import Flask

from fhirsvc.monograph.views import blueprint, rules_blueprint

__all__ = ["blueprint", "init_app"]


def init_app(app: Flask) -> None:
    """Serve the monograph pages (templates in ``fhirsvc/monograph/templates/monograph/``)."""
    app.register_blueprint(blueprint)
    app.register_blueprint(rules_blueprint)
