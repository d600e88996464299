"""The one place that imports fhir.resources releases: R5 for the knowledge, R4B for R4 wire data.

fhir.resources ships R5 as its default package and R4B (structurally equal to R4 for the resources
an EHR sends) as a sub-package; keeping the imports here means a release upgrade touches one file.
"""

from __future__ import annotations

from functools import cache

from fhir.resources import get_fhir_model_class as _get_r5_class
from fhir.resources.R4B import get_fhir_model_class as _get_r4b_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel

R5_VERSION = "5.0.0"
R4_VERSION = "4.0.1"


class UnknownResourceType(ValueError):
    """A resourceType that the FHIR release does not define."""


@cache
def r5_class(resource_type: str) -> type[FHIRAbstractModel]:
    """Return the R5 model class for a resource type, or raise UnknownResourceType."""
    try:
        return _get_r5_class(resource_type)
    except (ValueError, KeyError) as exc:
        raise UnknownResourceType(f"{resource_type!r} is not an R5 resource type") from exc


@cache
def r4b_class(resource_type: str) -> type[FHIRAbstractModel]:
    """Return the R4B model class (used to parse R4 wire data leniently), or raise UnknownResourceType."""
    try:
        return _get_r4b_class(resource_type)
    except (ValueError, KeyError) as exc:
        raise UnknownResourceType(f"{resource_type!r} is not an R4/R4B resource type") from exc
