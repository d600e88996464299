"""GET /monographs/ (every drug the knowledge holds) and GET /monographs/<id> (one drug's page).

Pages are built from the knowledge on each request (a few milliseconds) and rendered by Jinja with
autoescaping; an unknown id answers a 404 page. No script is served, and the Content-Security-Policy
allows none.
"""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template

from fhirsvc.knowledge import get_knowledge
from fhirsvc.monograph.model import build_page, list_drugs
from fhirsvc.pages import HTML_HEADERS

blueprint = Blueprint("monograph", __name__, url_prefix="/monographs", template_folder="templates")


def _html(body: str, status: int = 200) -> Response:
    response = make_response(body, status)
    response.mimetype = "text/html"
    response.headers.update(HTML_HEADERS)
    return response


@blueprint.get("/")
def index() -> Response:
    knowledge = get_knowledge()
    return _html(render_template("monograph/index.html", drugs=list_drugs(knowledge), version=knowledge.version))


@blueprint.get("/<path:rid>")
def page(rid: str) -> Response:
    knowledge = get_knowledge()
    monograph = build_page(knowledge, rid)
    if monograph is None:
        return _html(render_template("monograph/not_found.html", rid=rid, drugs=list_drugs(knowledge)), 404)
    return _html(render_template("monograph/page.html", page=monograph))
