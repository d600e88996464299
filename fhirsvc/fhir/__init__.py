"""The FHIR REST facade over the knowledge: R5 as authored, an R4 view, and version negotiation."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

from fhirsvc.fhir import views
from fhirsvc.fhir.base import FhirBase, version_id
from fhirsvc.fhir.r4 import build_r4_view
from fhirsvc.fhir.registry import R4, R5
from fhirsvc.knowledge import Knowledge
from fhirsvc.knowledge.frozen import freeze


def build_bases(knowledge: Knowledge) -> dict[str, FhirBase]:
    """Both bases, with meta from the knowledge: version = content hash, lastUpdated = file time."""
    provenance = {key: (version_id(resource), datetime.fromtimestamp(int(knowledge.files[key].stat().st_mtime), UTC))
                  for key, resource in knowledge.resources.items()}
    view = build_r4_view(knowledge, copy=False)
    r4_view = {key: freeze(view.pop(key)) for key in list(view)}  # copied by freezing, one by one

    def source(key: tuple[str, str]) -> tuple[str, str]:
        return key if key in provenance else ("ClinicalUseDefinition", key[1])

    return {
        R5: FhirBase.build(R5, knowledge.resources, provenance),
        R4: FhirBase.build(R4, r4_view, {key: provenance[source(key)] for key in r4_view}),
    }


def init_app(app: Flask, knowledge: Knowledge) -> None:
    """Build the bases once and serve them under /fhir/R5, /fhir/R4 and /fhir (negotiated)."""
    app.extensions[views.BASES_EXTENSION] = build_bases(knowledge)
    for name, prefix in ((R5, "/fhir/R5"), (R4, "/fhir/R4"), (None, "/fhir")):
        app.register_blueprint(views.blueprint, url_prefix=prefix, name=f"fhir_{(name or 'negotiated').lower()}",
                               url_defaults={"requested": name})
