"""JWT bearer verification (CDS Hooks 2.0.1 "Trusting CDS Clients"): real keys, real signatures, a table of attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fhirsvc.cds import auth
from fhirsvc.cds.auth import AuthError, JwtVerifier, TrustedIssuer, fetch_jwks, load_issuers
from fhirsvc.storage import open_store
from fhirsvc.storage.replay import MemoryReplayCache
from tests.conftest import CONFORMANCE_DIR, ROOT

NOW = 1_800_000_000
ISS = "https://ehr.example.org"
TENANT_ISS = "https://multi-tenant-ehr.example.org"
JKU_ISS = "https://rotating-ehr.example.org"
JKU = "https://ehr.example.org/.well-known/jwks.json"
ROTATING_JKU = "https://rotating-ehr.example.org/jwks"
AUD = "https://cds.example.org/cds-services/medication-safety-order-sign"
SANDBOX_TRUST = ROOT / "fixtures" / "trust" / "sandbox-dev.json"
_jti = itertools.count(1)


class Clock:
    """A settable clock, so every time check is deterministic."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeFetcher:
    """Stands in for the network: serves JWK Sets by URL and records every call."""

    def __init__(self, sets: dict[str, dict] | None = None, error: Exception | None = None) -> None:
        self.sets = sets or {}
        self.error = error
        self.calls: list[str] = []

    def __call__(self, url: str) -> dict:
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        return self.sets[url]


@dataclass(frozen=True)
class Keys:
    ec: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey
    other_rsa: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        ec=ec.generate_private_key(ec.SECP384R1()),
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        other_rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def public_jwk(private_key, kid: str, alg: str | None = None) -> dict:
    """The public JWK of a private key, as a CDS Client would publish it."""
    is_ec = isinstance(private_key, ec.EllipticCurvePrivateKey)
    family = jwt.algorithms.ECAlgorithm if is_ec else jwt.algorithms.RSAAlgorithm
    jwk = json.loads(family.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


def claims(**overrides) -> dict:
    base = {"iss": ISS, "aud": AUD, "exp": NOW + 300, "iat": NOW, "jti": f"jti-{next(_jti)}"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(private_key, alg: str = "ES384", kid: str | None = "ec-1", payload: dict | None = None, **header) -> str:
    """A real PyJWT-signed token; ``kid=None`` leaves the kid out."""
    headers = {"kid": kid, **header} if kid is not None else header
    return jwt.encode(payload if payload is not None else claims(), private_key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_built(header: dict, payload: dict, signer=None) -> str:
    """A token assembled by hand, for headers PyJWT refuses to produce; ``signer`` maps signing input to bytes."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = signer(signing_input.encode()) if signer else b""
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def verifier(keys: Keys, fetcher: FakeFetcher | None = None, clock: Clock | None = None) -> JwtVerifier:
    issuers = [
        TrustedIssuer(ISS, jwks={"keys": [public_jwk(keys.ec, "ec-1", "ES384"), public_jwk(keys.rsa, "rsa-1")]},
                      jku=(JKU,)),
        TrustedIssuer(TENANT_ISS, jwks={"keys": [public_jwk(keys.ec, "ec-1", "ES384")]}, tenants=("tenant-a",)),
    ]
    return JwtVerifier(issuers, fetch_jwks=fetcher or FakeFetcher({JKU: {"keys": []}}), clock=clock or Clock())


# --- valid tokens --------------------------------------------------------------------------------------------------

def test_valid_es384_token_returns_claims(keys):
    payload = claims(sub="Practitioner/1", nbf=NOW - 5, tenant="anything")
    result = verifier(keys).verify(bearer(sign(keys.ec, payload=payload, jku=JKU)), AUD)
    assert result == payload


def test_valid_rs384_token_with_aud_array_returns_claims(keys):
    payload = claims(aud=["https://other.example/cds-services", AUD])
    assert verifier(keys).verify(bearer(sign(keys.rsa, "RS384", "rsa-1", payload)), AUD) == payload


def test_leeway_accepts_small_clock_skew(keys):
    payload = claims(iat=NOW + 20, exp=NOW + 320)
    assert verifier(keys).verify(bearer(sign(keys.ec, payload=payload)), AUD)["jti"] == payload["jti"]


def test_lowercase_bearer_scheme_is_accepted(keys):
    assert verifier(keys).verify(f"bearer {sign(keys.ec)}", AUD)["iss"] == ISS


def test_spec_example_token_verifies_with_spec_example_key():
    """The JWT printed in CDS Hooks 2.0.1 verifies (its 3.5-year lifetime needs a larger max_lifetime)."""
    header = ("eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImV4YW1wbGUta2lkIiwiamt1IjoiaHR0cHM6Ly9maGlyLWVoci5leGFtcGxl"
              "LmNvbS9qd2tfdXJpIn0")
    payload = ("eyJpc3MiOiJodHRwczovL2ZoaXItZWhyLmV4YW1wbGUuY29tLyIsImF1ZCI6Imh0dHBzOi8vY2RzLmV4YW1wbGUub3JnL2Nkcy1z"
               "ZXJ2aWNlcy9zb21lLXNlcnZpY2UiLCJleHAiOjE0MjI1Njg4NjAsImlhdCI6MTMxMTI4MDk3MCwianRpIjoiZWUyMmIwMjEtZTFiNy00"
               "NjExLWJhNWItOGVlYzZhMzNhYzFlIiwidGVuYW50IjoiMmRkZDZjM2EtOGU5YS00NGM2LWEzMDUtNTIxMTFhZDMwMmEyIn0")
    signature = ("d1WfLjGRKlcWB94l9do4cM8REXeYJLL6SGUBO8VHZhfM8mwKYP70EMxJ67War4TQblEpaQrp11wx5p7oPFm2ETYgCicS84vX"
                 "WEIYTdjooZdooCSDf2L8-i4awdoUwiEb")
    example_key = {"kty": "EC", "use": "sig", "crv": "P-384", "kid": "example-kid", "alg": "ES384",
                   "x": "46SDH7Znh821wblCBglA61sNE9ZrHYKKt3qRtRTmSXyOI_FIGBLWrWa0GPUkDCEk",
                   "y": "XMcRuuoGW7CXjQdy-F5i3FeBE0x9hPLdeFdSoDd3ELmx404tLX0VRRcqzAsPhXcI"}
    fetcher = FakeFetcher()
    issuer = TrustedIssuer("https://fhir-ehr.example.com/", jwks={"keys": [example_key]},
                           jku=("https://fhir-ehr.example.com/jwk_uri",),
                           tenants=("2ddd6c3a-8e9a-44c6-a305-52111ad302a2",))
    spec_verifier = JwtVerifier([issuer], fetch_jwks=fetcher, max_lifetime=10**9, clock=Clock(1_400_000_000))
    result = spec_verifier.verify(bearer(f"{header}.{payload}.{signature}"),
                                  "https://cds.example.org/cds-services/some-service")
    assert result["jti"] == "ee22b021-e1b7-4611-ba5b-8eec6a33ac1e"
    assert fetcher.calls == []


# --- attacks -------------------------------------------------------------------------------------------------------

def _alg_none(k: Keys) -> str:
    return bearer(hand_built({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims()))


def _hs256_with_public_key_as_secret(k: Keys) -> str:
    pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    secret = k.rsa.public_key().public_bytes(*pem)
    return bearer(hand_built({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(),
                             lambda data: hmac.new(secret, data, hashlib.sha256).digest()))


def _es256_header_on_p384_key(k: Keys) -> str:
    def signer(data: bytes) -> bytes:
        r, s = decode_dss_signature(k.ec.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return bearer(hand_built({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}, claims(), signer))


def _tamper_payload(k: Keys) -> str:
    header, _, signature = sign(k.ec).split(".")
    forged = b64(json.dumps(claims(iss=ISS, sub="Practitioner/admin")).encode())
    return bearer(f"{header}.{forged}.{signature}")


def _tamper_signature(k: Keys) -> str:
    header, payload, signature = sign(k.ec).split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return bearer(f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1:]}")


def attack(name: str, reason: str, make_header: Callable[[Keys], str | None]):
    """One row of the attack table: a readable id, the expected reason (regex), and the Authorization value."""
    return pytest.param(make_header, reason, id=name)


def token_with(**claim_overrides) -> Callable[[Keys], str]:
    """An attack that only changes claims of an otherwise valid ES384 token."""
    return lambda k: bearer(sign(k.ec, payload=claims(**claim_overrides)))


ATTACKS = [
    attack("alg-none", "alg 'none' is not allowed", _alg_none),
    attack("hs256-public-key-as-secret", "alg 'HS256' is not allowed", _hs256_with_public_key_as_secret),
    attack("rs256-signed-by-wrong-key", "InvalidSignatureError", lambda k: bearer(sign(k.other_rsa, "RS256", "rsa-1"))),
    attack("ps384-not-allowed-though-key-verifies", "alg 'PS384' is not allowed",
           lambda k: bearer(sign(k.rsa, "PS384", "rsa-1"))),
    attack("rs512-not-allowed-though-key-verifies", "alg 'RS512' is not allowed",
           lambda k: bearer(sign(k.rsa, "RS512", "rsa-1"))),
    attack("es256-header-on-p384-key", "does not fit alg ES256", _es256_header_on_p384_key),
    attack("rsa-signature-with-ec-kid", "does not fit alg RS384", lambda k: bearer(sign(k.rsa, "RS384", "ec-1"))),
    attack("expired", "expired", token_with(exp=NOW - 31, iat=NOW - 331)),
    attack("iat-in-future", r"future \(iat\)", token_with(iat=NOW + 31, exp=NOW + 331)),
    attack("nbf-in-future", r"not yet valid \(nbf\)", token_with(nbf=NOW + 31)),
    attack("lifetime-too-long", "lifetime", token_with(exp=NOW + 3601)),
    attack("exp-before-iat", "lifetime", token_with(exp=NOW - 1, iat=NOW + 1)),
    attack("exp-not-a-number", "'exp' claim is not a number", token_with(exp=str(NOW + 300))),
    attack("wrong-aud", "InvalidAudienceError", token_with(aud="https://cds.example.org/cds-services")),
    attack("aud-trailing-slash", "InvalidAudienceError", token_with(aud=AUD + "/")),
    attack("aud-array-without-ours", "InvalidAudienceError", token_with(aud=["https://a.example", "https://b.example"])),
    attack("unknown-iss", "is not trusted", token_with(iss="https://evil.example")),
    attack("unknown-kid", "no key with kid", lambda k: bearer(sign(k.ec, kid="no-such-kid"))),
    attack("jku-not-allow-listed", "jku is not allow-listed",
           lambda k: bearer(sign(k.ec, jku="https://evil.example/jwks.json"))),
    attack("typ-not-jwt", "'typ' is not JWT", lambda k: bearer(sign(k.ec, typ="at+jwt"))),
    attack("crit-header", "malformed JWT header|unsupported extensions",
           lambda k: bearer(sign(k.ec, crit=["exp"], exp=1))),
    *[attack(f"missing-{c}", f"no '{c}' claim|missing the \"{c}\" claim", token_with(**{c: None}))
      for c in ("iss", "aud", "exp", "iat", "jti")],
    attack("missing-kid", "no 'kid'", lambda k: bearer(sign(k.ec, kid=None))),
    attack("empty-jti", "'jti' claim is not a non-empty string", token_with(jti="")),
    attack("tampered-payload", "InvalidSignatureError", _tamper_payload),
    attack("tampered-signature", "InvalidSignatureError", _tamper_signature),
    attack("tenant-not-allow-listed", "tenant 'tenant-b' is not allow-listed",
           token_with(iss=TENANT_ISS, tenant="tenant-b")),
    attack("tenant-missing-when-listed", "tenant 'None' is not allow-listed", token_with(iss=TENANT_ISS)),
    attack("no-authorization-header", "no Authorization header", lambda k: None),
    attack("empty-authorization-header", "no Authorization header", lambda k: ""),
    attack("bearer-without-token", "not 'Bearer <token>'", lambda k: "Bearer"),
    attack("garbled-token", "not a compact JWS", lambda k: "Bearer not-a-jwt"),
    attack("garbled-segments", "malformed JWT header", lambda k: "Bearer a.b.c"),
    attack("bearer-scheme-missing", "not 'Bearer <token>'", lambda k: sign(k.ec)),
    attack("basic-scheme", "not 'Bearer <token>'", lambda k: f"Basic {sign(k.ec)}"),
    attack("extra-words", "not 'Bearer <token>'", lambda k: f"Bearer {sign(k.ec)} extra"),
]


@pytest.mark.parametrize(("make_header", "reason"), ATTACKS)
def test_attack_is_rejected_for_its_reason(keys, make_header, reason):
    fetcher = FakeFetcher({JKU: {"keys": [public_jwk(keys.ec, "ec-1", "ES384")]}})
    with pytest.raises(AuthError, match=reason):
        verifier(keys, fetcher).verify(make_header(keys), AUD)
    assert set(fetcher.calls) <= {JKU}


def test_jku_not_allow_listed_is_never_fetched(keys):
    fetcher = FakeFetcher()
    with pytest.raises(AuthError, match="jku is not allow-listed"):
        verifier(keys, fetcher).verify(bearer(sign(keys.ec, kid="new-kid", jku="https://evil.example/jwks")), AUD)
    assert fetcher.calls == []


def test_replayed_jti_is_rejected(keys):
    v = verifier(keys)
    token = bearer(sign(keys.ec))
    v.verify(token, AUD)
    with pytest.raises(AuthError, match="already used"):
        v.verify(token, AUD)


def test_same_jti_from_another_issuer_is_not_a_replay(keys):
    v = verifier(keys)
    v.verify(bearer(sign(keys.ec, payload=claims(jti="shared"))), AUD)
    v.verify(bearer(sign(keys.ec, payload=claims(iss=TENANT_ISS, tenant="tenant-a", jti="shared"))), AUD)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def replay_cache(request, tmp_path):
    """This process's memory, or the service's database (both backends)."""
    if request.param == "memory":
        yield MemoryReplayCache()
        return
    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite3'}" if request.param == "sqlite"
                       else request.getfixturevalue("postgres_url"))
    yield store
    store.close()


def test_replay_cache_forgets_expired_tokens(keys, replay_cache):
    clock = Clock()
    v = JwtVerifier([TrustedIssuer(ISS, jwks={"keys": [public_jwk(keys.ec, "ec-1")]})], clock=clock,
                    replay_cache=replay_cache)
    v.verify(bearer(sign(keys.ec, payload=claims(jti="reused"))), AUD)
    with pytest.raises(AuthError, match="already used"):
        v.verify(bearer(sign(keys.ec, payload=claims(jti="reused"))), AUD)
    clock.now += 400  # the first token has expired: its jti may be used again
    v.verify(bearer(sign(keys.ec, payload=claims(jti="reused", iat=clock.now, exp=clock.now + 300))), AUD)


def test_a_token_replayed_to_another_process_is_refused(keys, database_url):
    """Two verifiers on one database stand for two gunicorn workers (SQLite) or two instances (PostgreSQL): each
    has its own connections."""
    stores = [open_store(database_url) for _ in range(2)]
    first, second = (JwtVerifier([TrustedIssuer(ISS, jwks={"keys": [public_jwk(keys.ec, "ec-1")]})], clock=Clock(),
                                 replay_cache=store) for store in stores)
    token = bearer(sign(keys.ec))
    first.verify(token, AUD)
    with pytest.raises(AuthError, match="already used"):
        second.verify(token, AUD)
    for store in stores:
        store.close()


def test_short_rsa_key_is_rejected(keys):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    v = JwtVerifier([TrustedIssuer(ISS, jwks={"keys": [public_jwk(weak, "weak")]})], clock=Clock())
    token = hand_built({"alg": "RS384", "typ": "JWT", "kid": "weak"}, claims(),
                       lambda data: weak.sign(data, padding.PKCS1v15(), hashes.SHA384()))
    with pytest.raises(AuthError, match="shorter than 2048"):
        v.verify(bearer(token), AUD)


# --- jku fetching --------------------------------------------------------------------------------------------------

def rotating_verifier(fetcher: FakeFetcher, clock: Clock) -> JwtVerifier:
    return JwtVerifier([TrustedIssuer(JKU_ISS, jku=(ROTATING_JKU,))], fetch_jwks=fetcher, clock=clock)


def rotating_token(private_key, kid: str, clock: Clock, **header) -> str:
    payload = claims(iss=JKU_ISS, iat=clock.now, exp=clock.now + 300)
    return bearer(sign(private_key, "ES384", kid, payload, **header))


def test_jku_set_is_fetched_once_then_cached(keys):
    clock = Clock()
    fetcher = FakeFetcher({ROTATING_JKU: {"keys": [public_jwk(keys.ec, "k1", "ES384")]}})
    v = rotating_verifier(fetcher, clock)
    v.verify(rotating_token(keys.ec, "k1", clock, jku=ROTATING_JKU), AUD)
    v.verify(rotating_token(keys.ec, "k1", clock), AUD)  # no jku header: the allow-listed URL is used
    assert fetcher.calls == [ROTATING_JKU]


def test_unknown_kid_refetches_once_so_key_rotation_works(keys):
    clock = Clock()
    new_key = ec.generate_private_key(ec.SECP384R1())
    fetcher = FakeFetcher({ROTATING_JKU: {"keys": [public_jwk(keys.ec, "k1", "ES384")]}})
    v = rotating_verifier(fetcher, clock)
    v.verify(rotating_token(keys.ec, "k1", clock), AUD)
    fetcher.sets[ROTATING_JKU] = {"keys": [public_jwk(keys.ec, "k1"), public_jwk(new_key, "k2")]}
    clock.now += auth.JWKS_REFETCH_INTERVAL
    assert v.verify(rotating_token(new_key, "k2", clock), AUD)["iss"] == JKU_ISS
    assert fetcher.calls == [ROTATING_JKU, ROTATING_JKU]
    with pytest.raises(AuthError, match="no key with kid"):  # another unknown kid right away: rate-limited
        v.verify(rotating_token(new_key, "k3", clock), AUD)
    assert len(fetcher.calls) == 2


@pytest.mark.parametrize("error", [AuthError("HTTP 503"), ConnectionError("refused")], ids=["auth-error", "other"])
def test_fetch_failure_is_auth_error(keys, error):
    clock = Clock()
    fetcher = FakeFetcher(error=error)
    with pytest.raises(AuthError):
        rotating_verifier(fetcher, clock).verify(rotating_token(keys.ec, "k1", clock), AUD)
    assert fetcher.calls == [ROTATING_JKU]


def test_stale_set_is_refreshed_and_kept_only_while_the_url_fails(keys):
    clock = Clock()
    fetcher = FakeFetcher({ROTATING_JKU: {"keys": [public_jwk(keys.ec, "k1", "ES384")]}})
    v = rotating_verifier(fetcher, clock)
    v.verify(rotating_token(keys.ec, "k1", clock), AUD)
    clock.now += auth.JWKS_MAX_AGE
    fetcher.error = ConnectionError("down")
    v.verify(rotating_token(keys.ec, "k1", clock), AUD)  # outage: the last good set still serves k1
    clock.now += auth.JWKS_REFETCH_INTERVAL
    fetcher.error, fetcher.sets[ROTATING_JKU] = None, {"keys": []}  # k1 withdrawn
    with pytest.raises(AuthError, match="no key with kid"):
        v.verify(rotating_token(keys.ec, "k1", clock), AUD)
    assert len(fetcher.calls) == 3


# --- default fetcher against a local HTTP server -------------------------------------------------------------------

class _JwksHandler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {
        "/jwks": (200, b'{"keys": []}'),
        "/redirect": (302, b""),
        "/big": (200, b'{"keys": [], "pad": "' + b"x" * (auth.JWKS_MAX_BYTES + 10) + b'"}'),
        "/html": (200, b"<html>not json</html>"),
        "/no-keys": (200, b'{"items": []}'),
        "/error": (500, b'{"keys": []}'),
    }

    seen_authorization: ClassVar[list[str | None]] = []

    def do_GET(self):
        self.seen_authorization.append(self.headers.get("Authorization"))
        status, body = self.routes.get(self.path, (404, b""))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/jwks")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def jwks_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_default_fetcher_returns_the_jwk_set(jwks_server):
    assert fetch_jwks(f"{jwks_server}/jwks") == {"keys": []}


@pytest.mark.parametrize("path", ["/redirect", "/big", "/html", "/no-keys", "/error", "/missing"])
def test_default_fetcher_failures_are_auth_errors(jwks_server, path):
    with pytest.raises(AuthError):
        fetch_jwks(f"{jwks_server}{path}")


def test_default_fetcher_ignores_proxy_variables_and_netrc(jwks_server, tmp_path, monkeypatch):
    """As the prefetch path: a proxy named in the environment (nothing listens there) and a .netrc holding a
    password for the host change nothing; the set comes straight from the server, with no Authorization."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    _JwksHandler.seen_authorization.clear()
    assert fetch_jwks(f"{jwks_server}/jwks") == {"keys": []}
    assert _JwksHandler.seen_authorization == [None]


def test_default_fetcher_connection_refused_is_auth_error(jwks_server):
    with pytest.raises(AuthError):
        fetch_jwks("http://127.0.0.1:9/jwks")


# --- trust files ---------------------------------------------------------------------------------------------------

def test_sandbox_trust_file_loads_and_verifies_offline(keys):
    (issuer,) = load_issuers(str(SANDBOX_TRUST))
    assert issuer.iss == "https://sandbox.cds-hooks.org"
    assert issuer.jku == ("https://sandbox.cds-hooks.org/.well-known/jwks.json",)
    kid = issuer.jwks["keys"][0]["kid"]
    assert issuer.jwks == json.loads((CONFORMANCE_DIR / "sandbox.jwks.json").read_text(encoding="utf-8"))
    fetcher = FakeFetcher()
    v = JwtVerifier([issuer], fetch_jwks=fetcher, clock=Clock())
    forged = sign(keys.ec, "ES384", kid, claims(iss=issuer.iss), jku=issuer.jku[0])
    with pytest.raises(AuthError, match="InvalidSignatureError"):  # the kid is found inline: no network needed
        v.verify(bearer(forged), AUD)
    assert fetcher.calls == []


def _write_trust(tmp_path: Path, entries) -> str:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return str(path)


def test_load_issuers_reads_inline_and_relative_files(tmp_path, keys):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ehr.json").write_text(json.dumps({"keys": [public_jwk(keys.ec, "ec-1")]}), encoding="utf-8")
    issuers = load_issuers(_write_trust(tmp_path, [
        {"iss": ISS, "jwks_file": "keys/ehr.json", "tenants": ["t1"]},
        {"iss": JKU_ISS, "jwks": {"keys": []}, "jku": [ROTATING_JKU, "http://localhost:8080/jwks"]},
    ]))
    assert [i.iss for i in issuers] == [ISS, JKU_ISS]
    assert issuers[0].jwks["keys"][0]["kid"] == "ec-1"
    assert issuers[0].tenants == ("t1",)
    assert issuers[1].jku == (ROTATING_JKU, "http://localhost:8080/jwks")


@pytest.mark.parametrize("entries", [
    pytest.param([{"iss": ISS}], id="no-keys"),
    pytest.param([{"jku": [JKU]}], id="no-iss"),
    pytest.param([{"iss": ISS, "jku": ["http://ehr.example.org/jwks"]}], id="jku-plain-http"),
    pytest.param([{"iss": ISS, "jku": JKU}], id="jku-not-array"),
    pytest.param([{"iss": ISS, "jwks": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}}], id="secret-key"),
    pytest.param([{"iss": ISS, "jwks": {"keys": [{"kty": "EC", "kid": "p", "d": "x"}]}}], id="private-key"),
    pytest.param([{"iss": ISS, "jku": [JKU], "tenant": ["t"]}], id="unknown-member"),
    pytest.param([{"iss": ISS, "jwks_file": "missing.json"}], id="missing-jwks-file"),
    pytest.param({"iss": ISS, "jku": [JKU]}, id="not-an-array"),
])
def test_load_issuers_rejects_bad_entries(tmp_path, entries):
    with pytest.raises(ValueError):
        load_issuers(_write_trust(tmp_path, entries))


def test_load_issuers_rejects_empty_and_missing_paths(tmp_path):
    for value in ("", "  ", str(tmp_path / "absent.json")):
        with pytest.raises(ValueError):
            load_issuers(value)


def test_duplicate_issuers_are_rejected():
    issuer = TrustedIssuer(ISS, jku=(JKU,))
    with pytest.raises(ValueError, match="twice"):
        JwtVerifier([issuer, issuer])
