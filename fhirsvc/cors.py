"""CORS on every route but the governance view, errors included, so browser-based EHR apps and sandboxes can call
the service."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Authorization, Content-Type, Accept, Prefer, If-None-Match, If-Modified-Since"
EXPOSED_HEADERS = "ETag, Last-Modified, Location, Content-Location"
# The governance view is for people on this origin (it shows how clinicians act): no other site's script may read it.
PRIVATE_PREFIX = "/governance"


def init_app(app: Flask) -> None:
    """Add CORS headers to every response; preflights (OPTIONS) are answered by Flask's automatic OPTIONS."""
    origins = [o.strip() for o in str(app.config["CORS_ORIGINS"]).split(",") if o.strip()]
    any_origin = "*" in origins

    @app.after_request
    def _cors(response: Response) -> Response:
        if request.path.startswith(PRIVATE_PREFIX):
            return response
        if any_origin:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif (origin := request.environ.get("HTTP_ORIGIN")) in origins:  # request.headers.get("Origin")
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
        else:
            return response
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = response.headers.get("Allow", "GET, POST, OPTIONS")
            response.headers["Access-Control-Allow-Headers"] = (
                request.headers.get("Access-Control-Request-Headers") or ALLOWED_HEADERS)
            response.headers["Access-Control-Max-Age"] = "600"
        return response
