"""The optional dependencies (setup.cfg extras): without one, what needs it says which extra to install, and the
rest of the service works. A missing package is made unimportable here (``sys.modules[name] = None``); the wheel
check (``make wheel-check``) does the same with a wheel installed without extras."""

from __future__ import annotations

import sys

import pytest

from fhirsvc import create_app
from fhirsvc.errors import ConfigError
from fhirsvc.knowledge import independent
from fhirsvc.storage import open_store
from tests.conftest import KNOWLEDGE_DIR


def _without(monkeypatch, *modules: str) -> None:
    """Make ``modules`` unimportable, and forget the modules of ours that imported them."""
    for name in [m for m in sys.modules if m.startswith(("fhirsvc.storage.postgres", "fhirsvc.governance.charts"))]:
        monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_postgresql_without_its_driver_names_the_extra(monkeypatch, tmp_path):
    _without(monkeypatch, "psycopg", "psycopg_pool")
    with pytest.raises(ConfigError, match=r"fhirsvc\[postgres\]"):
        open_store("postgresql://fhirsvc@127.0.0.1:5432/fhirsvc")
    open_store(f"sqlite:///{tmp_path / 'state.sqlite3'}").close()  # SQLite needs no extra


def test_governance_on_without_matplotlib_stops_start_up_naming_the_extra(monkeypatch, tmp_path):
    _without(monkeypatch, "matplotlib")
    config = {"TESTING": True, "KNOWLEDGE_PATH": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}"}
    with pytest.raises(ConfigError, match=r"FHIRSVC_GOVERNANCE=on .*fhirsvc\[governance\]"):
        create_app({**config, "GOVERNANCE": "on"})
    client = create_app(config).test_client()  # off, the default: no charts needed
    assert client.get("/healthz").status_code == 200
    assert client.get("/governance/").status_code == 404


def test_the_independent_validator_without_its_packages_names_the_extra(monkeypatch):
    _without(monkeypatch, "jsonschema", "fhirpathpy")
    independent._definitions.cache_clear()
    try:
        with pytest.raises(independent.ValidatorNotInstalled, match=r"fhirsvc\[validate\]"):
            independent.validate_files(sorted(KNOWLEDGE_DIR.glob("*.json"))[:1])
    finally:
        independent._definitions.cache_clear()
