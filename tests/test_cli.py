"""``fhirsvc validate``: the shipped knowledge is clean; each kind of defect is reported with its file.
``fhirsvc serve``: its log."""

from __future__ import annotations

import json
import os
import sys

import pytest
import requests

from bench.workload import free_port, served
from fhirsvc.cli import main
from tests.cds.conftest import order_request
from tests.conftest import ROOT
from tests.knowledge.test_loader import BROKEN


@pytest.fixture(autouse=True)
def _no_extra_knowledge(monkeypatch):
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_PATH", raising=False)
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)


def test_shipped_knowledge_validates_clean(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out
    assert "ERROR" not in out


def test_structural_defect_fails_with_file_element_and_message(capsys):
    assert main(["validate", str(BROKEN / "unknown-element")]) == 1
    out = capsys.readouterr().out
    assert "ERROR: " in out and "Medication-test-drug.json: Medication.strenght: unknown element" in out


def test_defect_that_only_the_independent_validator_sees_fails(tmp_path, capsys):
    resource = {"resourceType": "Medication", "id": "test-drug", "status": "active",
                "ingredient": [{"item": {"concept": {"text": "x"}}, "isActive": "yes"}]}
    (tmp_path / "Medication-test-drug.json").write_text(json.dumps(resource))
    assert main(["validate", str(tmp_path)]) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    assert errors and all("Medication-test-drug.json" in line for line in errors)
    assert any("isActive" in line for line in errors)


def test_serve_writes_one_log_line_per_cds_call(tmp_path):
    """Under gunicorn the service's own log lines reach its output: the call line, and nothing about the
    patient (the patient id is not in it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FHIRSVC_AUTH": "off", "FHIRSVC_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
           "FHIRSVC_KNOWLEDGE_PATH": ""}
    log = tmp_path / "server.log"
    with served([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1"], f"{base}/healthz", log, env, cwd=ROOT, timeout=30):
        body = order_request()
        body["context"]["patientId"] = "patient-7f3a"
        response = requests.post(f"{base}/cds-services/medication-safety-order-sign", json=body, timeout=10)
        assert response.status_code == 200
    calls = [json.loads(line.split("fhirsvc.cds.calls: ", 1)[1]) for line in log.read_text().splitlines()
             if "fhirsvc.cds.calls: " in line]
    assert calls == [{"service": "medication-safety-order-sign", "status": 200, "hookInstance": body["hookInstance"],
                      "hook": "order-sign", "cards": len(response.json()["cards"]), "ms": calls[0]["ms"]}]
    assert "CDS Hooks authentication is OFF" in log.read_text()
    assert "patient-7f3a" not in log.read_text()
