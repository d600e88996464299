"""Authentication on every CDS route of the running app: a valid EHR JWT passes; anything else is a 401
that says nothing about why, still with CORS headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from bench.workload import free_port, served, wait_for_workers
from fhirsvc import create_app
from fhirsvc.errors import ConfigError
from tests.cds.conftest import SERVICE, order_request
from tests.conftest import ROOT

BASE = "https://cds.example.org"
ISSUER = "https://ehr.example.org"


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


def trust_file(directory: Path, key) -> Path:
    """A trust file naming ISSUER with the public half of ``key`` (kid k1)."""
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update(kid="k1", alg="ES384", use="sig")
    (directory / "jwks.json").write_text(json.dumps({"keys": [public]}))
    trust = directory / "trust.json"
    trust.write_text(json.dumps([{"iss": ISSUER, "jwks_file": "jwks.json"}]))
    return trust


@pytest.fixture
def secured_app(tmp_path, key):
    return create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "JWT_ISSUERS": str(trust_file(tmp_path, key)),
                       "PUBLIC_BASE_URL": BASE, "FEEDBACK_DB": str(tmp_path / "f.db")})


@pytest.fixture
def secured(secured_app):
    return secured_app.test_client()


def token(key, audience: str, **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})


def cds_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every CDS route of the app's URL map, with a service id filled in; CORS preflight
    (OPTIONS, answered without credentials as browsers send none) and HEAD aside."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/cds-services"):
            path = rule.rule.replace("<service_id>", SERVICE.rsplit("/", 1)[-1])
            routes += [(method, path) for method in sorted(rule.methods - {"OPTIONS", "HEAD"})]
    return routes


def test_every_cds_route_of_the_url_map_needs_a_token(secured_app, key):
    client = secured_app.test_client()
    routes = cds_routes(secured_app)
    assert {path for _, path in routes} >= {"/cds-services", SERVICE, SERVICE + "/feedback",
                                            SERVICE + "/feedback/stats"}
    for method, path in routes:
        refused = client.open(path, method=method, json={} if method == "POST" else None)
        assert refused.status_code == 401, (method, path)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        allowed = client.open(path, method=method, json={} if method == "POST" else None,
                              headers={"Authorization": f"Bearer {token(key, BASE + path)}"})
        assert allowed.status_code != 401, (method, path)


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
    assert response.get_json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "authentication required"}]}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_replayed_token_is_refused(secured, key):
    header = {"Authorization": f"Bearer {token(key, BASE + SERVICE)}"}
    assert secured.post(SERVICE, json=order_request(), headers=header).status_code == 200
    assert secured.post(SERVICE, json=order_request(), headers=header).status_code == 401


def test_a_token_replayed_to_another_worker_is_refused(tmp_path, key):
    """``fhirsvc serve`` with 2 workers; one token sent 20 times at once on new connections reaches both workers (with a
    replay cache per worker it would be accepted once by each): it is accepted exactly once. The workers are sync
    ones here (a configuration file of the test's own): a sync worker busy with one call accepts no other, so the
    calls spread over both, where a threaded worker may take all 20 itself."""
    port = free_port()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text('worker_class = "sync"\n')
    base = f"http://127.0.0.1:{port}"
    env = {"FHIRSVC_AUTH": "required", "FHIRSVC_JWT_ISSUERS": str(trust_file(tmp_path, key)),
           "FHIRSVC_PUBLIC_BASE_URL": BASE, "FHIRSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
           "FHIRSVC_KNOWLEDGE_PATH": ""}
    with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "2", "--threads", "1", "--config", str(config)],
                f"{base}/healthz", tmp_path / "server.log", env, cwd=ROOT) as server:
        wait_for_workers(server.pid, 2)
        header = {"Authorization": f"Bearer {token(key, BASE + SERVICE)}", "Connection": "close"}
        with ThreadPoolExecutor(max_workers=10) as pool:  # at once: a sync worker busy with one leaves the next
            statuses = list(pool.map(lambda _: requests.post(base + SERVICE, json=order_request(), headers=header,
                                                             timeout=10).status_code, range(20)))
    assert sorted(statuses) == [200] + [401] * 19
    log = (tmp_path / "server.log").read_text()
    assert "sync worker(s)" in log  # the settings in effect, as fhirsvc serve logs them
    workers = {line.split("] [")[1] for line in log.splitlines()
               if "CDS request refused" in line or "fhirsvc.cds.calls" in line}
    assert len(workers) == 2, "the requests did not reach both workers"


def test_the_sandbox_development_trust_file_loads(tmp_path):
    from tests.conftest import ROOT

    app = create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "JWT_ISSUERS": str(ROOT / "fixtures" / "trust" / "sandbox-dev.json"),
                      "PUBLIC_BASE_URL": "http://127.0.0.1:8080"})
    assert app.test_client().get("/cds-services").status_code == 401


def test_authentication_without_a_public_base_url_refuses_to_start(tmp_path, key):
    """Else the audience would be built from the caller's Host header: a token minted for another service
    (aud https://other.example/cds-services/...) would pass with ``Host: other.example``."""
    with pytest.raises(ConfigError, match="FHIRSVC_PUBLIC_BASE_URL"):
        create_app({"KNOWLEDGE_PATH": "", "AUTH": "required", "JWT_ISSUERS": str(trust_file(tmp_path, key)),
                    "PUBLIC_BASE_URL": "", "FEEDBACK_DB": str(tmp_path / "f.db")})


def test_the_audience_is_the_configured_url_whatever_the_host_header(secured, key):
    other = "https://other.example" + SERVICE
    response = secured.post(SERVICE, json=order_request(), headers={
        "Host": "other.example", "X-Forwarded-Proto": "https", "Authorization": f"Bearer {token(key, other)}"})
    assert response.status_code == 401


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "cannot read trust file"),
    ('{"iss": "x"}', "expected a JSON array"),
    ('[{"iss": "https://ehr.example.org", "jwks_file": "missing.json"}]', "cannot read"),
])
def test_a_bad_trust_file_stops_fhirsvc_serve_with_a_message_not_a_traceback(tmp_path, content, message):
    trust = tmp_path / "trust.json"
    trust.write_text(content)
    env = {**os.environ, "FHIRSVC_AUTH": "required", "FHIRSVC_JWT_ISSUERS": str(trust),
           "FHIRSVC_PUBLIC_BASE_URL": BASE, "FHIRSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}",
           "FHIRSVC_KNOWLEDGE_PATH": ""}
    done = subprocess.run([sys.executable, "-m", "fhirsvc.cli", "serve", "--port", str(free_port())], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
