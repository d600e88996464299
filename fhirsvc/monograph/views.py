"""GET /monographs/ (every drug the knowledge holds), GET /monographs/<id> (one drug's page) and GET /rules/<rule id>
(a rule's page: its HTI-1 source attributes, the page the "About this rule" link of every card opens; the same as
``GET /cds-services/rules/<rule id>``, for people, open like the monographs).

Pages are built from the knowledge on each request (a few milliseconds) and rendered by Jinja with
autoescaping; an unknown id answers a 404 page. No script is served, and the Content-Security-Policy
allows none.
"""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template

from fhirsvc.evaluation.rules import describe_id
from fhirsvc.knowledge import get_knowledge
from fhirsvc.monograph.model import build_page, list_drugs
from fhirsvc.pages import HTML_HEADERS

blueprint = Blueprint("monograph", __name__, url_prefix="/monographs", template_folder="templates")
rules_blueprint = Blueprint("rules", __name__, url_prefix="/rules", template_folder="templates")
ATTRIBUTE_LABELS = (("bibliographicCitation", "Bibliographic citation"), ("developer", "Developer"),
                    ("fundingSource", "Funding source"), ("releaseDate", "Release date"),
                    ("revisionDate", "Revision date"), ("dataElementsUsed", "Patient data elements used"))


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


@rules_blueprint.get("/<rule_id>")
def rule_page(rule_id: str) -> Response:
    described = describe_id(get_knowledge(), rule_id)
    if described is None:
        return _html(render_template("monograph/rule_not_found.html", rule_id=rule_id), 404)
    return _html(render_template("monograph/rule.html", rule=described, attributes=described["sourceAttributes"],
                                 labels=ATTRIBUTE_LABELS))
