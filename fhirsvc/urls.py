"""The service's public URL: the one source of every absolute URL the service writes.

With ``FHIRSVC_PUBLIC_BASE_URL`` set, every absolute URL comes from it: the card links and the monograph
pages they point to, the CDS JWT audience, the FHIR bases' URLs (search ``self``/``next``/``previous``
links, ``fullUrl``s, the CapabilityStatement's ``url`` and ``implementation.url``, ``$check-orders``'
``self`` link) and the ``Location`` of a redirect (``/monographs`` -> ``/monographs/``). The caller's
``Host`` header then changes none of them. Without it, they come from the request's scheme and host, as
Flask's ``request.host_url`` says (fine on a trusted local machine, where ``make run`` serves).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, request
from werkzeug.sansio.utils import get_current_url


def public_base() -> str:
    """The service's public URL without a trailing slash: PUBLIC_BASE_URL, else this request's scheme and host."""
    return configured_base() or _host_base(request.scheme, request.host)


def configured_base() -> str:
    """PUBLIC_BASE_URL without a trailing slash; empty when it is not set."""
    return str(current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")


@lru_cache(maxsize=64)
def _host_base(scheme: str, host: str) -> str:
    return get_current_url(scheme, host).rstrip("/")


def init_app(app: Flask) -> None:
    """Redirects (Werkzeug's, e.g. a missing trailing slash) name the public URL, not the caller's Host."""

    @app.after_request
    def _public_location(response: Response) -> Response:
        base = configured_base()
        location = base and response.headers.get("Location")  # no base set (the default): nothing to rewrite
        if not location:
            return response
        target = urlsplit(location)
        own = urlsplit(_host_base(request.scheme, request.host))
        if target.scheme and (target.scheme, target.netloc) == (own.scheme, own.netloc):  # built from the Host
            response.headers["Location"] = base + urlunsplit(("", "", target.path, target.query, target.fragment))
        return response
