"""The knowledge: FHIR R5 resources loaded once, validated, and indexed read-only."""

from __future__ import annotations

from flask import Flask, current_app

from fhirsvc.knowledge.loader import check_paths, load_knowledge
from fhirsvc.knowledge.problems import Problem
from fhirsvc.knowledge.store import Knowledge

__all__ = ["APP_EXTENSION", "Knowledge", "Problem", "check_paths", "get_knowledge", "load_knowledge"]

APP_EXTENSION = "fhirsvc.knowledge"


def get_knowledge(app: Flask | None = None) -> Knowledge:
    """The knowledge that ``create_app`` loaded into ``app`` (default: the current app)."""
    return (app or current_app).extensions[APP_EXTENSION]
