"""The knowledge: FHIR R5 resources loaded once, validated, and indexed read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirsvc.knowledge.loader import check_paths, load_knowledge
from fhirsvc.knowledge.problems import Problem
from fhirsvc.knowledge.store import Knowledge

if TYPE_CHECKING:
    from flask import Flask

    from fhirsvc.knowledge.site import SiteConfig

__all__ = ["APP_EXTENSION", "SITE_EXTENSION", "Knowledge", "Problem", "check_paths", "get_knowledge",
           "get_site_config", "load_knowledge"]

APP_EXTENSION = "fhirsvc.knowledge"
SITE_EXTENSION = "fhirsvc.site-config"


def get_knowledge(app: Flask | None = None) -> Knowledge:
    """The knowledge that ``create_app`` loaded into ``app`` (default: the current app). Flask is imported here,
    not with the package, so that the checks can read the knowledge without it."""
    from flask import current_app

    return (app or current_app).extensions[APP_EXTENSION]


def get_site_config(app: Flask | None = None) -> SiteConfig:
    """The site configuration ``create_app`` loaded (``knowledge.site``), validated against the knowledge."""
    from flask import current_app

    return (app or current_app).extensions[SITE_EXTENSION]
