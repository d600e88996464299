"""Authentication on every CDS route of the running app: a valid EHR JWT passes; anything else is a 401
that says nothing about why, still with CORS headers."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fhirsvc import create_app
from tests.cds.conftest import SERVICE, order_request

BASE = "https://cds.example.org"
ISSUER = "https://ehr.example.org"


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def secured(tmp_path, key):
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update(kid="k1", alg="ES384", use="sig")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public]}))
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps([{"iss": ISSUER, "jwks_file": "jwks.json"}]))
    app = create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "JWT_ISSUERS": str(trust),
                      "PUBLIC_BASE_URL": BASE, "FEEDBACK_DB": str(tmp_path / "f.db")})
    return app.test_client()


def token(key, audience: str, **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})


def test_a_valid_token_is_accepted_on_every_route(secured, key):
    discovery = secured.get("/cds-services", headers={"Authorization": f"Bearer {token(key, BASE + '/cds-services')}"})
    assert discovery.status_code == 200
    call = secured.post(SERVICE, json=order_request(),
                        headers={"Authorization": f"Bearer {token(key, BASE + SERVICE)}"})
    assert call.status_code == 200
    feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}
    posted = secured.post(SERVICE + "/feedback", json=feedback,
                          headers={"Authorization": f"Bearer {token(key, BASE + SERVICE + '/feedback')}"})
    assert posted.status_code == 200


ATTACKS = {
    "no-header": lambda key: None,
    "not-bearer": lambda key: "Basic dXNlcjpwYXNz",
    "garbage": lambda key: "Bearer not.a.jwt",
    "audience-of-another-endpoint": lambda key: f"Bearer {token(key, BASE + '/cds-services')}",
    "expired": lambda key: "Bearer " + token(key, BASE + SERVICE, iat=int(time.time()) - 900,
                                             exp=int(time.time()) - 600),
    "unknown-issuer": lambda key: f"Bearer {token(key, BASE + SERVICE, iss='https://evil.example')}",
    "signed-by-another-key": lambda key: f"Bearer {token(ec.generate_private_key(ec.SECP384R1()), BASE + SERVICE)}",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_every_failure_is_a_401_without_detail(secured, key, attack):
    header = ATTACKS[attack](key)
    response = secured.post(SERVICE, json=order_request(), headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Unauthorized", "message": "authentication required"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_replayed_token_is_refused(secured, key):
    header = {"Authorization": f"Bearer {token(key, BASE + SERVICE)}"}
    assert secured.post(SERVICE, json=order_request(), headers=header).status_code == 200
    assert secured.post(SERVICE, json=order_request(), headers=header).status_code == 401


def test_the_sandbox_development_trust_file_loads(tmp_path):
    from tests.conftest import ROOT

    app = create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "JWT_ISSUERS": str(ROOT / "fixtures" / "trust" / "sandbox-dev.json")})
    assert app.test_client().get("/cds-services").status_code == 401
