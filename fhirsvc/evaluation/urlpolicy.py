"""Which FHIR server URLs the service may fetch from: parsed values compared exactly, never string prefixes.

Follows OWASP's SSRF prevention guidance (allow-list of parsed URLs, no redirects): each entry of
``FHIR_SERVER_ALLOWLIST`` is parsed once at start-up and each URL the service is about to fetch (the
call's ``fhirServer``, a search's ``next`` link, a ``medicationReference``) is parsed when it is used.
Both go through one parser (``parse_url``) built on the standard library's ``urllib.parse.urlsplit``
for the split and ``ipaddress`` for IP literals, and on the ``idna`` package (UTS #46 / IDNA 2008, the
library requests itself uses) for host names. Every component is checked, not only split: anything
ambiguous is refused rather than guessed (userinfo, fragments, backslashes, control characters,
percent-escapes in the host or of ``/``, ``\\`` and ``.`` in the path, dot segments, non-canonical IP
forms such as ``127.1`` or ``0x7f.0.0.1``, ports out of range). A URL is allowed when its scheme, host
and effective port equal an entry's and the entry's path is a prefix of its path on whole segments
(``/fhir`` allows ``/fhir`` and ``/fhir/...``, never ``/fhirX``). The request is then made to the URL
rebuilt from the parsed parts (``Url.text``), so what was compared is what is connected to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 4096

_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")  # control characters, space, backslash
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*$")  # what inet_aton would read
_BAD_PATH_ESCAPE = re.compile(r"%(2f|5c|2e|00)", re.IGNORECASE)  # an escaped '/', '\', '.' or NUL


class UrlRefused(ValueError):
    """A URL that the policy will not fetch from; the message says why (never the whole URL's secrets)."""


@dataclass(frozen=True)
class Url:
    """A URL reduced to the parts that decide where a request goes, in canonical form."""

    scheme: str  # "http" or "https"
    host: str  # lower-case A-label host name, or a canonical IP literal (IPv6 without brackets)
    port: int  # effective port (80 / 443 when none is written)
    path: str  # "" or "/a/b" (no trailing slash, no dot segments)
    query: str = ""

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("/")[1:]) if self.path else ()

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def text(self) -> str:
        """The URL rebuilt from its parsed parts: the one the request is made to."""
        return f"{self.scheme}://{self.netloc}{self.path}" + (f"?{self.query}" if self.query else "")

    def within(self, base: Url) -> bool:
        """Whether this URL is on ``base``'s origin and under its path, whole segments compared."""
        return self.origin == base.origin and self.segments[:len(base.segments)] == base.segments


def parse_url(text: object, allow_query: bool = False) -> Url:
    """Parse an absolute http(s) URL into canonical parts, or raise UrlRefused saying why."""
    if not isinstance(text, str) or not text:
        raise UrlRefused("not a URL")
    if len(text) > MAX_URL_LENGTH:
        raise UrlRefused(f"longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(text):
        raise UrlRefused("contains a control character, a space or a backslash")
    if "#" in text:
        raise UrlRefused("has a fragment")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"does not parse ({exc})") from None
    if not (parts.path + parts.query).isascii():
        raise UrlRefused("has non-ASCII characters outside the host (they must be percent-encoded)")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(f"scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise UrlRefused("has user information (user@host)")
    if parts.query and not allow_query:
        raise UrlRefused("has a query")
    netloc = parts.netloc
    if netloc.endswith(":") or port == 0:  # "host:" is not a way to write the default port
        raise UrlRefused("has an empty or zero port")
    host = _canonical_host(parts.hostname or "", bracketed=netloc.startswith("["))
    return Url(scheme, host, DEFAULT_PORTS[scheme] if port is None else port, _canonical_path(parts.path),
               parts.query)


def _canonical_host(host: str, bracketed: bool) -> str:
    if not host:
        raise UrlRefused("has no host")
    if "%" in host:
        raise UrlRefused("has a percent-escape or zone id in the host")
    if bracketed:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise UrlRefused("has an invalid IPv6 literal") from None
    host = host.lower()
    if not _NUMERIC_HOST.match(host):
        try:  # UTS #46 maps look-alikes too: full-width digits become digits, checked as an address below
            host = idna.encode(host.removesuffix("."), uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise UrlRefused(f"host is not a valid domain name ({exc})") from None
    if _NUMERIC_HOST.match(host):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise UrlRefused(f"host {host!r} is not a dotted-quad IPv4 address") from None
        if str(address) != host:  # e.g. leading zeros, which some resolvers read as octal
            raise UrlRefused(f"host {host!r} is not in canonical form ({address})")
        return host
    if not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise UrlRefused("host is not a valid domain name")
    return host


def _canonical_path(path: str) -> str:
    if _BAD_PATH_ESCAPE.search(path):
        raise UrlRefused("path has an escaped '/', '\\', '.' or NUL")
    segments = path.split("/")[1:] if path else []
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash: the same base
    if any(segment in ("", ".", "..") for segment in segments):
        raise UrlRefused("path has an empty, '.' or '..' segment")
    return "".join(f"/{segment}" for segment in segments)


class UrlPolicy:
    """The allow-list: parsed entries, and the one question the fetching code asks of a URL."""

    def __init__(self, entries: Iterable[str]):
        self.entries: tuple[Url, ...] = tuple(parse_allowlist_entry(entry) for entry in entries)

    @classmethod
    def from_setting(cls, setting: str) -> UrlPolicy:
        """From the comma-separated ``FHIR_SERVER_ALLOWLIST`` setting; ValueError names a bad entry."""
        return cls(entry.strip() for entry in str(setting).split(",") if entry.strip())

    def __bool__(self) -> bool:
        return bool(self.entries)

    def check(self, text: object, allow_query: bool = False) -> Url:
        """The parsed URL if some entry allows it; UrlRefused otherwise."""
        url = parse_url(text, allow_query=allow_query)
        if not any(url.within(entry) for entry in self.entries):
            raise UrlRefused(f"{url.netloc}{url.path or '/'} is not under an allow-listed FHIR server")
        return url


def host_for_log(text: object) -> str:
    """The host a URL names, for a log line (never the rest of it: no credentials, no query)."""
    try:
        host = urlsplit(text).hostname if isinstance(text, str) else None
    except ValueError:
        host = None
    return repr(host or "?")[:100]


def parse_allowlist_entry(entry: str) -> Url:
    """One allow-list entry; ValueError (with the entry and the reason) if it cannot be one."""
    try:
        return parse_url(entry)
    except UrlRefused as exc:
        raise ValueError(f"FHIRSVC_FHIR_SERVER_ALLOWLIST entry {entry!r} is not usable: it {exc}. "
                         "Write each entry as scheme://host[:port][/path], e.g. https://ehr.example.org/fhir") from None
