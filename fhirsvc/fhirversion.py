"""The one place that imports fhir.resources releases: R5 for the knowledge, R4B for R4 wire data.

fhir.resources ships R5 as its default package and R4B (structurally equal to R4 for the resources
an EHR sends) as a sub-package; keeping the imports here means a release upgrade touches one file.
"""

from __future__ import annotations

from functools import cache

from fhir.resources import get_fhir_model_class as _get_r5_class
from fhir.resources.R4B import get_fhir_model_class as _get_r4b_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel

R4_VERSION = "4.0.1"
# Resource types R4B added to R4 (their R4B models exist, but R4 4.0.1 has no such type).
R4B_ONLY_TYPES = frozenset({
    "AdministrableProductDefinition", "Citation", "ClinicalUseDefinition", "EvidenceReport", "Ingredient",
    "ManufacturedItemDefinition", "MedicinalProductDefinition", "NutritionProduct", "PackagedProductDefinition",
    "RegulatedAuthorization", "SubscriptionStatus", "SubscriptionTopic", "SubstanceDefinition"})
ABSTRACT_TYPES = frozenset({"Resource", "DomainResource"})


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


@cache
def resource_class(fhir_version: str, resource_type: str) -> type[FHIRAbstractModel]:
    """The model of a concrete resource type of a FHIR version (``R4``: the R4B models, R4B-only types
    excluded; ``R5``), for ``$validate``; UnknownResourceType for anything else (data types included)."""
    model = r5_class(resource_type) if fhir_version == "R5" else r4b_class(resource_type)
    if (resource_type in ABSTRACT_TYPES or getattr(model, "get_resource_type", lambda: None)() != resource_type
            or not _is_resource(model) or (fhir_version != "R5" and resource_type in R4B_ONLY_TYPES)):
        raise UnknownResourceType(f"{resource_type!r} is not an {'R5' if fhir_version == 'R5' else 'R4'} resource type")
    return model


def _is_resource(model: type[FHIRAbstractModel]) -> bool:
    """Whether a model is a resource (not a data type): it has the ``id`` and ``meta`` of Resource."""
    fields = getattr(model, "model_fields", {})
    return "meta" in fields and "id" in fields and "implicitRules" in fields
