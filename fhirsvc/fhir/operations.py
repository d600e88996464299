"""The FHIR operations, each declared once: the declaration drives its routes, its CapabilityStatement entry and
the check that ``openapi.yaml`` documents exactly these operations (``tests/fhir/test_operations.py``).

An operation is served on the levels it names (``system``: ``[base]/$name``; ``type``: ``[base]/[type]/$name``;
``instance``: ``[base]/[type]/[id]/$name``), for the resource types it names (none named: every resource type of
the base's FHIR version) and on the FHIR versions it names. Its handler takes the ``Call`` (the base, the base's
URL as the client called it, the type and id of the path) and returns the answer resource; an operation on
patient data takes the CDS routes' bearer token under ``FHIRSVC_AUTH=required`` before the handler runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fhirsvc.canonical import CHECK_ORDERS_OPERATION
from fhirsvc.evaluation.bundles import OPERATION as CHECK_ORDERS  # its answer's self link names it
from fhirsvc.fhir import check_orders, terminology_ops, validation
from fhirsvc.fhir.base import FhirBase
from fhirsvc.fhir.registry import FHIR_VERSIONS

HL7_OPERATIONS = "http://hl7.org/fhir/OperationDefinition/"
# The URL variables of the routes, and the names openapi.yaml gives them.
TYPE_VARIABLE, ID_VARIABLE = "rtype", "rid"


@dataclass(frozen=True)
class Call:
    """One call of an operation: the base it was made on, that base's URL as called, the path's type and id."""

    base: FhirBase
    url: str
    rtype: str | None = None
    rid: str | None = None


@dataclass(frozen=True)
class Route:
    """One route of an operation under a base: its path in Flask's syntax (``/<rtype>/$validate``) and the
    resource type the path itself names (``/ValueSet/$expand``; None: the URL carries it, or system level)."""

    path: str
    rtype: str | None = None
    system: bool = False


@dataclass(frozen=True)
class Operation:
    """One FHIR operation: where it is served, what answers it and the OperationDefinition that defines it."""

    name: str  # the code, without "$"
    definition: str  # canonical URL of its OperationDefinition
    handler: Callable[[Call], dict[str, Any]]
    system: bool = False
    type: bool = False
    instance: bool = False
    types: tuple[str, ...] = ()  # the resource types it is served for; () = every type of the FHIR version
    methods: tuple[str, ...] = ("POST",)
    versions: tuple[str, ...] = tuple(FHIR_VERSIONS)
    patient_data: bool = False  # posted patient data (PHI): the bearer token under FHIRSVC_AUTH=required

    @property
    def endpoint(self) -> str:
        return self.name.replace("-", "_")

    def routes(self) -> Iterator[Route]:
        """Its routes under a base: system level, then type level, then instance level, for each type it names
        (none named: one route whose URL carries the type)."""
        types: tuple[str | None, ...] = self.types or (None,)
        if self.system:
            yield Route(f"/${self.name}", system=True)
        for rtype in types if self.type else ():
            yield Route(f"/{rtype or f'<{TYPE_VARIABLE}>'}/${self.name}", rtype)
        for rtype in types if self.instance else ():
            yield Route(f"/{rtype or f'<{TYPE_VARIABLE}>'}/<{ID_VARIABLE}>/${self.name}", rtype)

    def paths(self) -> Iterator[str]:
        """The paths of its routes."""
        return (route.path for route in self.routes())

    def on(self, version: str, rtype: str | None = None) -> bool:
        """Whether the operation is served on a base of ``version`` (for ``rtype``, at type or instance level)."""
        if version not in self.versions:
            return False
        if rtype is None:
            return self.system
        return (self.type or self.instance) and (not self.types or rtype in self.types)


OPERATIONS = (
    Operation("expand", HL7_OPERATIONS + "ValueSet-expand", terminology_ops.expand_call, type=True, instance=True,
              types=("ValueSet",), methods=("GET", "POST")),
    Operation("validate-code", HL7_OPERATIONS + "ValueSet-validate-code", terminology_ops.validate_code_call,
              type=True, instance=True, types=("ValueSet",), methods=("GET", "POST")),
    Operation("validate", HL7_OPERATIONS + "Resource-validate", validation.validate_call, type=True,
              patient_data=True),
    Operation(CHECK_ORDERS, CHECK_ORDERS_OPERATION, check_orders.check_orders_call, system=True,
              patient_data=True),
)
