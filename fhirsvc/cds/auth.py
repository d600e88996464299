"""Verify the signed JWT a CDS Client sends with every call (CDS Hooks 2.0.1, "Trusting CDS Clients").

The service trusts an allow-list of issuers (``iss``), each with its public keys given inline (a JWK Set
agreed out of band) and/or a list of allow-listed JWK Set URLs (``jku``). A token must be an asymmetric
signature (ES384, RS384, ES256 or RS256) by the key named in its ``kid``, addressed to the exact endpoint
URL being called (``aud``), short-lived (``exp``/``iat``), and used once (``jti``).

Used ``jti`` values are remembered until their tokens expire (``fhirsvc.storage.replay``): in memory by default,
and by the service in its database (``fhirsvc.storage``), shared by its worker processes and instances, so a
token replayed to any of them is refused.

Nothing here logs a token or its claims; ``AuthError`` messages may name ``iss``, ``jti``, ``tenant``,
``kid``, ``alg`` or a configured ``jku`` URL, and are meant for the service's own logs only.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from flask import current_app, request
from requests.adapters import HTTPAdapter

from fhirsvc.errors import FhirsvcError
from fhirsvc.storage.replay import MemoryReplayCache, ReplayCache, ReplayUnrecordable
from fhirsvc.urls import public_base

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AuthError",
    "JwtVerifier",
    "TrustedIssuer",
    "fetch_jwks",
    "load_issuers",
]

log = logging.getLogger(__name__)

# Asymmetric algorithms only: the spec forbids "none" and every symmetric (HS*) algorithm; ES384/RS384 are
# RECOMMENDED, ES256/RS256 are accepted for clients that still use them.
ALLOWED_ALGORITHMS = frozenset({"ES384", "RS384", "ES256", "RS256"})
# The key type (and curve) each algorithm needs, so a key is never used with a mismatched algorithm.
_KEY_TYPE = {"ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "RS256": ("RSA", None), "RS384": ("RSA", None)}
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
MIN_RSA_BITS = 2048
MAX_TOKEN_LENGTH = 16 * 1024
# Characters of a ``jti`` (a uuid is 36): the replay check stores and indexes it, so a longer one is refused (401)
# before it reaches the database.
MAX_JTI_LENGTH = 256
# Private or symmetric key members that must never appear in a trusted (public) JWK Set.
_SECRET_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

JWKS_CONNECT_TIMEOUT = 2.0
JWKS_READ_TIMEOUT = 3.0
JWKS_TOTAL_TIMEOUT = 5.0
JWKS_MAX_BYTES = 256 * 1024
# A fetched JWK Set is reused for this long, then fetched again (so removed keys stop being trusted).
JWKS_MAX_AGE = 3600.0
# At most one fetch per JWK Set URL in this many seconds, so unknown-kid tokens cannot hammer the client.
JWKS_REFETCH_INTERVAL = 60.0
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class AuthError(FhirsvcError):
    """The caller is not authenticated; the answer is 401 without detail, as the spec's best practices advise
    (the reason is logged)."""

    status = HTTPStatus.UNAUTHORIZED

    @property
    def public_message(self) -> str:
        return "authentication required"


@dataclass(frozen=True)
class TrustedIssuer:
    """One allow-listed CDS Client: its ``iss``, its keys (inline and/or allow-listed ``jku`` URLs), its tenants."""

    iss: str
    jwks: dict | None = None
    jku: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject unusable trust entries at startup, not at the first request."""
        if not isinstance(self.iss, str) or not self.iss:
            raise ValueError("trusted issuer: 'iss' must be a non-empty string")
        object.__setattr__(self, "jku", tuple(self.jku))
        object.__setattr__(self, "tenants", tuple(self.tenants))
        if self.jwks is None and not self.jku:
            raise ValueError(f"trusted issuer {self.iss!r}: give a JWK Set ('jwks'/'jwks_file') or 'jku' URLs")
        if self.jwks is not None:
            _check_public_jwks(self.jwks, f"trusted issuer {self.iss!r}")
        for url in self.jku:
            _check_jku_url(url, self.iss)
        for tenant in self.tenants:
            if not isinstance(tenant, str) or not tenant:
                raise ValueError(f"trusted issuer {self.iss!r}: tenants must be non-empty strings")


def _check_public_jwks(jwks: Any, where: str) -> None:
    """A trusted JWK Set must be ``{"keys": [...]}`` of public keys; a private key here is a leak."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError(f"{where}: the JWK Set must be an object with a 'keys' array")
    for key in jwks["keys"]:
        if not isinstance(key, dict):
            raise ValueError(f"{where}: every JWK must be an object")
        if _SECRET_JWK_MEMBERS & key.keys():
            raise ValueError(f"{where}: JWK {key.get('kid')!r} holds private or symmetric key material")


def _check_jku_url(url: Any, iss: str) -> None:
    """Allow-listed ``jku`` URLs must be https (plain http only on loopback, for local testing)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname:
        raise ValueError(f"trusted issuer {iss!r}: jku {url!r} is not an absolute URL")
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        raise ValueError(f"trusted issuer {iss!r}: jku {url!r} must use https")


def _index_jwks(jwks: dict) -> dict[str, dict]:
    """Map ``kid`` to JWK; keys without a ``kid`` cannot be selected, since the spec requires ``kid``."""
    keys = (key for key in jwks.get("keys", ()) if isinstance(key, dict))
    return {key["kid"]: key for key in keys if isinstance(key.get("kid"), str)}


# The JWK Set is fetched as the prefetch path fetches (fhirsvc.evaluation.prefetch): a prepared request sent through a
# bare HTTPAdapter, not a requests Session, so nothing from the environment (proxy variables, ``.netrc``) applies and
# no redirect is followed. The app passes the adapter of its Environment (cds/views.py); this one serves the rest.
_JWKS_HTTP = HTTPAdapter(max_retries=0)


def fetch_jwks(url: str, http: HTTPAdapter | None = None) -> dict:
    """Fetch a JWK Set with tight timeouts, no redirects and a size cap, so a slow or hostile URL cannot stall us."""
    deadline = time.monotonic() + JWKS_TOTAL_TIMEOUT
    try:
        prepared = requests.Request("GET", url, headers={"Accept": "application/json"}).prepare()
        with (http or _JWKS_HTTP).send(
            prepared, stream=True, timeout=(JWKS_CONNECT_TIMEOUT, JWKS_READ_TIMEOUT),
        ) as response:
            if response.status_code != 200:
                raise AuthError(f"JWK Set fetch from {url} answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > JWKS_MAX_BYTES:
                raise AuthError(f"JWK Set at {url} is larger than {JWKS_MAX_BYTES} bytes")
            body = bytearray()
            for chunk in response.iter_content(chunk_size=16 * 1024):
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise AuthError(f"JWK Set at {url} is larger than {JWKS_MAX_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise AuthError(f"JWK Set fetch from {url} took longer than {JWKS_TOTAL_TIMEOUT} s")
    except requests.RequestException as error:
        raise AuthError(f"JWK Set fetch from {url} failed: {type(error).__name__}") from error
    try:
        jwks = json.loads(bytes(body))
    except ValueError as error:
        raise AuthError(f"JWK Set at {url} is not JSON") from error
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise AuthError(f"JWK Set at {url} has no 'keys' array")
    return jwks


_default_fetch_jwks = fetch_jwks


@dataclass
class _JkuEntry:
    """The cached JWK Set of one allow-listed URL; its lock makes concurrent requests share one fetch."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: dict[str, dict] | None = None
    fetched_at: float = -math.inf
    attempted_at: float = -math.inf


class JwtVerifier:
    """Checks ``Authorization: Bearer <jwt>`` against trusted issuers, per CDS Hooks 2.0.1 "Trusting CDS Clients"."""

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        *,
        fetch_jwks: Callable[[str], dict] | None = None,
        http: HTTPAdapter | None = None,
        leeway: int = 30,
        max_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        self._issuers: dict[str, TrustedIssuer] = {}
        self._inline_keys: dict[str, dict[str, dict]] = {}
        for issuer in issuers:
            if issuer.iss in self._issuers:
                raise ValueError(f"trusted issuer {issuer.iss!r} is listed twice")
            self._issuers[issuer.iss] = issuer
            self._inline_keys[issuer.iss] = _index_jwks(issuer.jwks) if issuer.jwks else {}
        if leeway < 0 or max_lifetime <= 0:
            raise ValueError("leeway must be >= 0 and max_lifetime > 0")
        self._fetch_jwks = fetch_jwks if fetch_jwks is not None else partial(_default_fetch_jwks, http=http)
        self._leeway = leeway
        self._max_lifetime = max_lifetime
        self._clock = clock
        self._jku_lock = threading.Lock()
        self._jku_cache: dict[str, _JkuEntry] = {}
        self._replay_cache = replay_cache if replay_cache is not None else MemoryReplayCache()

    def verify(self, authorization_header: str | None, audience: str) -> dict:
        """Return the verified claims, or raise AuthError; ``audience`` is the exact endpoint URL being called."""
        if not audience:
            raise ValueError("audience must be the endpoint URL being called")
        token = _bearer_token(authorization_header)
        header = _checked_header(token)
        alg, kid, jku = header["alg"], header["kid"], header.get("jku")

        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise AuthError(f"malformed JWT payload: {type(error).__name__}") from error
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthError("JWT has no 'iss' claim")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise AuthError(f"JWT issuer {iss[:200]!r} is not trusted")
        if jku is not None and jku not in issuer.jku:
            raise AuthError(f"JWT jku is not allow-listed for issuer {iss!r}")

        key = self._public_key(issuer, kid, alg, jku)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer.iss,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    # Time claims are checked below against the injected clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as error:
            raise AuthError(f"JWT from {iss!r} rejected: {type(error).__name__}: {error}") from error

        now = self._clock()
        self._check_times(claims, now)
        self._check_tenant(issuer, claims)
        self._check_replay(iss, claims, now)
        return claims

    def _public_key(self, issuer: TrustedIssuer, kid: str, alg: str, jku: str | None) -> jwt.PyJWK:
        """Find ``kid`` in the issuer's inline JWK Set, else in its allow-listed JWK Set URL(s)."""
        jwk = self._inline_keys[issuer.iss].get(kid)
        if jwk is None:
            for url in (jku,) if jku is not None else issuer.jku:
                jwk = self._key_from_jku(url, kid)
                if jwk is not None:
                    break
        if jwk is None:
            raise AuthError(f"no key with kid {kid[:100]!r} for issuer {issuer.iss!r}")
        return _usable_key(jwk, alg, kid)

    def _key_from_jku(self, url: str, kid: str) -> dict | None:
        """Serve ``kid`` from the cached JWK Set; fetch when absent, stale or missing ``kid`` (rate-limited)."""
        with self._jku_lock:
            entry = self._jku_cache.setdefault(url, _JkuEntry())
        with entry.lock:
            now = self._clock()
            keys = entry.keys
            if keys is not None and now - entry.fetched_at < JWKS_MAX_AGE and kid in keys:
                return keys[kid]
            if now - entry.attempted_at >= JWKS_REFETCH_INTERVAL:
                entry.attempted_at = now
                try:
                    jwks = self._fetch_jwks(url)
                    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                        raise AuthError(f"JWK Set at {url} has no 'keys' array")
                except Exception as error:  # any failure of a pluggable fetcher counts as "no keys"
                    log.warning("JWK Set fetch from %s failed: %s", url, error)
                else:
                    entry.keys, entry.fetched_at = _index_jwks(jwks), now
            # A stale set still serves known keys while the URL is failing or rate-limited.
            return entry.keys.get(kid) if entry.keys is not None else None

    def _check_times(self, claims: dict, now: float) -> None:
        """``exp``/``iat`` (and ``nbf`` if present) with leeway, and a bounded lifetime, so tokens stay short-lived."""
        exp, iat = _numeric(claims, "exp"), _numeric(claims, "iat")
        if exp + self._leeway <= now:
            raise AuthError("JWT has expired")
        if iat - self._leeway > now:
            raise AuthError("JWT is issued in the future (iat)")
        if "nbf" in claims and _numeric(claims, "nbf") - self._leeway > now:
            raise AuthError("JWT is not yet valid (nbf)")
        if exp < iat or exp - iat > self._max_lifetime:
            raise AuthError(f"JWT lifetime exp - iat is outside 0..{self._max_lifetime} s")

    @staticmethod
    def _check_tenant(issuer: TrustedIssuer, claims: dict) -> None:
        """An issuer that lists tenants only speaks for those tenants; ``tenant`` is then required."""
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthError("JWT 'tenant' claim is not a string")
        if issuer.tenants and tenant not in issuer.tenants:
            raise AuthError(f"JWT tenant {str(tenant)[:100]!r} is not allow-listed for issuer {issuer.iss!r}")

    def _check_replay(self, iss: str, claims: dict, now: float) -> None:
        """Accept each (iss, jti) once until the token expires, since ``jti`` exists to stop replays."""
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthError("JWT 'jti' claim is not a non-empty string")
        if len(jti) > MAX_JTI_LENGTH or "\x00" in jti or not _is_unicode(jti):
            raise AuthError(f"JWT 'jti' claim is longer than {MAX_JTI_LENGTH} characters, or not plain text (a NUL, "
                            "a lone surrogate)")
        try:
            first = self._replay_cache.first_use(iss, jti, _numeric(claims, "exp") + self._leeway, now)
        except ReplayUnrecordable:
            raise AuthError(f"JWT jti {jti[:100]!r} from {iss!r} cannot be recorded") from None
        if not first:
            raise AuthError(f"JWT jti {jti[:100]!r} from {iss!r} was already used")


def _is_unicode(text: str) -> bool:
    """Whether ``text`` is Unicode text (JSON's ``"\\ud800"`` decodes to a lone surrogate, which is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bearer_token(authorization_header: str | None) -> str:
    """Take the JWT out of ``Authorization: Bearer <jwt>``; the spec requires exactly this form."""
    if not authorization_header:
        raise AuthError("no Authorization header")
    parts = authorization_header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthError("Authorization header is not 'Bearer <token>'")
    token = parts[1]
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise AuthError("bearer token is not a compact JWS")
    return token


def _checked_header(token: str) -> dict:
    """Check the JOSE header before anything else: allowed ``alg``, a ``kid``, ``typ`` JWT, no extensions."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise AuthError(f"malformed JWT header: {type(error).__name__}") from error
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise AuthError(f"JWT alg {str(alg)[:20]!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("JWT header has no 'kid'")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise AuthError("JWT header 'typ' is not JWT")
    if "crit" in header or "b64" in header:
        raise AuthError("JWT header uses unsupported extensions (crit/b64)")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise AuthError("JWT header 'jku' is not a string")
    return header


def _usable_key(jwk: dict, alg: str, kid: str) -> jwt.PyJWK:
    """Bind the JWK to the header ``alg`` only if its type, curve, ``alg``, ``use`` and size agree."""
    kty, crv = _KEY_TYPE[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise AuthError(f"key {kid[:100]!r} does not fit alg {alg}")
    if jwk.get("alg", alg) != alg:
        raise AuthError(f"key {kid[:100]!r} is for alg {str(jwk.get('alg'))[:20]!r}, not {alg}")
    if jwk.get("use", "sig") != "sig" or ("key_ops" in jwk and "verify" not in jwk["key_ops"]):
        raise AuthError(f"key {kid[:100]!r} is not a signature verification key")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
    except jwt.PyJWTError as error:
        raise AuthError(f"key {kid[:100]!r} is unusable: {type(error).__name__}") from error
    if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise AuthError(f"RSA key {kid[:100]!r} is shorter than {MIN_RSA_BITS} bits")
    return key


def _numeric(claims: dict, name: str) -> float:
    """A NumericDate claim as a number (RFC 7519 §2), rejecting strings, booleans and non-finite values."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthError(f"JWT '{name}' claim is not a number")
    return value


def load_issuers(config_value: str) -> list[TrustedIssuer]:
    """Read the trusted issuers from the JSON file named by FHIRSVC_JWT_ISSUERS (paths relative to that file)."""
    if not config_value or not config_value.strip():
        raise ValueError("FHIRSVC_JWT_ISSUERS is empty; it must name a trust file")
    path = Path(config_value.strip()).expanduser()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read trust file {path}: {error}") from error
    if not isinstance(entries, list):
        raise ValueError(f"trust file {path}: expected a JSON array of issuers")
    issuers = []
    for index, entry in enumerate(entries):
        where = f"trust file {path}, entry {index}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        unknown = entry.keys() - {"iss", "jwks", "jwks_file", "jku", "tenants"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        if "jwks" in entry and "jwks_file" in entry:
            raise ValueError(f"{where}: give 'jwks' or 'jwks_file', not both")
        jwks = entry.get("jwks")
        if "jwks_file" in entry:
            jwks_path = path.parent / entry["jwks_file"]
            try:
                jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ValueError(f"{where}: cannot read {jwks_path}: {error}") from error
        for name in ("jku", "tenants"):
            if not isinstance(entry.get(name, []), list):
                raise ValueError(f"{where}: '{name}' must be an array")
        try:
            issuers.append(
                TrustedIssuer(
                    iss=entry.get("iss", ""),  # missing: refused by TrustedIssuer like an empty one
                    jwks=jwks,
                    jku=tuple(entry.get("jku", ())),
                    tenants=tuple(entry.get("tenants", ())),
                )
            )
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from error
    return issuers


AUTHENTICATION = "fhirsvc.cds.auth"  # the app extension: the JwtVerifier, or None when authentication is off


def authenticate() -> dict:
    """Verify the caller's JWT (CDS Hooks 2.0.1 "Trusting CDS Clients"): aud is this endpoint's URL. Its claims
    (none when authentication is off). Asked alike by the CDS routes and the FHIR operations."""
    verifier = current_app.extensions[AUTHENTICATION]
    if verifier is None:
        return {}
    return verifier.verify(request.headers.get("Authorization"), public_base() + request.path)  # 401
