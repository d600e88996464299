"""What each FHIR base serves: types and search parameters (with the paths they index).

One table drives routing, search and the CapabilityStatement, so the three cannot drift apart (the operations
have their own table, ``operations.py``). A
path is a dotted walk over the resource's JSON (arrays are flattened); ``->`` resolves the references
found so far and continues in the target resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhirsvc.canonical import INDICATION_SEARCH_PARAMETER

R4, R5 = "R4", "R5"
FHIR_VERSIONS = {R4: "4.0.1", R5: "5.0.0"}


@dataclass(frozen=True)
class SearchParam:
    """A search parameter: its type and, per FHIR version, the JSON paths whose values it matches."""

    name: str
    type: str  # token | string | reference | uri | date
    paths: dict[str, tuple[str, ...]]
    description: str
    definition: str = ""  # canonical of the SearchParameter; "" for core parameters
    targets: tuple[str, ...] = ()  # for reference parameters

    def on(self, version: str) -> bool:
        return bool(self.paths.get(version))


def _both(*paths: str) -> dict[str, tuple[str, ...]]:
    return {R4: paths, R5: paths}


COMMON_PARAMS = (
    SearchParam("_id", "token", _both("id"), "Logical id of the resource"),
    SearchParam("_lastUpdated", "date", _both("meta.lastUpdated"), "When the resource last changed"),
)
CANONICAL_PARAMS = (
    SearchParam("url", "uri", _both("url"), "The canonical URL"),
    SearchParam("name", "string", _both("name"), "Computationally friendly name"),
    SearchParam("title", "string", _both("title"), "Human-friendly name"),
    SearchParam("status", "token", _both("status"), "draft | active | retired | unknown"),
)

TYPE_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "MedicationKnowledge": (
        SearchParam("code", "token", _both("code"), "Code that identifies this medication"),
        SearchParam("drug-name", "string",
                    {R5: ("code.coding.display", "code.text", "name"),
                     R4: ("code.coding.display", "code.text", "synonym")},
                    "Drug names: code displays, code text and the names (R4 synonyms)"),
        SearchParam("doseform", "token", {R5: ("definitional.doseForm",), R4: ("doseForm",)},
                    "Powder, tablets, capsule, ..."),
        SearchParam("classification", "token", _both("medicineClassification.classification"),
                    "Specific category assigned to the medication"),
        SearchParam("classification-type", "token", _both("medicineClassification.type"),
                    "The type of category for the medication (e.g. ATC)"),
        SearchParam("ingredient-code", "token",
                    {R5: ("definitional.ingredient.item.concept",), R4: ("ingredient.itemCodeableConcept",)},
                    "Reference to a concept (by class)"),
        SearchParam("status", "token", _both("status"), "active | inactive | entered-in-error"),
        SearchParam("monitoring-program-name", "token", _both("monitoringProgram.name"),
                    "Name of the reviewing program"),
        SearchParam("monitoring-program-type", "token", _both("monitoringProgram.type"),
                    "Type of program under which the medication is monitored"),
        SearchParam("monograph", "reference", _both("monograph.source.reference"),
                    "Associated documentation about the medication", targets=("DocumentReference",)),
        SearchParam("monograph-type", "token", _both("monograph.type"), "The category of medication document"),
        SearchParam("indication", "token",
                    {R5: ("indicationGuideline.indication.reference.reference"
                          "->indication.diseaseSymptomProcedure.concept",),
                     R4: ("administrationGuidelines.indicationCodeableConcept",)},
                    "An indication the medication is intended for (its disease, symptom or procedure)",
                    definition=INDICATION_SEARCH_PARAMETER),
    ),
    "ClinicalUseDefinition": (
        SearchParam("type", "token", {R5: ("type",)}, "indication | contraindication | interaction | ..."),
        SearchParam("subject", "reference", {R5: ("subject.reference",)}, "The medicinal product the use is for",
                    targets=("Medication",)),
        SearchParam("contraindication", "token", {R5: ("contraindication.diseaseSymptomProcedure.concept",)},
                    "The situation that is being documented as contraindicating against this item"),
        SearchParam("indication", "token", {R5: ("indication.diseaseSymptomProcedure.concept",)},
                    "The situation that is being documented as an indication for this item"),
        SearchParam("interaction", "token", {R5: ("interaction.interactant.itemCodeableConcept",)},
                    "The type of the interaction e.g. drug-drug interaction, drug-lab test interaction"),
        SearchParam("effect", "token", {R5: ("undesirableEffect.symptomConditionEffect.concept",)},
                    "The situation in which the undesirable effect may manifest"),
    ),
    "Medication": (
        SearchParam("code", "token", _both("code"), "Returns medications for a specific code"),
        SearchParam("status", "token", _both("status"), "Returns medications for this status"),
    ),
    "DetectedIssue": (
        SearchParam("code", "token", {R4: ("code",)}, "Issue Category, e.g. drug-drug, duplicate therapy, etc."),
        SearchParam("implicated", "reference", {R4: ("implicated.reference",)}, "Problem resource",
                    targets=("Medication",)),
    ),
    **{rtype: CANONICAL_PARAMS for rtype in (
        "ValueSet", "CodeSystem", "StructureDefinition", "PlanDefinition", "ActivityDefinition", "SearchParameter")},
}

@dataclass(frozen=True)
class TypeSpec:
    """One served resource type on one base."""

    type: str
    params: dict[str, SearchParam] = field(default_factory=dict)

    @property
    def references(self) -> tuple[SearchParam, ...]:
        return tuple(p for p in self.params.values() if p.type == "reference")


def type_specs(version: str, types: set[str]) -> dict[str, TypeSpec]:
    """The served types of one base with the search parameters that apply there."""
    specs = {}
    for rtype in sorted(types):
        params = [p for p in (*COMMON_PARAMS, *TYPE_PARAMS.get(rtype, ())) if p.on(version)]
        specs[rtype] = TypeSpec(rtype, {p.name: p for p in params})
    return specs
