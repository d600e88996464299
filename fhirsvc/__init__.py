"""fhirsvc: a drug monograph as computable FHIR knowledge, served over FHIR REST and CDS Hooks.

``create_app`` (``fhirsvc.app``) and ``get_knowledge`` are loaded on first use, so that importing a Flask-free part
of the package (the checks, the knowledge) does not load Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "get_knowledge"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from fhirsvc.app import create_app

        return create_app
    if name == "get_knowledge":
        from fhirsvc.knowledge import get_knowledge

        return get_knowledge
    raise AttributeError(f"module 'fhirsvc' has no attribute {name!r}")
