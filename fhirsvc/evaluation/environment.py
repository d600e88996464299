"""What an evaluation reads besides the request: one ``Environment``, and the ``Call`` it makes of one request.

The environment holds the knowledge, how (and whether) the EHR's FHIR server is read (``FetchSettings`` and the
HTTP connection pool), the service's public URL (the card links), the clock and the site configuration.
Each face builds it once: the CDS routes from the app's configuration (``cds/views.py``), the faces that fetch
nothing (``fhirsvc check``, ``$check-orders``) with ``Environment.offline``, whose empty allow-list admits no
server, so a prefetch key that is missing counts as unavailable ("Unable to check").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from requests.adapters import HTTPAdapter

from fhirsvc.evaluation.urlpolicy import UrlPolicy
from fhirsvc.knowledge.site import NO_SITE_CONFIG, SiteConfig
from fhirsvc.knowledge.store import Knowledge

DEFAULT_PUBLIC_BASE = "http://127.0.0.1:8080"  # where `make run` serves the monograph pages


@dataclass(frozen=True)
class FetchSettings:
    allowlist: UrlPolicy  # the FHIR servers that may be read; empty: fetch nothing
    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    deadline: float = 4.0  # seconds for all fetches of one call
    max_pages: int = 10
    max_bytes: int = 10 * 1024 * 1024  # one answer
    max_call_bytes: int = 20 * 1024 * 1024  # every answer of one call, together (FETCH_MAX_CALL_BYTES)


NO_FETCH = FetchSettings(UrlPolicy(()))  # the empty allow-list admits no server
_NEVER_SENDS = HTTPAdapter()  # with NO_FETCH nothing is sent through it


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Environment:
    knowledge: Knowledge
    public_base: str  # the service's public URL without a trailing slash: the card links
    fetch: FetchSettings = NO_FETCH
    # One connection pool (urllib3's PoolManager is thread-safe) used through HTTPAdapter.send alone: no Session,
    # so no cookie jar carried from one call to the next, no redirects, nothing from the environment.
    http: HTTPAdapter = _NEVER_SENDS
    clock: Callable[[], datetime] = utc_now
    site: SiteConfig = NO_SITE_CONFIG  # the site configuration (knowledge.site): rules off, indicators, thresholds

    @classmethod
    def offline(cls, knowledge: Knowledge, public_base: str = DEFAULT_PUBLIC_BASE,
                now: datetime | None = None, site: SiteConfig = NO_SITE_CONFIG) -> Environment:
        """The environment of the faces that fetch nothing: no FHIR server is read, the clock fixed at ``now``
        when given."""
        return cls(knowledge, public_base.rstrip("/"), site=site).at(now)

    def at(self, now: datetime | None) -> Environment:
        """This environment with its clock fixed at ``now`` (as it is when ``now`` is None)."""
        return self if now is None else replace(self, clock=lambda: now)


@dataclass(frozen=True)
class Call:
    """One evaluation of one validated request: the prefetch templates of its service, its draft orders (normalised)
    and the other resources of the draft Bundle, the ids of the judged orders, the environment and the moment."""

    request: Mapping[str, Any]
    templates: Mapping[str, str]
    env: Environment
    now: datetime
    orders: Sequence[dict[str, Any]] = ()
    others: Sequence[dict[str, Any]] = ()
    judged: frozenset[str] = field(default_factory=frozenset)
