"""Shared fixtures: the app on the shipped knowledge, its test client, the knowledge itself, and the app served
on loopback."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from fhirsvc import create_app
from fhirsvc.knowledge import Knowledge, get_knowledge

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "fhirsvc" / "knowledge" / "data"  # the shipped knowledge, inside the package
CONFORMANCE_DIR = ROOT / "tests" / "conformance"  # CDS Hooks payloads from the spec and the sandbox (README)


def error_message(body: dict) -> str:
    """What an error answer says (every route answers errors as an OperationOutcome): its first issue."""
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]["diagnostics"]


def error_fields(body: dict) -> dict[str, list[str]]:
    """The bad fields an error answer names: each issue with an ``expression`` (the field's path), by path."""
    assert body["resourceType"] == "OperationOutcome", body
    fields: dict[str, list[str]] = {}
    for issue in body["issue"][1:]:
        for path in issue.get("expression") or ["_schema"]:
            fields.setdefault(path, []).append(issue["diagnostics"])
    return fields


WAIT = 60.0  # seconds a test waits for a condition at most: a bound against a hang, not a speed


def wait_until(condition: Callable[[], object], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds have passed; whether it held. Tests wait on what
    they need to see (so many answers, a worker replaced), never for a fixed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(0.02)
    return True


@contextmanager
def serving(app) -> Iterator[str]:
    """The app on a real HTTP server on 127.0.0.1 (a port chosen by the system), in a thread, until the block
    ends; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _feedback_store_outside_the_checkout(tmp_path_factory):
    """Apps built in tests keep their state (and the knowledge validation cache) in temporary files, not in
    the checkout's var/, and have a public base URL (authentication, on by default, needs one)."""
    os.environ.pop("FHIRSVC_FEEDBACK_DB", None)
    os.environ["FHIRSVC_DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('feedback') / 'default.sqlite3'}"
    os.environ.setdefault("FHIRSVC_PUBLIC_BASE_URL", "https://cds.example.org")
    os.environ["FHIRSVC_VALIDATION_CACHE"] = str(tmp_path_factory.mktemp("validation") / "validated.txt")


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL cluster for the session (bench/pgcluster.py). Without PostgreSQL's binaries the
    tests that need it are skipped with the install hint (under CI, which installs them, they fail)."""
    from bench.pgcluster import INSTALL_HINT, find_bin_dir, throwaway_cluster

    if find_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with throwaway_cluster() as cluster:
        yield cluster


_databases = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    """A new, empty database in the session's cluster."""
    return postgres_cluster.create_database(f"test{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The URL of a new, empty database of each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The app on the shipped knowledge only (an FHIRSVC_KNOWLEDGE_PATH in the environment is ignored)."""
    feedback = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "FEEDBACK_DB": str(feedback)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def knowledge(app) -> Knowledge:
    return get_knowledge(app)
