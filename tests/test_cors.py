"""CORS (``fhirsvc/cors.py``) with an allow-list of origins: an allowed origin is named back and the answer varies by
Origin; another origin, or none, gets no CORS header."""

from __future__ import annotations

import pytest

from fhirsvc import create_app

ALLOWED = "https://ehr.example"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    state = tmp_path_factory.mktemp("cors") / "state.sqlite3"
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": f"sqlite:///{state}",
                      "CORS_ORIGINS": f" {ALLOWED} , https://other.example"})
    return app.test_client()


def test_an_allowed_origin_is_named_back(client):
    response = client.get("/fhir/R4/MedicationKnowledge/anakinra", headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Vary"] == "Origin"
    assert response.headers["Access-Control-Expose-Headers"] == "ETag, Last-Modified, Location, Content-Location"


@pytest.mark.parametrize("headers", [{"Origin": "https://elsewhere.example"}, {}], ids=["other origin", "no origin"])
def test_another_origin_gets_no_cors_header(client, headers):
    response = client.get("/fhir/R4/MedicationKnowledge/anakinra", headers=headers)
    assert response.status_code == 200
    assert not [name for name, _ in response.headers if name.startswith("Access-Control-")]
    assert "Vary" not in response.headers
