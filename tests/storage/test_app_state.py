"""The service on each backend, through its routes: /healthz names the database; while the database is lost (a
SQLite file locked by another writer, a PostgreSQL database made read-only, a PostgreSQL server stopped as by a
crash) order-sign still answers its cards, feedback and its statistics answer 503 with a CDS JSON error (never a
500), /healthz says the database is unavailable and which; all of it recovers by itself."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from fhirsvc import create_app
from fhirsvc.storage import StorageError, get_store
from tests.cds.conftest import SERVICE, order_request
from tests.storage.conftest import run_sql

FEEDBACK = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}


@pytest.fixture
def make_app():
    """Build apps on a database URL; their stores are closed at the end."""
    stores = []

    def make(url: str):
        app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": url,
                          "DATABASE_TIMEOUT": 0.5})
        stores.append(get_store(app))
        return app

    yield make
    for store in stores:
        store.close()


def wait_for_health(client, status: str, timeout: float = 30.0) -> dict:
    """GET /healthz until its status is ``status`` (bounded); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        health = client.get("/healthz").get_json()
        if health["status"] == status or time.monotonic() > deadline:
            return health
        time.sleep(0.1)


def test_healthz_names_the_database(make_app, database_url):
    app = make_app(database_url)
    health = app.test_client().get("/healthz").get_json()
    assert health["status"] == "ok"
    backend = "sqlite" if database_url.startswith("sqlite:") else "postgresql"
    assert health["database"] == {"backend": backend, "database": database_url, "status": "ok", "cardNotesFailed": 0,
                                  "jtiInMemory": 0}


def check_service_without_its_database(client) -> None:
    """Order-sign answers its cards (the note counted as failed); feedback and stats answer 503 in CDS JSON."""
    before = client.get("/healthz").get_json()["database"]["cardNotesFailed"]
    body = order_request()
    body["context"]["draftOrders"]["entry"][0]["resource"]["id"] = f"mr-{uuid.uuid4()}"  # new cards to note
    call = client.post(SERVICE, json=body)
    assert call.status_code == 200
    cards = call.get_json()["cards"]
    assert cards and all(card.get("uuid") for card in cards)
    posted = client.post(SERVICE + "/feedback", json=FEEDBACK)
    assert posted.status_code == 503
    assert posted.get_json() == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "transient",
        "diagnostics": "the service's database is unavailable: the feedback could not be completed; try again later"}]}
    health = client.get("/healthz")
    assert health.status_code == 200
    database = health.get_json()["database"]
    assert health.get_json()["status"] == "degraded" and database["status"] == "unavailable" and database["error"]
    assert database["cardNotesFailed"] == before + 1


@pytest.mark.slow
def test_the_service_without_its_database_and_back(make_app, database_url, outage, caplog):
    caplog.set_level(logging.INFO, logger="fhirsvc.storage")
    app = make_app(database_url)
    client = app.test_client()
    assert client.post(SERVICE, json=order_request()).status_code == 200
    with outage():
        check_service_without_its_database(client)
        stats = client.get(SERVICE + "/feedback/stats")
        if database_url.startswith("postgresql"):
            assert stats.status_code == 503 and stats.get_json()["issue"][0]["code"] == "transient"
        else:  # another writer's lock does not stop readers
            assert stats.status_code == 200
    assert wait_for_health(client, "ok")["database"]["status"] == "ok"
    issued = client.post(SERVICE, json=order_request())  # noted again (a crash of PostgreSQL may lose notes)
    get_store(app).write_notes()  # the note writer's work, now
    on_issued = {"feedback": [{**FEEDBACK["feedback"][0], "card": issued.get_json()["cards"][0]["uuid"]}]}
    assert client.post(SERVICE + "/feedback", json=on_issued).get_json() == {"received": 1, "stored": 1}
    assert client.get(SERVICE + "/feedback/stats").get_json()["total"] == 1
    assert "unavailable for the issued-cards note" in caplog.text


def test_a_read_only_postgresql_database(make_app, postgres_url):
    app = make_app(postgres_url)  # the schema is created; the workers' connections are opened on first use
    run_sql(postgres_url, f"ALTER DATABASE {postgres_url.rsplit('/', 1)[1]} SET default_transaction_read_only = on")
    check_service_without_its_database(app.test_client())


def test_an_unreachable_database_stops_start_up(make_app):
    from bench.workload import free_port

    url = f"postgresql://fhirsvc:secret-password@127.0.0.1:{free_port()}/fhirsvc"
    with pytest.raises(StorageError) as refused:
        make_app(url)
    message = str(refused.value)
    assert message.startswith(f"cannot use the database postgresql://fhirsvc@127.0.0.1:{url.split(':')[3]}")
    assert "secret-password" not in message


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///", "sqlite:relative.db"])
def test_an_unknown_database_url_stops_start_up(make_app, url):
    with pytest.raises(StorageError, match="FHIRSVC_DATABASE_URL"):
        make_app(url)
