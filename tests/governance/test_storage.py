"""What the governance view needs of the store, on both backends: a CDS call notes each card's drug beside its
topic and indicator, feedback keeps the rule it was recorded with, and a database of schema version 1 is migrated
in place (its cards and feedback kept, their drug unknown)."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta

from fhirsvc import create_app
from fhirsvc.storage import SCHEMA_VERSION, get_store, open_store
from fhirsvc.storage.base import FeedbackItem
from tests.cds.conftest import SERVICE, order_request
from tests.storage.conftest import run_sql

SERVICE_ID = SERVICE.rsplit("/", 1)[1]


def test_a_cds_call_notes_the_drug_of_each_card(database_url):
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "DATABASE_URL": database_url, "AUTH": "off"})
    response = app.test_client().post(SERVICE, json=order_request())
    cards = response.get_json()["cards"]
    assert response.status_code == 200 and cards
    store = get_store(app)
    store.write_notes()  # the note writer's work, now
    rows = run_sql(database_url, "SELECT card, topic, indicator, drug FROM issued_cards WHERE service = ?",
                   SERVICE_ID)
    assert sorted(rows) == sorted((c["uuid"], c["source"]["topic"]["code"], c["indicator"], "anakinra")
                                  for c in cards)
    store.record(SERVICE_ID, [FeedbackItem(cards[0]["uuid"], "overridden", datetime.now(UTC))])
    assert run_sql(database_url, "SELECT drug FROM feedback") == [("anakinra",)]  # the rule, kept with the item
    now = datetime.now(UTC)
    counts = store.governance(SERVICE_ID, now.date() - timedelta(days=1), now.date() + timedelta(days=1))
    assert {(row.topic, row.drug) for row in counts.issued} == {(c["source"]["topic"]["code"], "anakinra")
                                                                for c in cards}
    assert [(row.drug, row.outcome, row.items) for row in counts.feedback.rows] == [("anakinra", "overridden", 1)]


def test_a_version_1_database_is_migrated(database_url):
    backend = importlib.import_module("fhirsvc.storage." + ("sqlite" if database_url.startswith("sqlite")
                                                            else "postgres"))
    for statement in ["CREATE TABLE fhirsvc_schema (version integer NOT NULL)", *backend.MIGRATIONS[1],
                      "INSERT INTO fhirsvc_schema (version) VALUES (1)"]:
        run_sql(database_url, statement)
    run_sql(database_url, "INSERT INTO issued_cards (service, card, topic, indicator, suggestions, issued_at)"
                          " VALUES ('s', 'c', 'DOSEH', 'warning', '[]', '2026-11-20T10:00:00.000000Z')")
    store = open_store(database_url)
    assert run_sql(database_url, "SELECT version FROM fhirsvc_schema") == [(SCHEMA_VERSION,)] == [(5,)]
    store.record("s", [FeedbackItem("c", "overridden", datetime(2026, 11, 20, 11, tzinfo=UTC))])
    counts = store.governance("s", date(2026, 11, 20), date(2026, 11, 20))
    assert [(r.topic, r.indicator, r.drug, r.cards, r.with_feedback) for r in counts.issued] == [
        ("DOSEH", "warning", None, 1, 1)]
    assert store.stats("s")["byTopic"][0]["overridden"] == 1
    store.close()
