"""Configuration: documented defaults, overridden by ``FHIRSVC_*`` environment variables, then by
the mapping given to ``create_app(config)``.

Every key here is documented in the configuration table (docs/configuration.md); an environment variable is the
key with the ``FHIRSVC_`` prefix (``KNOWLEDGE_PATH`` -> ``FHIRSVC_KNOWLEDGE_PATH``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

ENV_PREFIX = "FHIRSVC_"
log = logging.getLogger(__name__)
# The knowledge ships inside the package (a wheel holds it; the package is installed unzipped: setup.cfg zip_safe).
SHIPPED_KNOWLEDGE_DIR = Path(str(resources.files("fhirsvc").joinpath("knowledge", "data")))
# The source checkout the package runs from (an editable install, as `make install` makes), or None for an
# installed wheel. The service's own files (var/) and the independent validator's (.validator/) are in the
# checkout, else in the working directory: site-packages is no place for them.
_PARENT = Path(__file__).resolve().parent.parent
SOURCE_CHECKOUT: Path | None = _PARENT if (_PARENT / "pyproject.toml").is_file() else None
VAR_DIR = (SOURCE_CHECKOUT or Path()) / "var"

DEFAULTS: dict[str, Any] = {
    # The directory of the shipped FHIR R5 knowledge (the anakinra monograph), or an R5 FHIR package of it (a .tgz
    # or its extracted folder: fhirsvc.knowledge.package).
    "KNOWLEDGE_DIR": str(SHIPPED_KNOWLEDGE_DIR),
    # Extra knowledge directories or R5 FHIR packages (other drugs), separated by os.pathsep; loaded after
    # KNOWLEDGE_DIR.
    "KNOWLEDGE_PATH": "",
    # Python logging level of the service's own loggers.
    "LOG_LEVEL": "INFO",
    # Origins allowed to call from a browser (CORS), comma-separated; "*" for any.
    "CORS_ORIGINS": "*",
    # Largest request body accepted, in bytes (larger: 413).
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    # CDS Hooks caller authentication: "required" (JWT bearer per CDS Hooks 2.0) or "off" (local use only).
    "AUTH": "required",
    # JSON trust file of accepted JWT issuers and their key sets (see fixtures/trust/README.md).
    "JWT_ISSUERS": "",
    # Public base URL of the service (the JWT audience and card links); empty: taken from each request.
    "PUBLIC_BASE_URL": "",
    # fhirServer URL prefixes the service may fetch patient data from, comma-separated; empty: none.
    "FHIR_SERVER_ALLOWLIST": "",
    # Seconds: connect and read timeouts of one FHIR server request, and the deadline for all of a call's fetches.
    "FETCH_CONNECT_TIMEOUT": 2.0,
    "FETCH_READ_TIMEOUT": 3.0,
    "FETCH_DEADLINE": 4.0,
    # Bytes: most read from the FHIR server for one call, all its fetches together (more: the data unavailable).
    "FETCH_MAX_CALL_BYTES": 20 * 1024 * 1024,
    # The service's state (CDS Hooks feedback, issued cards, used JWT ids): sqlite:///relative/path,
    # sqlite:////absolute/path or postgresql://user@host:port/database (created or migrated at start-up).
    "DATABASE_URL": "sqlite:///" + str(VAR_DIR / "feedback.sqlite3"),
    # Seconds feedback and statistics wait for the database (then 503); also PostgreSQL's statement timeout.
    "DATABASE_TIMEOUT": 5.0,
    # PostgreSQL: most connections each worker process keeps open.
    "DATABASE_POOL_SIZE": 4,
    # Days an issued card is kept (for the feedback statistics and the governance view's card counts; feedback
    # itself is kept, with its rule).
    "CARD_RETENTION_DAYS": 30,
    # The CDS Hooks prefetch templates discovery declares: "2.0" (CDS Hooks 2.0.1 tokens) or "3.0" (the 3.0 ballot's
    # FHIRPath date tokens: the observations of the last 400 days only).
    "PREFETCH_STYLE": "2.0",
    # JSON file of the site configuration (rules switched off, indicators, adjustable thresholds; docs/configuration.md)
    # empty: every rule as the knowledge says. Validated at start-up: a mistake stops it with a message naming it.
    "SITE_CONFIG": "",
    # The governance view (GET /governance/): "on" serves it; "off" (default) answers 404 there.
    "GOVERNANCE": "off",
    # The governance view flags a rule whose override rate is at least this share (0-1) ...
    "GOVERNANCE_FLAG_OVERRIDE_RATE": 0.8,
    # ... over at least this many feedback items in the period.
    "GOVERNANCE_FLAG_MIN_FEEDBACK": 20,
    # Deprecated: a SQLite file, the same as DATABASE_URL=sqlite:///<file> (DATABASE_URL wins when both are given).
    "FEEDBACK_DB": "",
    # File of the knowledge files that passed the R5 model validation (by content hash), so that start-up
    # validates only new or changed files; empty: validate every file at every start-up.
    "VALIDATION_CACHE": str(VAR_DIR / "knowledge-validated.txt"),
}


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the effective configuration: defaults < environment < overrides.

    Unknown keys in ``overrides`` are kept (Flask's own settings such as TESTING pass through).
    """
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    from_environ = {}
    for key in DEFAULTS:
        if ENV_PREFIX + key in environ:
            value = environ[ENV_PREFIX + key]
            from_environ[key] = type(DEFAULTS[key])(value) if isinstance(DEFAULTS[key], (int, float)) else value
    for layer in (from_environ, dict(overrides or {})):
        if layer.get("FEEDBACK_DB") and not layer.get("DATABASE_URL"):
            log.warning("FEEDBACK_DB is deprecated: use DATABASE_URL=sqlite:///%s", layer["FEEDBACK_DB"])
            layer["DATABASE_URL"] = f"sqlite:///{layer['FEEDBACK_DB']}"
        config.update(layer)
    return config


def knowledge_dirs(config: Mapping[str, Any]) -> list[Path]:
    """The knowledge directories (or packages) to load, in order: the shipped one, then KNOWLEDGE_PATH entries."""
    extra = config.get("KNOWLEDGE_PATH") or ""
    if isinstance(extra, str):
        extra = [part for part in extra.split(os.pathsep) if part.strip()]
    return [Path(config["KNOWLEDGE_DIR"]), *(Path(part) for part in extra)]
