"""The service's state: CDS Hooks feedback, the cards issued (for the feedback statistics) and the ``jti`` of accepted
JWTs (replay protection). One interface (``Store``), two backends with the same behaviour:

- ``sqlite:///relative/path`` or ``sqlite:////absolute/path``: a local SQLite file, the embedded default, shared
  by the worker processes of one instance;
- ``postgresql://user@host:port/database``: PostgreSQL, shared by every instance behind a load balancer.

``FHIRSVC_DATABASE_URL`` chooses (``fhirsvc.config``); ``open_store`` opens it at start-up, creating or migrating
the schema, and raises StorageError when the database cannot be used, so that the service does not start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app

from fhirsvc.errors import ConfigError
from fhirsvc.storage.base import (
    CARD_MAX_AGE,
    PRUNE_EVERY,
    SCHEMA_VERSION,
    StorageError,
    Store,
    StoreRefused,
    StoreUnavailable,
)

__all__ = ["SCHEMA_VERSION", "StorageError", "Store", "StoreRefused", "StoreUnavailable", "get_store", "init_app",
           "open_store", "sqlite_path"]

EXTENSION = "fhirsvc.storage"
log = logging.getLogger("fhirsvc.storage")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL: ``sqlite:///var/x.db`` is relative, ``sqlite:////srv/x.db`` absolute."""
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise StorageError(f"FHIRSVC_DATABASE_URL {url!r}: a SQLite URL is sqlite:///relative/path or "
                           "sqlite:////absolute/path")
    return Path(unquote(url[len("sqlite:///"):]))


def open_store(url: str, timeout: float = 5.0, pool_size: int = 4, card_max_age: timedelta = CARD_MAX_AGE,
               prune_every: timedelta = PRUNE_EVERY) -> Store:
    """Open the database at ``url`` (created or migrated to this version's schema). StorageError if it cannot be
    used: an unknown scheme, a file that cannot be created, a server that does not answer, a newer schema."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from fhirsvc.storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url), timeout=timeout, card_max_age=card_max_age, prune_every=prune_every)
    if scheme in ("postgresql", "postgres"):
        try:
            from fhirsvc.storage.postgres import PostgresStore
        except ImportError as exc:  # the driver is an extra: SQLite needs none
            raise ConfigError(f"FHIRSVC_DATABASE_URL is a PostgreSQL URL, and PostgreSQL needs psycopg 3 and "
                              f"psycopg_pool: install the postgres extra (pip install 'fhirsvc[postgres]'); "
                              f"{exc}") from exc
        return PostgresStore(url, timeout=timeout, pool_size=pool_size, card_max_age=card_max_age,
                             prune_every=prune_every)
    raise StorageError(f"FHIRSVC_DATABASE_URL: unknown kind of database {scheme!r}; use sqlite:///path or "
                       "postgresql://user@host:port/database")


def init_app(app: Flask) -> Store:
    """Open the configured store for the app (before gunicorn forks: each worker opens its own connections)."""
    config: Mapping[str, Any] = app.config
    store = open_store(str(config["DATABASE_URL"]), timeout=float(config["DATABASE_TIMEOUT"]),
                       pool_size=int(config["DATABASE_POOL_SIZE"]),
                       card_max_age=timedelta(days=int(config["CARD_RETENTION_DAYS"])))
    log.info("state in %s", store.where)
    app.extensions[EXTENSION] = store
    return store


def get_store(app: Flask | None = None) -> Store:
    return (app or current_app).extensions[EXTENSION]
