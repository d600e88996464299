"""Odd values against the real databases (a SQLite file; a database of a real PostgreSQL server): a value the
database refuses is a bad request, never "database unavailable"; it never sends the ``jti`` check to this
process's memory, so a token accepted by one instance is still refused by another; feedback is bounded before it
reaches the database; and feedback on cards the service never issued is answered but not counted."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fhirsvc import create_app
from fhirsvc.governance.report import governance_report, report_document
from fhirsvc.knowledge import get_knowledge
from fhirsvc.storage import get_store, open_store
from fhirsvc.storage.base import StoreRefused
from fhirsvc.storage.replay import ReplayUnrecordable
from tests.cds.conftest import SERVICE, order_request
from tests.cds.test_app_auth import BASE, token, trust_file
from tests.conftest import error_fields, error_message
from tests.storage.test_store import NOW, issue, item

SERVICE_ID = SERVICE.rsplit("/", 1)[1]
FEEDBACK = SERVICE + "/feedback"


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


def refused_jti_values(database_url: str) -> list:
    """Values the database refuses as a jti: of a type no driver binds (both), and on PostgreSQL a value too large
    for the index of used jti values (as a 3,000-character jti was) and a NUL."""
    values: list = [{"not": "text"}]
    if database_url.startswith("postgresql"):
        values += [base64.b64encode(os.urandom(3000)).decode(), "a\x00b"]
    return values


def test_a_value_the_database_refuses_is_no_outage(database_url):
    store, other = open_store(database_url), open_store(database_url)  # two workers, or two instances
    try:
        for value in refused_jti_values(database_url):
            with pytest.raises(ReplayUnrecordable):
                store.first_use("iss", value, NOW + 300, NOW)
        # not taken for an outage: the jti check stays on the database, nothing waits in memory to be retried
        assert store._hot_path_open() and not store._pending_jti
        assert store.health()["status"] == "ok"
        assert store.first_use("iss", "accepted-by-one", NOW + 300, NOW)
        assert not other.first_use("iss", "accepted-by-one", NOW + 300, NOW + 1)
        issue(store, "card-1", service_id=SERVICE_ID)
        with pytest.raises(StoreRefused) as refused:
            store.record(SERVICE_ID, [item("card-1", user_comment={"not": "text"})])  # type: ignore[arg-type]
        assert refused.value.status == 400
        if database_url.startswith("postgresql"):
            with pytest.raises(StoreRefused):
                store.record(SERVICE_ID, [item("card-1", user_comment="a\x00b")])
        assert store.record(SERVICE_ID, [item("card-1")]) == 1  # nothing of the refused requests was stored
        assert store.health()["status"] == "ok"
    finally:
        store.close()
        other.close()


@pytest.fixture
def make_app(tmp_path, key, database_url):
    """An app (one worker, or one instance) with CDS authentication on, its state in the test's database."""
    trust = trust_file(tmp_path, key)

    def make():
        return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "required", "JWT_ISSUERS": str(trust),
                           "PUBLIC_BASE_URL": BASE, "DATABASE_URL": database_url})

    return make


def post(client, key, route: str, body, **claims):
    return client.post(route, json=body, headers={"Authorization": f"Bearer {token(key, BASE + route, **claims)}"})


def test_odd_jti_values_are_refused_and_a_replay_is_refused_across_instances(make_app, key):
    first, second = make_app(), make_app()
    a, b = first.test_client(), second.test_client()
    for jti in ["j" * 257, base64.b64encode(os.urandom(3000)).decode(), "a\x00b", "\ud800"]:
        answer = post(a, key, SERVICE, order_request(), jti=jti)
        assert answer.status_code == 401, jti[:20]
        assert answer.get_json()["issue"][0]["code"] == "login"
    assert post(a, key, SERVICE, order_request(), jti="j" * 256).status_code == 200  # the bound itself is taken
    bearer = token(key, BASE + SERVICE)
    headers = {"Authorization": f"Bearer {bearer}"}
    assert a.post(SERVICE, json=order_request(), headers=headers).status_code == 200
    assert b.post(SERVICE, json=order_request(), headers=headers).status_code == 401, "replayed to another instance"
    health = a.get("/healthz").get_json()
    assert health["status"] == "ok" and health["database"]["status"] == "ok"
    assert health["database"]["jtiInMemory"] == 0  # every jti accepted went to the database
    assert get_store(first)._hot_path_open() and not get_store(first)._pending_jti


def feedback_item(card: str, when: datetime | None = None, **extra) -> dict:
    when = when or datetime.now(UTC) - timedelta(minutes=1)
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": when.isoformat().replace("+00:00", "Z"),
            **extra}


def test_odd_feedback_is_refused_naming_the_field_before_the_database(make_app, key):
    app = make_app()
    client = app.test_client()
    cases = [
        ({"feedback": [feedback_item("c" * 8192)]}, 400, ("0", "card")),
        ({"feedback": [feedback_item("card\x00")]}, 400, ("0", "card")),
        ({"feedback": [feedback_item("c", overrideReason={"userComment": "fine\x00"})]}, 400,
         ("0", "overrideReason", "userComment")),
        ({"feedback": [feedback_item("c", overrideReason={"reason": {"system": "s", "code": "x" * 300}})]}, 400,
         ("0", "overrideReason", "reason", "code")),
        ({"feedback": [feedback_item("c", datetime(2099, 1, 1, tzinfo=UTC))]}, 400, ("0", "outcomeTimestamp")),
    ]
    for body, status, path in cases:
        answer = post(client, key, FEEDBACK, body)
        assert answer.status_code == status, (path, answer.get_json())
        expression = "feedback" + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in path)
        assert error_fields(answer.get_json())[expression], path
    too_many = post(client, key, FEEDBACK, {"feedback": [feedback_item(f"c{n}") for n in range(101)]})
    assert too_many.status_code == 413
    assert too_many.get_json()["issue"][0]["code"] == "too-costly"
    assert "MAX_FEEDBACK_ITEMS" in error_message(too_many.get_json())
    health = client.get("/healthz").get_json()
    assert health["database"]["status"] == "ok"
    assert get_store(app).stats(SERVICE_ID) == {"service": SERVICE_ID, "total": 0, "byRule": [], "byTopic": [],
                                                "unknownCards": 0, "notIssued": 0}


def test_forged_feedback_is_answered_and_counted_apart(make_app, key, sql):
    """Feedback on card uuids the service never issued gets its 200 (the EHR is not told off) but lands in no rule;
    25 overrides of one issued card told apart only by time count once; another client's override counts beside."""
    app = make_app()
    client = app.test_client()
    called = post(client, key, SERVICE, order_request())
    get_store(app).write_notes()  # the note writer's work, now
    card = called.get_json()["cards"][0]
    forged = post(client, key, FEEDBACK, {"feedback": [feedback_item(f"forged-{n}") for n in range(100)]})
    assert forged.status_code == 200 and forged.get_json() == {"received": 100, "stored": 0}
    start = datetime.now(UTC) - timedelta(hours=1)
    burst = [feedback_item(card["uuid"], start + timedelta(seconds=n)) for n in range(25)]
    assert post(client, key, FEEDBACK, {"feedback": burst}).get_json() == {"received": 25, "stored": 25}
    assert post(client, key, FEEDBACK, {"feedback": [feedback_item(card["uuid"], start)]},
                sub="another-client").get_json() == {"received": 1, "stored": 1}
    stats = client.get(FEEDBACK + "/stats",
                       headers={"Authorization": f"Bearer {token(key, BASE + FEEDBACK + '/stats')}"})
    document = stats.get_json()
    assert (document["total"], document["notIssued"]) == (2, 100)
    assert [(t["topic"], t["overridden"]) for t in document["byTopic"]] == [(card["source"]["topic"]["code"], 2)]
    assert sql("SELECT COUNT(*) FROM feedback")[0][0] == 26  # the forged items are not kept
    today = datetime.now(UTC).date()
    report = governance_report(get_store(app), get_knowledge(app), app.config,
                               (today - timedelta(days=1)).isoformat(), today.isoformat(), None, today)
    assert [(rule.total.overridden, rule.flagged) for rule in report.rules if rule.total.feedback] == [(2, False)]
    assert report_document(report)["notIssued"] == {"feedback": 100}
