"""The database lost while serving, on both backends (a SQLite file locked by another writer; the PostgreSQL
server stopped as by a crash): the issued-cards note and the jti check never fail a call, feedback and statistics
are refused (never half-done), the health says so, and everything recovers by itself when the database returns."""

from __future__ import annotations

import logging

import pytest

from fhirsvc.storage import StoreUnavailable, open_store
from tests.storage.conftest import wait_until_healthy
from tests.storage.test_store import NOW, SERVICE, card, item, note

pytestmark = pytest.mark.slow  # chaos: the database stopped and started again


def test_an_outage_is_survived_and_recovered_from(database_url, outage, sql, caplog):
    caplog.set_level(logging.INFO, logger="fhirsvc.storage")
    store = open_store(database_url, timeout=0.5)
    other = open_store(database_url)  # another worker or instance
    try:
        store.remember_cards(SERVICE, [card("before", "BEFORE")])
        assert store.record(SERVICE, [item("before")]) == 1
        with outage():
            note(store, SERVICE, [card("during-1", "DURING")])  # fails: counted, not raised
            note(store, SERVICE, [card("during-2", "DURING")])  # not even tried for a while: counted
            assert store.card_notes_failed == 2
            with pytest.raises(StoreUnavailable) as refused:
                store.record(SERVICE, [item("during-1"), item("during-2")])
            assert refused.value.status == 503
            if store.backend == "postgresql":
                with pytest.raises(StoreUnavailable):
                    store.stats(SERVICE)
            else:  # another writer's lock does not stop readers (WAL)
                assert store.stats(SERVICE)["total"] == 1
            health = store.health()
            assert health["status"] == "unavailable" and health["database"] == store.where and health["error"]
            assert health["cardNotesFailed"] == 2
            # the jti of an accepted token is remembered in this process meanwhile
            assert store.first_use("iss", "during-outage", NOW + 300, NOW)
            assert not store.first_use("iss", "during-outage", NOW + 300, NOW + 1)
            assert store.health()["jtiInMemory"] == 1  # said, not hidden
        assert wait_until_healthy(store)["status"] == "ok"
        note(store, SERVICE, [card("after", "AFTER")])
        assert store.record(SERVICE, [item("after")]) == 1
        assert store.record(SERVICE, [item("during-1")]) == 0  # its note was lost: counted as not issued
        assert store.first_use("iss", "after-outage", NOW + 300, NOW + 2)  # also writes what was accepted meanwhile
        assert not other.first_use("iss", "during-outage", NOW + 300, NOW + 3)
        assert store.health()["jtiInMemory"] == 0
        assert store.card_notes_failed == 2
        assert store.stats(SERVICE)["notIssued"] == 1
    finally:
        store.close()
        other.close()
    assert sorted(r[0] for r in sql("SELECT card FROM feedback")) == ["after", "before"]  # nothing half-stored
    assert sorted(r[0] for r in sql("SELECT card FROM issued_cards")) == ["after", "before"]
    assert "unavailable for the issued-cards note" in caplog.text
    assert "unavailable for the feedback" in caplog.text


def test_a_store_that_cannot_be_opened_stops_start_up(tmp_path):
    from fhirsvc.storage import StorageError

    (tmp_path / "a-file").write_text("")
    with pytest.raises(StorageError, match="cannot use the database sqlite:///"):
        open_store(f"sqlite:///{tmp_path / 'a-file' / 'state.sqlite3'}")
