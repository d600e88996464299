"""The app factory, configuration precedence, /healthz and error bodies."""

from __future__ import annotations

from http import HTTPStatus

from fhirsvc import create_app
from fhirsvc.config import DEFAULTS, knowledge_dirs, load_config
from tests.conftest import KNOWLEDGE_DIR


def test_healthz_reports_knowledge_version_and_counts(client, knowledge):
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["knowledge"]["version"] == knowledge.version
    assert len(knowledge.version) == 12
    assert body["knowledge"]["resources"]["MedicationKnowledge"] == 1
    assert body["knowledge"]["resources"]["ValueSet"] >= 19
    assert body["knowledge"]["total"] == sum(body["knowledge"]["resources"].values()) == len(knowledge.resources)


def test_config_precedence_defaults_then_environment_then_mapping():
    environ = {"FHIRSVC_LOG_LEVEL": "DEBUG", "FHIRSVC_KNOWLEDGE_PATH": "/from/env", "UNRELATED": "x"}
    assert load_config(environ={})["LOG_LEVEL"] == DEFAULTS["LOG_LEVEL"]
    assert load_config(environ=environ)["LOG_LEVEL"] == "DEBUG"
    config = load_config({"KNOWLEDGE_PATH": "/from/mapping"}, environ=environ)
    assert config["KNOWLEDGE_PATH"] == "/from/mapping"
    assert config["LOG_LEVEL"] == "DEBUG"
    assert "UNRELATED" not in config


def test_knowledge_path_lists_extra_directories_after_the_shipped_one():
    config = load_config({"KNOWLEDGE_PATH": "/a:/b:"}, environ={})
    assert [str(p) for p in knowledge_dirs(config)] == [str(KNOWLEDGE_DIR), "/a", "/b"]


def test_mapping_overrides_environment_in_create_app(monkeypatch):
    monkeypatch.setenv("FHIRSVC_LOG_LEVEL", "DEBUG")
    assert create_app({"KNOWLEDGE_PATH": ""}).config["LOG_LEVEL"] == "DEBUG"
    assert create_app({"KNOWLEDGE_PATH": "", "LOG_LEVEL": "WARNING"}).config["LOG_LEVEL"] == "WARNING"


def test_unknown_route_answers_an_operation_outcome(client):
    response = client.get("/no/such/route")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


def test_wrong_method_answers_405_with_allow(client):
    response = client.post("/healthz")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert "GET" in response.headers["Allow"]
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_unexpected_error_is_a_500_without_traceback():
    app = create_app({"KNOWLEDGE_PATH": ""})

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert b"secret detail" not in response.data and b"Traceback" not in response.data
    assert response.get_json()["issue"][0]["diagnostics"] == "internal error"
