"""The headers of every HTML page the service serves (monographs, governance): no script is allowed, no form is
sent (a page that has one widens ``form-action``), the page is never framed, and no referrer leaves it."""

from __future__ import annotations

HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
