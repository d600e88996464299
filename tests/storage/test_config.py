"""FHIRSVC_DATABASE_URL: its default, the deprecated FHIRSVC_FEEDBACK_DB, and a database that cannot be used at
start-up (the service refuses to start, saying which database and why)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from bench.workload import free_port
from fhirsvc.config import load_config
from tests.conftest import ROOT


def test_the_default_is_the_sqlite_file_under_var():
    assert load_config(environ={})["DATABASE_URL"] == f"sqlite:///{ROOT / 'var' / 'feedback.sqlite3'}"


def test_feedback_db_is_a_deprecated_alias(caplog):
    caplog.set_level(logging.WARNING, logger="fhirsvc.config")
    assert load_config(environ={"FHIRSVC_FEEDBACK_DB": "/srv/f.db"})["DATABASE_URL"] == "sqlite:////srv/f.db"
    assert "FEEDBACK_DB is deprecated" in caplog.text
    both = {"FHIRSVC_FEEDBACK_DB": "/srv/f.db", "FHIRSVC_DATABASE_URL": "postgresql://u@db/fhirsvc"}
    assert load_config(environ=both)["DATABASE_URL"] == "postgresql://u@db/fhirsvc"  # the new name wins
    # a mapping given to create_app overrides the environment, whichever name either uses
    assert load_config({"FEEDBACK_DB": "x.db"}, environ=both)["DATABASE_URL"] == "sqlite:///x.db"
    assert load_config({"DATABASE_URL": "sqlite:///y.db"},
                       environ={"FHIRSVC_FEEDBACK_DB": "/srv/f.db"})["DATABASE_URL"] == "sqlite:///y.db"


@pytest.mark.slow
def test_serve_refuses_to_start_without_its_database():
    url = f"postgresql://fhirsvc:hunter2@127.0.0.1:{free_port()}/fhirsvc"
    env = {**os.environ, "FHIRSVC_DATABASE_URL": url, "FHIRSVC_KNOWLEDGE_PATH": "", "FHIRSVC_AUTH": "off"}
    done = subprocess.run([sys.executable, "-m", "fhirsvc.cli", "serve", "--port", str(free_port())], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"cannot use the database postgresql://fhirsvc@127.0.0.1:{url.rsplit(':', 1)[1]}" in done.stderr
    assert "Connection refused" in done.stderr or "connection" in done.stderr.lower()
    assert "hunter2" not in done.stderr + done.stdout
