"""The governance view: which CDS rules help and which are noise (``/governance/``, ``fhirsvc governance``)."""

from __future__ import annotations

from flask import Flask

from fhirsvc.errors import ConfigError
from fhirsvc.governance.views import blueprint

__all__ = ["blueprint", "init_app"]

SWITCH = ("on", "off")


def init_app(app: Flask) -> None:
    """Register the routes (they answer 404 while FHIRSVC_GOVERNANCE is off) and check the settings. When on, the
    plotting library is imported here, before gunicorn forks the workers, so they share it; without it (the
    governance extra) the service does not start."""
    config = app.config
    if config["GOVERNANCE"] not in SWITCH:
        raise ConfigError(f"FHIRSVC_GOVERNANCE={config['GOVERNANCE']!r}: use on or off")
    rate, least = float(config["GOVERNANCE_FLAG_OVERRIDE_RATE"]), int(config["GOVERNANCE_FLAG_MIN_FEEDBACK"])
    if not 0 < rate <= 1 or least < 1:
        raise ConfigError("FHIRSVC_GOVERNANCE_FLAG_OVERRIDE_RATE must be a share above 0 and at most 1, and "
                          "FHIRSVC_GOVERNANCE_FLAG_MIN_FEEDBACK at least 1")
    if int(config["CARD_RETENTION_DAYS"]) < 1:
        raise ConfigError("FHIRSVC_CARD_RETENTION_DAYS must be at least 1")
    if config["GOVERNANCE"] == "on":
        try:
            import fhirsvc.governance.charts  # noqa: F401 - matplotlib, once, in the master process
        except ImportError as exc:  # the charts' library is an extra: a view without its charts is not served
            raise ConfigError("FHIRSVC_GOVERNANCE=on draws its charts with matplotlib: install the governance "
                              f"extra (pip install 'fhirsvc[governance]'), or set it off; {exc}") from exc
    app.register_blueprint(blueprint)
