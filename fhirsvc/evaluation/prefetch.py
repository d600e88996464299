"""The patient context of one call, from prefetch or, for what is missing, from the EHR's FHIR server.

Per prefetch key (CDS Hooks 2.0.1 "Providing FHIR Resources"): present (a resource or a searchset
Bundle, possibly paged: ``next`` links are followed, bounded), ``null`` (no data), an
OperationOutcome (the EHR's fetch failed: the key is unavailable), or absent (fetched from
``fhirServer`` with the bearer token of ``fhirAuthorization``, concurrently, within a deadline that every body
read keeps, and within a byte budget for all the call's answers together, ``FetchSettings.max_call_bytes``).
A prefetch value of more than ``MAX_BUNDLE_RESOURCES`` resources is refused (413); a search read from the
server that passes it makes its key unavailable.
``fhirServer`` is contacted only when the allow-list (``urlpolicy.UrlPolicy``: parsed URLs compared
exactly) admits it, and every URL followed from it (``next`` links, ``medicationReference`` reads) must be
admitted too and stay on its origin. Redirects are never followed, and the requests carry no cookies and
no settings from the environment (``.netrc``, proxies): each is sent through a bare ``HTTPAdapter``,
with the bearer token of this call only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from fhirsvc.checks.context import DATA_KEYS, MEDICATIONS, OBSERVATIONS, PATIENT, STATEMENTS, PatientContext
from fhirsvc.checks.reading.medications import as_therapy_record
from fhirsvc.errors import FhirsvcError
from fhirsvc.evaluation.environment import Call, Environment, FetchSettings
from fhirsvc.evaluation.orders import MAX_BUNDLE_RESOURCES, check_bundle_size
from fhirsvc.evaluation.references import MedicationPool, bundle_medications, resolve_medications
from fhirsvc.evaluation.tokens import fill_template, observation_value_sets, window_start
from fhirsvc.evaluation.urlpolicy import Url, UrlRefused, host_for_log
from fhirsvc.jsontext import NotJson, parse_json
from fhirsvc.terminology import LOINC

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"


class FetchError(FhirsvcError):
    """A FHIR server fetch that did not give a usable FHIR JSON answer (the message says why)."""

    status = HTTPStatus.BAD_GATEWAY


class PreconditionFailed(FhirsvcError):
    """Nothing about the patient could be had: the call answers 412 with this explanation."""

    status = HTTPStatus.PRECONDITION_FAILED


class FhirServer:
    """The EHR's FHIR server for one call: allow-listed, bearer token, timeouts, bounded paging."""

    def __init__(self, base: str | None, token: str | None, settings: FetchSettings, http: HTTPAdapter):
        self.named = bool(base)
        self.token = token
        self.settings = settings
        self.http = http
        self.deadline = time.monotonic() + settings.deadline
        self.base: Url | None = None
        self.refusal: str | None = None  # why fhirServer is refused, logged the first time it is needed
        self._lock = threading.Lock()
        self.spent = 0  # bytes read from the server in this call, by every thread (max_call_bytes)
        if base:
            try:
                self.base = settings.allowlist.check(base)
            except UrlRefused as exc:
                self.refusal = f"host {host_for_log(base)}: {exc}"

    @property
    def usable(self) -> bool:
        """Whether fhirServer may be read; asked only when something must be fetched, so a refused server is
        logged (its host and why, never the token) once, and only when the call needed it."""
        if self.base is None and self.refusal:
            with self._lock:
                if self.refusal:
                    log.warning("fhirServer refused: %s", self.refusal)
                    self.refusal = None
        return self.base is not None

    def admit(self, url: str) -> Url:
        """The parsed URL to request for ``url`` (absolute, or relative to fhirServer): allow-listed and on
        fhirServer's own origin, else FetchError."""
        if self.base is None:
            raise FetchError("fhirServer is not allow-listed")
        try:
            absolute = url if urlsplit(url).scheme else f"{self.base.text}/{url.lstrip('/')}"
            target = self.settings.allowlist.check(absolute, allow_query=True)
        except (UrlRefused, ValueError) as exc:
            log.warning("FHIR server URL refused: host %s: %s", host_for_log(url), exc)
            raise FetchError(f"a URL that is not allow-listed was not followed ({exc})") from None
        if target.origin != self.base.origin:
            log.warning("FHIR server URL refused: host %s is not fhirServer's", host_for_log(url))
            raise FetchError("a URL on another server than fhirServer was not followed")
        return target

    def get(self, url: str) -> dict[str, Any]:
        """GET one FHIR JSON document; FetchError for anything but a 200 with a FHIR resource."""
        target = self.admit(url)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("the time allowed for fetching ran out")
        headers = {"Accept": FHIR_JSON}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            prepared = requests.Request("GET", target.text, headers=headers).prepare()
            response = self.http.send(prepared, stream=True, timeout=(
                min(self.settings.connect_timeout, remaining), min(self.settings.read_timeout, remaining)))
            with response:
                body = self._read_body(response)
        # Reading response.raw raises urllib3's own errors (a read timeout, a truncated body), not requests'.
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchError(f"the FHIR server could not be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise FetchError(f"the FHIR server answered HTTP {response.status_code}")
        if len(body) > self.settings.max_bytes:
            raise FetchError("the FHIR server's answer is too large")
        if time.monotonic() > self.deadline:  # parsing costs too: an answer complete only at the deadline is late
            raise FetchError("the time allowed for fetching ran out while reading the answer")
        try:
            document = parse_json(body)
        except NotJson as exc:
            raise FetchError(f"the FHIR server's answer is {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise FetchError("the FHIR server's answer is not a FHIR resource")
        if document["resourceType"] == "OperationOutcome":
            raise FetchError("the FHIR server answered an OperationOutcome")
        return document

    def _read_body(self, response: requests.Response) -> bytes:
        """At most max_bytes + 1 bytes of the body, read as they arrive, each read waiting no longer than the
        deadline: a server that trickles bytes or stalls cannot hold the call past it. Every byte counts
        against the call's max_call_bytes, shared by its fetches (FetchError once they are spent)."""
        connection = getattr(response.raw, "connection", None)  # urllib3's, while the body is being read
        sock = getattr(connection, "sock", None)
        chunks, size = [], 0
        while size <= self.settings.max_bytes:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError("the time allowed for fetching ran out while reading the answer")
            if sock is not None:
                sock.settimeout(min(self.settings.read_timeout, remaining))
            chunk = response.raw.read1(min(64 * 1024, self.settings.max_bytes + 1 - size), decode_content=True)
            if not chunk:
                break
            with self._lock:
                self.spent += len(chunk)
                spent = self.spent
            if spent > self.settings.max_call_bytes:
                raise FetchError(f"the FHIR server's answers to this call passed {self.settings.max_call_bytes} "
                                 "bytes (FETCH_MAX_CALL_BYTES)")
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def search_all(self, first: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every resource of a searchset Bundle, following ``next`` links (bounded, loop-safe)."""
        page, seen, resources = first, set(), []
        for _ in range(self.settings.max_pages):
            entries = page.get("entry") or []
            if not isinstance(entries, list):
                raise FetchError("a Bundle's entry is not an array")
            for entry in entries:  # each resource, but not an OperationOutcome entry (search.mode "outcome")
                resource = entry.get("resource") if type(entry) is dict else None
                search = entry.get("search") if type(resource) is dict else None
                if type(resource) is dict and not (type(search) is dict and search.get("mode") == "outcome"):
                    resources.append(resource)
            if len(resources) > MAX_BUNDLE_RESOURCES:
                raise FetchError(f"the search has more than {MAX_BUNDLE_RESOURCES} resources (MAX_BUNDLE_RESOURCES)")
            links = page.get("link")
            if not isinstance(links, list):
                links = []
            next_url = next((link.get("url") for link in links
                             if isinstance(link, dict) and link.get("relation") == "next"), None)
            if not next_url or not isinstance(next_url, str):
                return resources
            next_url = urljoin(self.base.text + "/", next_url) if self.base else next_url
            if next_url in seen:
                raise FetchError("the search's next links go round in a loop")
            seen.add(next_url)
            page = self.get(next_url)
            if page.get("resourceType") != "Bundle":
                raise FetchError("a next page is not a Bundle")
        raise FetchError(f"the search has more than {self.settings.max_pages} pages")


def resources_of(document: Any, key: str, server: FhirServer) -> tuple[dict[str, Any], ...]:
    """The resources a prefetch value or a fetched document holds; FetchError if it is a failure."""
    if document is None:
        return ()
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise FetchError("the prefetch value is not a FHIR resource")
    if document["resourceType"] == "OperationOutcome":
        raise FetchError("the EHR could not fetch it (OperationOutcome)")
    if document["resourceType"] == "Bundle":
        return tuple(server.search_all(document))
    return (document,)


def fhir_server(request: Mapping[str, Any], env: Environment) -> FhirServer:
    """The EHR's FHIR server of one call (``fhirServer`` with the token of ``fhirAuthorization``)."""
    authorization = request.get("fhirAuthorization")
    token = authorization.get("access_token") if isinstance(authorization, Mapping) else None
    return FhirServer(request.get("fhirServer"), token, env.fetch, env.http)


def assemble_context(call: Call, keys: Iterable[str] = DATA_KEYS, server: FhirServer | None = None,
                     referenced: Mapping[str, dict[str, Any]] | None = None,
                     pools: Sequence[MedicationPool] | None = None) -> PatientContext:
    """Read the data ``keys`` (the checks' needs; default all) from prefetch or the FHIR server, leaving the
    others empty; 412 (PreconditionFailed) if none of them could be had. The medication list is the
    ``medications`` key and, when sent (or readable from fhirServer), the optional ``statements`` key, whose
    failure makes the medication list unavailable. ``referenced``: Medications already resolved; ``pools``: the
    call's ``medication_pools``, when the caller has them."""
    request, templates, orders = call.request, call.templates, call.orders
    server = server or fhir_server(request, call.env)
    wanted = [key for key in DATA_KEYS if key in set(keys)]
    prefetch = request.get("prefetch") or {}
    optional = [STATEMENTS] if MEDICATIONS in wanted and (STATEMENTS in prefetch or STATEMENTS in templates) else []
    data: dict[str, tuple[dict[str, Any], ...]] = {key: () for key in (*DATA_KEYS, STATEMENTS)}
    unavailable: dict[str, str] = {}

    for key in (*wanted, *optional):  # what the EHR sent: more than a Bundle may hold is the caller's to cut (413)
        if key in prefetch:
            check_bundle_size(prefetch[key], f"prefetch {key}")

    def read_key(key: str) -> tuple[dict[str, Any], ...]:
        if key in prefetch:
            return resources_of(prefetch[key], key, server)
        if key in optional and not (server.named and server.base is not None):
            return ()  # an optional key neither sent nor readable: not sent, nothing recorded
        if not server.named:
            raise FetchError("not in prefetch, and the request names no fhirServer")
        if not server.usable:
            raise FetchError("not in prefetch, and fhirServer is not allow-listed")
        url = fill_template(templates[key], request["context"], call.now.date())
        return resources_of(server.get(url), key, server)

    def goes_to_server(key: str) -> bool:  # whether read_key sends a request (a next page, or the key's search)
        return _has_next_page(prefetch[key]) if key in prefetch else server.base is not None

    # Keys that mean fetching are read in threads, concurrently; the others at once (no thread to start: a key
    # neither sent nor readable is answered without a request).
    fetched = [key for key in (*wanted, *optional) if goes_to_server(key)]
    with ThreadPoolExecutor(max_workers=len(fetched)) if fetched else nullcontext() as pool:
        futures = {key: pool.submit(read_key, key) for key in fetched} if pool is not None else {}
        for key in (*wanted, *optional):
            try:
                data[key] = futures[key].result() if key in futures else read_key(key)
            except FetchError as exc:
                data[key], unavailable[key] = (), str(exc)
    if OBSERVATIONS in wanted and OBSERVATIONS not in unavailable:
        try:
            data[OBSERVATIONS] = with_older_results(data[OBSERVATIONS], call, server)
        except FetchError as exc:
            data[OBSERVATIONS], unavailable[OBSERVATIONS] = (), str(exc)
    if wanted and all(key in unavailable for key in wanted):
        reasons = "; ".join(f"{key}: {why}" for key, why in unavailable.items())
        raise PreconditionFailed(f"no patient data could be obtained from prefetch or fhirServer ({reasons})")
    for key, why in unavailable.items():
        log.info("prefetch %s unavailable: %s", key, why)
    if STATEMENTS in unavailable:  # part of the medication list is missing: the list is unavailable
        unavailable.setdefault(MEDICATIONS, f"{STATEMENTS}: {unavailable[STATEMENTS]}")
        del unavailable[STATEMENTS]
    records = tuple([as_therapy_record(r, call.now) for r in _of_type(
        (*data[MEDICATIONS], *data[STATEMENTS]), "MedicationRequest", "MedicationStatement")])
    patient = next((r for r in data[PATIENT] if r.get("resourceType") == "Patient"), None)
    return PatientContext(
        now=call.now, hook=request["hook"], patient=patient,
        conditions=_of_type(data["conditions"], "Condition"),
        allergies=_of_type(data["allergies"], "AllergyIntolerance"),
        medications=records,
        observations=_of_type(data["observations"], "Observation"),
        unavailable=unavailable, draft_orders=tuple(orders), judged_ids=call.judged,
        referenced_medications=resolve_medications(
            [*orders, *records], _gathered(call, pools, (*data[MEDICATIONS], *data[STATEMENTS])),
            medication_fetcher(server), known=referenced),
    )


def _gathered(call: Call, pools: Sequence[MedicationPool] | None,
              records: Iterable[dict[str, Any]]) -> Iterator[MedicationPool]:
    """The pools a medication reference is looked for in: the caller's (else the request's, ``medication_pools``),
    then the Medications among the medication records; gathered only when a reference is looked for."""
    yield from medication_pools(call) if pools is None else pools
    yield MedicationPool.of_resources(records)


def _draft_entries(request: Mapping[str, Any]) -> Any:
    """The entries of the request's draft orders Bundle (with their fullUrls), if it has one."""
    context = request.get("context")
    drafts = context.get("draftOrders") if isinstance(context, Mapping) else None
    return drafts.get("entry") if isinstance(drafts, Mapping) else None


def medication_pools(call: Call) -> list[MedicationPool]:
    """Where a medication reference is looked for in the request itself: the draft orders' Bundle, then the
    Medications inline in the ``medications`` and ``statements`` prefetch values (no page is fetched)."""
    prefetch = call.request.get("prefetch") or {}
    return [MedicationPool.of_entries(_draft_entries(call.request)), MedicationPool.of_resources(call.others),
            *(bundle_medications(prefetch.get(key)) for key in (MEDICATIONS, STATEMENTS))]


def medication_fetcher(server: FhirServer) -> Callable[[str], dict[str, Any]] | None:
    """The FHIR server's GET when the request names one (asked whether it may be read only when a reference is
    to be fetched), else None (nothing is fetched)."""
    def fetch(url: str) -> dict[str, Any]:
        if not server.usable:
            raise FetchError("fhirServer is not allow-listed")
        return server.get(url)
    return fetch if server.named else None


def with_older_results(observations: tuple[dict[str, Any], ...], call: Call,
                       server: FhirServer) -> tuple[dict[str, Any], ...]:
    """The observations, completed with the older results the service reads itself when its template asked for a
    window only (``PREFETCH_STYLE=3.0``: the last 400 days): for the codes of every value set none of whose codes
    has a result in the window, one search of the results before it (``date=lt``, two days' margin for the EHR's
    own "today"), so that "never measured" and "last on" are said of the whole record. FetchError when they are
    needed and cannot be read (the key is then unavailable: no card claims what the window cannot show)."""
    start = window_start(call.templates.get(OBSERVATIONS), call.now.date())
    if start is None:
        return observations
    seen = {(c.get("system"), c.get("code")) for o in observations if isinstance(o.get("code"), dict)
            for c in o["code"].get("coding") or () if isinstance(c, dict)}
    lacking = sorted({code for codes in observation_value_sets(call.env.knowledge).values()
                      if not any((LOINC, code) in seen for code in codes) for code in codes})
    if not lacking:
        return observations
    if not server.usable:
        raise FetchError(f"only the results since {start} were sent, and the older ones cannot be read: "
                         "fhirServer is missing or not allow-listed")
    query = (f"Observation?patient={call.request['context']['patientId']}&code="
             f"{','.join(f'{LOINC}|{code}' for code in lacking)}&date=lt{start + timedelta(days=2)}&_sort=-date")
    older = resources_of(server.get(query), OBSERVATIONS, server)
    known = {(o.get("resourceType"), o.get("id")) for o in observations}
    return observations + tuple(o for o in older if (o.get("resourceType"), o.get("id")) not in known)


def _has_next_page(value: Any) -> bool:
    """Whether a prefetch value is a Bundle with a ``next`` link (reading it fetches pages)."""
    links = value.get("link") if isinstance(value, dict) and value.get("resourceType") == "Bundle" else None
    return isinstance(links, list) and any(isinstance(link, dict) and link.get("relation") == "next" for link in links)


def _of_type(resources: tuple[dict[str, Any], ...], *types: str) -> tuple[dict[str, Any], ...]:
    return tuple([r for r in resources if r.get("resourceType") in types])
