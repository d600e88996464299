"""GET /governance/ (the page), /governance/report.csv (its rule table) and /governance/report.json (the whole
report, for scripts), over ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (default: the last 30 days, UTC) and ``?service=``
(default: every service).

Off unless ``FHIRSVC_GOVERNANCE=on``: the page holds no patient data (the store holds none) but shows how
clinicians act on the cards, so an operator turns it on deliberately, and restricts who reaches it at the reverse
proxy (docs/governance.md). Off, the three routes answer 404.

The page is rendered by Jinja with autoescaping, with its charts inline (``charts.py``); it loads nothing else and
runs no script: the Content-Security-Policy is the monograph pages', except that its one form (period and service,
GET) may submit to this origin. Bad parameters answer 400 with the reason (a page, CSV text or JSON as asked).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from http import HTTPStatus

from flask import Blueprint, Response, current_app, make_response, render_template, request

from fhirsvc.errors import ApiError
from fhirsvc.governance.report import (
    BadParameter,
    Report,
    governance_report,
    percent,
    reasons_text,
    report_document,
    services,
    write_csv,
)
from fhirsvc.governance.review import CONTROL_METHOD, MIN_BASELINE_WEEKS
from fhirsvc.knowledge import get_knowledge, get_site_config
from fhirsvc.pages import HTML_HEADERS
from fhirsvc.storage import get_store

blueprint = Blueprint("governance", __name__, url_prefix="/governance", template_folder="templates")

# The monograph pages' policy; the period form may submit (GET) to this origin, and nothing else changes.
PAGE_HEADERS = {
    **HTML_HEADERS,
    "Content-Security-Policy": HTML_HEADERS["Content-Security-Policy"].replace("form-action 'none'",
                                                                               "form-action 'self'"),
    "Cache-Control": "no-store",  # how clinicians act: not kept by shared caches
}
DATA_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def today() -> date:
    return datetime.now(UTC).date()


def make_report() -> Report:
    """The report for the request's parameters (BadParameter if one cannot be used)."""
    args = request.args
    return governance_report(get_store(), get_knowledge(), current_app.config, args.get("from"), args.get("to"),
                             args.get("service"), today(), get_site_config())


def _page(body: str, status: int = 200) -> Response:
    response = make_response(body, status)
    response.mimetype = "text/html"
    response.headers.update(PAGE_HEADERS)
    return response


def _data(body: str | bytes, mimetype: str, status: int = 200, filename: str | None = None) -> Response:
    response = make_response(body, status)
    response.mimetype = mimetype
    response.headers.update(DATA_HEADERS)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@blueprint.before_request
def _switched_on() -> Response | None:
    if current_app.config["GOVERNANCE"] != "on":
        return _error(HTTPStatus.NOT_FOUND, "The governance view is off on this server (FHIRSVC_GOVERNANCE).")
    return None


def _error(status: HTTPStatus, reason: str) -> Response:
    """The error in the format of the route: JSON for report.json, text for report.csv, else a page."""
    if request.path.endswith(".json"):
        return _data(current_app.json.dumps({"error": status.phrase, "message": reason}), "application/json", status)
    if request.path.endswith(".csv"):
        return _data(f"{status.phrase}: {reason}\n", "text/plain", status)
    args = request.args
    return _page(render_template("governance/error.html", status=status, reason=reason,
                                 services=services(get_knowledge()),
                                 form={"from": args.get("from", ""), "to": args.get("to", ""),
                                       "service": args.get("service", "")}), status)


@blueprint.errorhandler(BadParameter)
def _bad_parameter(exc: BadParameter) -> Response:
    return _error(HTTPStatus.BAD_REQUEST, str(exc))


@blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:  # the database unavailable: 503
    return _error(exc.status, exc.diagnostics)


@blueprint.get("/")
def page() -> Response:
    from fhirsvc.governance.charts import override_chart, trend_chart

    report = make_report()
    query = {"from": report.period.first.isoformat(), "to": report.period.last.isoformat(),
             **({"service": report.service} if report.service else {})}
    return _page(render_template(
        "governance/page.html", report=report, services=services(get_knowledge()), form=query, query=query,
        percent=percent,
        reasons_text=reasons_text, rates_chart=override_chart(report, "chart-rates-title"),
        trend_chart=trend_chart(report, "chart-trend-title"),
        retention_days=int(current_app.config["CARD_RETENTION_DAYS"]),
        control_method=CONTROL_METHOD, min_baseline_weeks=MIN_BASELINE_WEEKS,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")))


@blueprint.get("/report.csv")
def report_csv() -> Response:
    report = make_report()
    buffer = io.StringIO()
    write_csv(report, buffer)
    name = f"governance-{report.service or 'all'}-{report.period.first}-{report.period.last}.csv"
    return _data(buffer.getvalue(), "text/csv", filename=name)


@blueprint.get("/report.json")
def report_json() -> Response:
    report = make_report()
    return _data(current_app.json.dumps(report_document(report)), "application/json")
