"""The R4 (4.0.1) view of the knowledge: every R5 resource rendered for R4 clients, built once at start-up.

What R4 has an element for goes there; every other R5 element travels in an HL7 cross-version extension
(``http://hl7.org/fhir/5.0/StructureDefinition/extension-<Resource>.<path>``, package hl7.fhir.uv.xver-r5.r4),
so the R4 view says everything the R5 knowledge says. R4 has no ClinicalUseDefinition and no
PackagedProductDefinition: contraindications, interactions, warnings and undesirable effects become
DetectedIssues (the only type R4 ``MedicationKnowledge.contraindication`` may reference); indications and packs
are folded into the MedicationKnowledge that names them.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from fhirsvc.fhirtypes import concept_text, quantity_text
from fhirsvc.fhirversion import R4_VERSION, r5_class
from fhirsvc.knowledge.frozen import thaw

if TYPE_CHECKING:
    from fhirsvc.knowledge.store import Knowledge

XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
DATATYPE_MARKER = "http://hl7.org/fhir/StructureDefinition/_datatype"
CUD_TYPE_SYSTEM = "http://hl7.org/fhir/clinical-use-definition-type"

R4_TYPES: frozenset[str] = frozenset({
    "MedicationKnowledge", "Medication", "ValueSet", "CodeSystem", "DocumentReference", "Composition",
    "PlanDefinition", "ActivityDefinition", "StructureDefinition", "SearchParameter", "DetectedIssue",
    "OperationDefinition", "ConceptMap",
})

# Types of R5 that R4 does not have: their instances are folded into other resources or become DetectedIssues.
R5_ONLY_TYPES = frozenset({"ClinicalUseDefinition", "PackagedProductDefinition"})

# R4 data types that an R4 Extension.value[x] can hold; any other R5 type becomes nested sub-extensions.
R4_PRIMITIVE_TYPES = frozenset({
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant", "integer",
    "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid",
})
R4_COMPLEX_TYPES = frozenset({
    "Address", "Age", "Annotation", "Attachment", "CodeableConcept", "Coding", "ContactDetail", "ContactPoint",
    "Contributor", "Count", "DataRequirement", "Distance", "Dosage", "Duration", "Expression", "HumanName",
    "Identifier", "Meta", "Money", "ParameterDefinition", "Period", "Quantity", "Range", "Ratio", "Reference",
    "RelatedArtifact", "SampledData", "Signature", "Timing", "TriggerDefinition", "UsageContext",
})
# R5 data types R4 lacks; the HL7 cross-version extensions mark them with a _datatype sub-extension.
R5_ONLY_DATATYPES = frozenset({
    "Availability", "CodeableReference", "ExtendedContactDetail", "MonetaryComponent", "RatioRange",
    "VirtualServiceDetail",
})

# Top-level elements of each served R4 resource (besides id, meta, extension) that keep their R5 shape; every
# other R5 element (new in R5, or reshaped and not converted) becomes a cross-version extension on the root.
_DOMAIN = ("text", "implicitRules", "language")
_CANONICAL = ("url", "identifier", "version", "name", "title", "status", "experimental", "date", "publisher",
              "contact", "description", "useContext", "jurisdiction", "purpose", "copyright")
_DEFINITION = (*_CANONICAL, "subtitle", "subjectCodeableConcept", "subjectReference", "usage", "approvalDate",
               "lastReviewDate", "effectivePeriod", "topic", "author", "editor", "reviewer", "endorser",
               "relatedArtifact", "library")
R4_ELEMENTS: Mapping[str, frozenset[str]] = {
    rtype: frozenset((*_DOMAIN, *names)) for rtype, names in {
        "Medication": ("identifier", "code", "status", "manufacturer", "form", "amount", "ingredient", "batch"),
        "ValueSet": (*_CANONICAL, "immutable", "compose", "expansion"),
        "ConceptMap": (*_CANONICAL, "sourceUri", "sourceCanonical", "targetUri", "targetCanonical", "group"),
        "CodeSystem": (*_CANONICAL, "caseSensitive", "valueSet", "hierarchyMeaning", "compositional",
                       "versionNeeded", "content", "supplements", "count", "filter", "property", "concept"),
        "DocumentReference": ("masterIdentifier", "identifier", "status", "docStatus", "type", "category",
                              "subject", "date", "author", "authenticator", "custodian", "description",
                              "securityLabel", "content"),
        "Composition": ("status", "type", "category", "encounter", "date", "author", "title",
                        "confidentiality", "custodian", "section"),
        "PlanDefinition": (*_DEFINITION, "type", "goal", "action"),
        "ActivityDefinition": (*_DEFINITION, "kind", "profile", "code", "intent", "priority", "doNotPerform",
                               "timingTiming", "timingDateTime", "timingAge", "timingPeriod", "timingRange",
                               "timingDuration", "location", "participant", "productReference",
                               "productCodeableConcept", "quantity", "dosage", "bodySite", "specimenRequirement",
                               "observationRequirement", "observationResultRequirement", "transform",
                               "dynamicValue"),
        "StructureDefinition": (*_CANONICAL, "keyword", "fhirVersion", "mapping", "kind", "abstract", "context",
                                "contextInvariant", "type", "baseDefinition", "derivation", "snapshot",
                                "differential"),
        "SearchParameter": ("url", "version", "name", "derivedFrom", "status", "experimental", "date", "publisher",
                            "contact", "description", "useContext", "jurisdiction", "purpose", "code", "base",
                            "type", "expression", "xpath", "xpathUsage", "target", "multipleOr", "multipleAnd",
                            "comparator", "modifier", "chain", "component"),
        "OperationDefinition": ("url", "version", "name", "title", "status", "experimental", "date", "publisher",
                                "contact", "description", "useContext", "jurisdiction", "purpose", "kind",
                                "affectsState", "code", "comment", "base", "resource", "system", "type", "instance",
                                "inputProfile", "outputProfile", "parameter", "overload"),
    }.items()
}

# R5 FHIRPath fragments and their R4 equivalents, for search parameter expressions (applied in order).
R4_EXPRESSION_FRAGMENTS = (
    ("MedicationKnowledge.indicationGuideline.indication.reference.resolve().ofType(ClinicalUseDefinition)"
     ".indication.diseaseSymptomProcedure.concept", "MedicationKnowledge.administrationGuidelines.indication"),
    ("MedicationKnowledge.indicationGuideline", "MedicationKnowledge.administrationGuidelines"),
    ("MedicationKnowledge.definitional.", "MedicationKnowledge."),
    ("MedicationKnowledge.name", "MedicationKnowledge.synonym"),
    ("ingredient.item.concept", "ingredient.itemCodeableConcept"),
    ("ingredient.item.reference", "ingredient.itemReference"),
    ("Medication.doseForm", "Medication.form"),
)

ISSUE_DISPLAY = {"contraindication": "Contraindication", "interaction": "Interaction",
                 "undesirable-effect": "Undesirable Effect", "warning": "Warning"}
ISSUE_SEVERITY = {"contraindication": "high", "interaction": "moderate"}
ACTIVE_INGREDIENT_ROLES = frozenset({"ACTI", "ACTIB", "ACTIM", "ACTIR"})
INACTIVE_INGREDIENT_ROLES = frozenset({"IACT"})
R4_DOCUMENT_SUBJECTS = frozenset({"Patient", "Practitioner", "Group", "Device"})
R4_RELATED_ARTIFACT_TYPES = frozenset({"documentation", "justification", "citation", "predecessor", "successor",
                                       "derived-from", "depends-on", "composed-of"})

Json = dict[str, Any]


def build_r4_view(knowledge: Knowledge, copy: bool = True) -> dict[tuple[str, str], Json]:
    """Every R4 resource of the view by (type, id), built from the R5 knowledge; the knowledge is not changed.
    ``copy=False`` leaves out the deep copy that keeps the view's resources from sharing parts (for a caller
    that copies them anyway, as freezing does)."""
    view: dict[tuple[str, str], Json] = {}
    for key in sorted(knowledge.resources):
        converter = _CONVERTERS.get(key[0])
        if converter is None:
            continue
        for resource in converter(thaw(knowledge.resources[key]), knowledge):
            resource = _unlinked(resource)
            view[(resource["resourceType"], resource["id"])] = thaw(resource) if copy else resource
    return view


def _unlinked(node: Any) -> Any:
    """``node`` with no literal reference to an R5-only type (ClinicalUseDefinition, PackagedProductDefinition),
    which ``/fhir/R4`` cannot answer: every such target is carried whole in the cross-version extension beside the
    Reference (``_inlined``), so the Reference keeps, as its ``display``, the R5 resource's ``Type/id`` (read on
    ``/fhir/R5``): a name for people, never followed, and the rule ref-1 still holds."""
    if isinstance(node, list):
        return [_unlinked(item) for item in node]
    if not isinstance(node, dict):
        return node
    target = node.get("reference")
    if isinstance(target, str) and target.partition("/")[0] in R5_ONLY_TYPES:
        kept = {key: _unlinked(value) for key, value in node.items() if key != "reference"}
        return {**kept, "display": kept.get("display") or target}
    return {key: _unlinked(value) for key, value in node.items()}


# --- cross-version extensions -------------------------------------------------------------------------------


def xver(path: str, value: Any) -> list[Json]:
    """The R5 element at ``path`` (JSON names) as R4 cross-version extensions, one per repetition, losing nothing."""
    parent, _, element = path.rpartition(".")
    _, fhir_type, child_model = _field(_model_at(parent), element)
    url = XVER + _url_path(path)
    return [_extension(url, item, fhir_type, child_model) for item in _items(value)]


def _extension(url: str, value: Any, fhir_type: str, model: Any) -> Json:
    """One value as an extension with this url: value[x] if R4 has its type, else nested sub-extensions."""
    if model is None:
        convert = _R4_DATATYPE_CONVERTERS.get(fhir_type)
        return {"url": url, f"value{fhir_type[0].upper()}{fhir_type[1:]}": convert(value) if convert else value}
    extension: Json = {"url": url}
    if "id" in value:
        extension["id"] = value["id"]
    children = list(value.get("extension", ()))
    if fhir_type in R5_ONLY_DATATYPES:
        children.insert(0, {"url": DATATYPE_MARKER, "valueString": fhir_type})
    for key, child in value.items():
        if key in ("id", "extension"):
            continue
        name, child_type, grandchild_model = _field(model, key)
        children.extend(_extension(name, item, child_type, grandchild_model) for item in _items(child))
    extension["extension"] = children
    return extension


@cache
def _model_at(path: str) -> Any:
    """The R5 model class of the element at a dotted path (a resource, a backbone element or a data type)."""
    root, *elements = path.split(".")
    model = r5_class(root)
    for element in elements:
        model = _field(model, element)[2]
        if model is None:
            raise ValueError(f"{path} is not a complex R5 element")
    return model


def _url_path(path: str) -> str:
    """An element path with choice names reduced to their base name (``cost.costMoney`` -> ``cost.cost``)."""
    root, *elements = path.split(".")
    names, model = [root], r5_class(root)
    for element in elements:
        name, _, model = _field(model, element)
        names.append(name)
    return ".".join(names)


@cache
def _field(model: Any, json_name: str) -> tuple[str, str, Any]:
    """(url name, FHIR type, model to nest or None for an R4 value[x]) of a JSON key of an R5 model."""
    info = model.model_fields.get(json_name)
    if info is None:
        raise ValueError(f"{json_name!r} is not an element of R5 {model.__name__}")
    url_name = (info.json_schema_extra or {}).get("one_of_many") or json_name
    fhir_type = _fhir_type(info.annotation)
    if fhir_type in R4_PRIMITIVE_TYPES or fhir_type in R4_COMPLEX_TYPES:
        return url_name, fhir_type, None
    return url_name, fhir_type, r5_class(fhir_type)


def _fhir_type(annotation: Any) -> str:
    """The FHIR type name of a fhir.resources field annotation (``CodeableConcept``, ``string``, ...)."""
    if annotation is bool:
        return "boolean"
    if typing.get_origin(annotation) is typing.Annotated:
        name = type(typing.get_args(annotation)[-1]).__name__
        return name[0].lower() + name[1:]
    if isinstance(annotation, type) and annotation.__name__.endswith("Type"):
        return annotation.__name__.removesuffix("Type")
    for argument in typing.get_args(annotation):
        if argument is not type(None):
            return _fhir_type(argument)
    raise ValueError(f"no FHIR type in {annotation!r}")


def _items(value: Any) -> list[Any]:
    """A repeating element's values as a list; a single value as a list of one."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _inlined(resource: Json, skip: Iterable[str] = ()) -> list[Json]:
    """A resource R4 has no type for, as extensions: its own extensions, then one per element (cross-version)."""
    rtype = resource["resourceType"]
    extensions = list(resource.get("extension", ()))
    for key, value in resource.items():
        if key not in ("resourceType", "id", "meta", "extension", *skip):
            extensions.extend(xver(f"{rtype}.{key}", value))
    return extensions


def _assemble(resource_type: str, resource_id: str, extensions: list[Json], elements: Mapping[str, Any]) -> Json:
    """An R4 resource: resourceType, id, extensions, then the given elements less the empty ones (ele-1)."""
    resource: Json = {"resourceType": resource_type, "id": resource_id}
    if extensions:
        resource["extension"] = extensions
    resource.update((key, value) for key, value in elements.items() if value not in (None, [], {}, ""))
    return resource


def _r4_resource(resource: Json, elements: Mapping[str, Any] | None = None, extensions: Iterable[Json] = ()) -> Json:
    """The resource for R4: R4 elements copied or replaced by ``elements``, the rest as root xver extensions."""
    rtype = resource["resourceType"]
    elements = dict(elements or {})
    r4_names = R4_ELEMENTS[rtype]
    root_extensions = [*resource.get("extension", ()), *extensions]
    copied: Json = {}
    for key, value in resource.items():
        if key in ("resourceType", "id", "meta", "extension"):
            continue
        if key in elements:
            copied[key] = elements.pop(key)
        elif key in r4_names:
            copied[key] = value
        else:
            root_extensions.extend(xver(f"{rtype}.{key}", value))
    copied.update(elements)
    return _assemble(rtype, resource["id"], root_extensions, copied)


# --- data types ---------------------------------------------------------------------------------------------


def _dosage(dosage: Json) -> Json:
    """An R5 Dosage as R4: one maxDosePerPeriod (the others in extensions), asNeeded as R4's asNeeded[x]."""
    r4 = dict(dosage)
    extensions = list(r4.pop("extension", ()))
    periods = r4.pop("maxDosePerPeriod", [])
    as_needed = r4.pop("asNeeded", None)
    as_needed_for = r4.pop("asNeededFor", [])
    if periods:
        r4["maxDosePerPeriod"] = periods[0]
        extensions.extend(xver("Dosage.maxDosePerPeriod", periods[1:]))
    if as_needed_for:
        r4["asNeededCodeableConcept"] = as_needed_for[0]
        extensions.extend(xver("Dosage.asNeededFor", as_needed_for[1:]))
    elif as_needed is not None:
        r4["asNeededBoolean"] = as_needed
    return {"extension": extensions, **r4} if extensions else r4


def _related_artifact(artifact: Json) -> Json:
    """An R5 RelatedArtifact as R4: resourceReference, classifier and publication details as extensions."""
    r4_names = ("id", "type", "label", "display", "citation", "document", "resource")
    r4 = {key: value for key, value in artifact.items() if key in r4_names}
    extensions = list(artifact.get("extension", ()))
    for key, value in artifact.items():
        if key not in (*r4_names, "extension"):
            extensions.extend(xver(f"RelatedArtifact.{key}", value))
    if r4.get("type") not in R4_RELATED_ARTIFACT_TYPES:
        extensions.extend(xver("RelatedArtifact.type", r4.pop("type")))
        r4["type"] = "documentation"
    return {"extension": extensions, **r4} if extensions else r4


_R4_DATATYPE_CONVERTERS: Mapping[str, Callable[[Json], Json]] = {
    "Dosage": _dosage,
    "RelatedArtifact": _related_artifact,
}


def _characteristic_values(characteristic: Mapping[str, Any]) -> list[str]:
    """The R5 patientCharacteristic value as R4's value strings (``< 30 mL/min``, ``0-17 years``)."""
    if "valueQuantity" in characteristic:
        return [quantity_text(characteristic["valueQuantity"])]
    if "valueRange" in characteristic:
        low, high = characteristic["valueRange"].get("low"), characteristic["valueRange"].get("high")
        if low and high and (low.get("unit"), low.get("code")) == (high.get("unit"), high.get("code")):
            return [f"{low.get('value')}-{quantity_text(high)}"]
        bounds = [f">= {quantity_text(low)}" if low else None, f"<= {quantity_text(high)}" if high else None]
        return [" and ".join(bound for bound in bounds if bound)]
    text = concept_text(characteristic.get("valueCodeableConcept"))
    return [text] if text else []


# --- MedicationKnowledge -----------------------------------------------------------------------------------


def _medication_knowledge(mk: Json, knowledge: Knowledge) -> list[Json]:
    """R5 MedicationKnowledge as R4, with its indications, packs and clinical use issues folded in."""
    definitional = mk.get("definitional", {})
    extensions = list(mk.get("extension", ()))
    for key, value in definitional.items():
        if key not in ("doseForm", "intendedRoute", "ingredient", "drugCharacteristic"):
            extensions.extend(xver(f"MedicationKnowledge.definitional.{key}", value))
    handled = {"resourceType", "id", "meta", "extension", "code", "status", "name", "relatedMedicationKnowledge",
               "associatedMedication", "productType", "monograph", "preparationInstruction", "cost",
               "monitoringProgram", "indicationGuideline", "medicineClassification", "packaging",
               "clinicalUseIssue", "regulatory", "definitional"}
    for key, value in mk.items():
        if key not in handled:
            extensions.extend(xver(f"MedicationKnowledge.{key}", value))
    packaging, pack_extensions = _packaging(mk.get("packaging", []), knowledge)
    contraindications, issue_extensions, indications = _clinical_use_issues(mk.get("clinicalUseIssue", []),
                                                                            knowledge)
    return [_assemble("MedicationKnowledge", mk["id"], [*extensions, *pack_extensions, *issue_extensions], {
        "code": mk.get("code"),
        "status": mk.get("status"),
        "doseForm": definitional.get("doseForm"),
        "synonym": mk.get("name"),
        "relatedMedicationKnowledge": mk.get("relatedMedicationKnowledge"),
        "associatedMedication": mk.get("associatedMedication"),
        "productType": mk.get("productType"),
        "monograph": mk.get("monograph"),
        "ingredient": [_ingredient(item, "MedicationKnowledge.definitional.ingredient")
                       for item in definitional.get("ingredient", ())],
        "preparationInstruction": mk.get("preparationInstruction"),
        "intendedRoute": definitional.get("intendedRoute"),
        "cost": [_cost(cost) for cost in mk.get("cost", ())],
        "monitoringProgram": mk.get("monitoringProgram"),
        "administrationGuidelines": _administration_guidelines(mk.get("indicationGuideline", []), indications,
                                                               knowledge),
        "medicineClassification": [_classification(item) for item in mk.get("medicineClassification", ())],
        "packaging": packaging,
        "drugCharacteristic": [_drug_characteristic(item) for item in definitional.get("drugCharacteristic", ())],
        "contraindication": contraindications,
        "regulatory": [_regulatory(item) for item in mk.get("regulatory", ())],
    })]


def _ingredient(ingredient: Json, path: str) -> Json:
    """An R5 ingredient (item CodeableReference, type, strength[x]) as R4 (item[x], isActive, strength Ratio)."""
    r4: Json = {key: ingredient[key] for key in ("id", "extension") if key in ingredient}
    extensions = list(r4.pop("extension", ()))
    item = ingredient.get("item", {})
    if "concept" in item:
        r4["itemCodeableConcept"] = item["concept"]
    elif "reference" in item:
        r4["itemReference"] = item["reference"]
    if set(item) - {"concept" if "concept" in item else "reference"}:
        extensions.extend(xver(f"{path}.item", item))
    roles = {coding.get("code") for coding in ingredient.get("type", {}).get("coding", ())}
    if "isActive" in ingredient:
        r4["isActive"] = ingredient["isActive"]
    elif roles & ACTIVE_INGREDIENT_ROLES:
        r4["isActive"] = True
    elif roles & INACTIVE_INGREDIENT_ROLES:
        r4["isActive"] = False
    if "strengthRatio" in ingredient:
        r4["strength"] = ingredient["strengthRatio"]
    for key, value in ingredient.items():
        if key not in ("id", "extension", "item", "isActive", "strengthRatio"):
            extensions.extend(xver(f"{path}.{key}", value))
    return {"extension": extensions, **r4} if extensions else r4


def _cost(cost: Json) -> Json:
    """An R5 cost as R4: cost Money, or an empty Money whose extension holds R5's costCodeableConcept."""
    r4: Json = {key: cost[key] for key in ("id", "extension", "type", "source") if key in cost}
    extensions = list(r4.pop("extension", ()))
    for key, value in cost.items():
        if key == "costMoney":
            r4["cost"] = value
        elif key == "costCodeableConcept":
            r4["cost"] = {"extension": xver("MedicationKnowledge.cost.costCodeableConcept", value)}
        elif key not in ("id", "extension", "type", "source"):
            extensions.extend(xver(f"MedicationKnowledge.cost.{key}", value))
    return {"extension": extensions, **r4} if extensions else r4


def _classification(classification: Json) -> Json:
    """An R5 medicineClassification as R4: source[x] as an extension."""
    r4: Json = {key: classification[key] for key in ("id", "extension", "type", "classification")
                if key in classification}
    extensions = list(r4.pop("extension", ()))
    for key in ("sourceString", "sourceUri"):
        if key in classification:
            extensions.extend(xver(f"MedicationKnowledge.medicineClassification.{key}", classification[key]))
    return {"extension": extensions, **r4} if extensions else r4


def _drug_characteristic(characteristic: Json) -> Json:
    """An R5 drugCharacteristic as R4: a valueAttachment (R5 only) as an extension."""
    if "valueAttachment" not in characteristic:
        return characteristic
    r4 = {key: value for key, value in characteristic.items() if key != "valueAttachment"}
    extension = xver("MedicationKnowledge.definitional.drugCharacteristic.valueAttachment",
                     characteristic["valueAttachment"])
    r4["extension"] = [*r4.get("extension", ()), *extension]
    return r4


def _regulatory(regulatory: Json) -> Json:
    """An R5 regulatory entry as R4: each schedule concept wrapped in R4's schedule backbone."""
    r4 = dict(regulatory)
    if "schedule" in r4:
        r4["schedule"] = [{"schedule": concept} for concept in r4["schedule"]]
    return r4


def _packaging(packs: list[Json], knowledge: Knowledge) -> tuple[Json | None, list[Json]]:
    """R4's single packaging (the first pack) and the other packs as root extensions, each with its product inlined."""
    if not packs:
        return None, []
    first, *others = packs
    product = _resolved(first.get("packagedProduct"), knowledge)
    extensions = list(first.get("extension", ()))
    for key, value in first.items():
        if key not in ("id", "extension"):
            extensions.extend(xver(f"MedicationKnowledge.packaging.{key}", value))
    packaging: Json = {"extension": [*extensions, *_inlined(product)] if product else extensions}
    if product and product.get("type"):
        packaging["type"] = product["type"]
    if product and product.get("containedItemQuantity"):
        packaging["quantity"] = product["containedItemQuantity"][0]
    root_extensions = []
    for pack in others:
        (extension,) = xver("MedicationKnowledge.packaging", pack)
        other_product = _resolved(pack.get("packagedProduct"), knowledge)
        if other_product:
            extension["extension"].extend(_inlined(other_product))
        root_extensions.append(extension)
    return packaging, root_extensions


def _resolved(reference: Mapping[str, Any] | None, knowledge: Knowledge) -> Json | None:
    """A mutable copy of the knowledge resource a Reference names, or None."""
    target = knowledge.resolve(reference["reference"]) if reference and reference.get("reference") else None
    return thaw(target) if target is not None else None


def _clinical_use_issues(references: list[Json], knowledge: Knowledge) -> tuple[list[Json], list[Json], list[Json]]:
    """(contraindications, clinicalUseIssue extensions, indications): R4 can only link DetectedIssues."""
    contraindications, extensions, indications = [], [], []
    for reference in references:
        target = _resolved(reference, knowledge)
        if target is None or target["resourceType"] != "ClinicalUseDefinition":
            extensions.extend(xver("MedicationKnowledge.clinicalUseIssue", reference))
        elif target["type"] == "indication":
            indications.append(reference)
        elif target["type"] in ("contraindication", "interaction"):
            contraindications.append({**reference, "reference": f"DetectedIssue/{target['id']}"})
        else:
            extensions.extend(xver("MedicationKnowledge.clinicalUseIssue",
                                   {**reference, "reference": f"DetectedIssue/{target['id']}"}))
    return contraindications, extensions, indications


def _administration_guidelines(guidelines: list[Json], indications: list[Json], knowledge: Knowledge) -> list[Json]:
    """One administrationGuidelines per R5 dosingGuideline (and per indication without one), since R4 has no nesting."""
    administration = []
    named: set[str | None] = set()
    for guideline in guidelines:
        indication_refs = guideline.get("indication", [])
        named.update(ref.get("reference", {}).get("reference") for ref in indication_refs)
        shared = list(guideline.get("extension", ()))
        for key, value in guideline.items():
            if key not in ("extension", "indication", "dosingGuideline"):
                shared.extend(xver(f"MedicationKnowledge.indicationGuideline.{key}", value))
        indication_extensions, concept = _indications(indication_refs, knowledge)
        for dosing in guideline.get("dosingGuideline") or [None]:
            administration.append(_administration_guideline([*shared, *indication_extensions], concept, dosing))
    for reference in indications:
        if reference.get("reference") not in named:
            indication_extensions, concept = _indications([{"reference": reference}], knowledge)
            administration.append(_administration_guideline(indication_extensions, concept, None))
    return administration


def _indications(references: list[Json], knowledge: Knowledge) -> tuple[list[Json], Json | None]:
    """The indication extensions (each with its ClinicalUseDefinition inlined) and the first disease concept, for R4."""
    extensions, concept = [], None
    for reference in references:
        (extension,) = xver("MedicationKnowledge.indicationGuideline.indication", reference)
        use = _resolved(reference.get("reference"), knowledge)
        if use is not None:
            extension["extension"].extend(_inlined(use))
        found = reference.get("concept") or (use or {}).get("indication", {}).get(
            "diseaseSymptomProcedure", {}).get("concept")
        concept = concept or found
        extensions.append(extension)
    return extensions, thaw(concept)


def _administration_guideline(extensions: list[Json], indication: Json | None, dosing: Json | None) -> Json:
    """One R4 administrationGuidelines entry from an R5 dosingGuideline (or none: the indication alone)."""
    guideline: Json = {"extension": list(extensions)}
    if dosing is not None:
        structured = {key: value for key, value in dosing.items() if key != "dosage"}
        guideline["extension"].extend(xver("MedicationKnowledge.indicationGuideline.dosingGuideline", structured))
        guideline["dosage"] = [
            {**{key: value for key, value in entry.items() if key != "dosage"},
             "dosage": [_dosage(dosage) for dosage in entry.get("dosage", ())]}
            for entry in dosing.get("dosage", ())
        ]
        guideline["patientCharacteristics"] = [_patient_characteristic(item)
                                               for item in dosing.get("patientCharacteristic", ())]
    if indication:
        guideline["indicationCodeableConcept"] = indication
    return {key: value for key, value in guideline.items() if value}


def _patient_characteristic(characteristic: Json) -> Json:
    """An R5 patientCharacteristic as R4: the type as characteristicCodeableConcept, the value as text."""
    r4: Json = {"characteristicCodeableConcept": characteristic["type"]}
    values = _characteristic_values(characteristic)
    if values:
        r4["value"] = values
    return r4


# --- ClinicalUseDefinition -> DetectedIssue ----------------------------------------------------------------


def _detected_issue(use: Json, knowledge: Knowledge) -> list[Json]:
    """A non-indication ClinicalUseDefinition as a DetectedIssue (what R4 MK can reference), whole in extensions."""
    kind = use["type"]
    if kind not in ISSUE_DISPLAY:
        return []
    management = use.get("interaction", {}).get("management", [])
    return [_assemble("DetectedIssue", use["id"], _inlined(use, skip=("subject",)), {
        "status": "final",
        "code": {"coding": [{"system": CUD_TYPE_SYSTEM, "code": kind, "display": ISSUE_DISPLAY[kind]}],
                 "text": ISSUE_DISPLAY[kind]},
        "severity": _severity(use),
        "implicated": use.get("subject"),
        "detail": _issue_detail(use),
        "mitigation": [{"action": action} for action in management],
    })]


def _severity(use: Json) -> str | None:
    """high: contraindication, serious effect; moderate: interaction; low: other effect; warnings state none."""
    if use["type"] == "undesirable-effect":
        classification = use.get("undesirableEffect", {}).get("classification", {})
        codes = {coding.get("code") for coding in classification.get("coding", ())}
        return "high" if "serious" in codes else "low"
    return ISSUE_SEVERITY.get(use["type"])


def _issue_detail(use: Json) -> str | None:
    """The issue's text: the condition, the interactants and effect, the warning or the undesirable effect."""
    kind = use["type"]
    if kind == "contraindication":
        return concept_text(use.get("contraindication", {}).get("diseaseSymptomProcedure")) or None
    if kind == "warning":
        warning = use.get("warning", {})
        return warning.get("description") or concept_text(warning.get("code")) or None
    if kind == "undesirable-effect":
        return concept_text(use.get("undesirableEffect", {}).get("symptomConditionEffect")) or None
    interaction = use.get("interaction", {})
    interactants = [concept_text(item.get("itemCodeableConcept")) or item.get("itemReference", {}).get("display")
                    for item in interaction.get("interactant", ())]
    parts = [" + ".join(name for name in interactants if name), concept_text(interaction.get("effect"))]
    return ": ".join(part for part in parts if part) or None


# --- other resources ---------------------------------------------------------------------------------------


def _medication(medication: Json, knowledge: Knowledge) -> list[Json]:
    """R5 Medication as R4: doseForm as form, ingredient item[x] and strength, holder as manufacturer."""
    return [_r4_resource(medication, {
        "doseForm": None,
        "form": medication.get("doseForm"),
        "marketingAuthorizationHolder": None,
        "manufacturer": medication.get("marketingAuthorizationHolder"),
        "ingredient": [_ingredient(item, "Medication.ingredient") for item in medication.get("ingredient", ())],
    })]


def _canonical_resource(resource: Json, knowledge: Knowledge) -> list[Json]:
    """A resource whose R4 shape matches R5 for what the knowledge uses (ValueSet, CodeSystem, ...)."""
    return [_r4_resource(resource)]


# R5 ConceptMap.group.element.target.relationship as R4's equivalence (the R5 code is kept in its extension)
R4_EQUIVALENCE = {"related-to": "relatedto", "equivalent": "equivalent", "source-is-narrower-than-target": "wider",
                  "source-is-broader-than-target": "narrower", "not-related-to": "unmatched"}


def _concept_map(concept_map: Json, knowledge: Knowledge) -> list[Json]:
    """R5 ConceptMap as R4: sourceScopeCanonical as sourceCanonical, each target's relationship as equivalence."""
    groups = []
    for group in concept_map.get("group", ()):
        elements = []
        for element in group.get("element", ()):
            targets = []
            for target in element.get("target", ()):
                r4 = {key: value for key, value in target.items() if key != "relationship"}
                r4["equivalence"] = R4_EQUIVALENCE.get(target.get("relationship", ""), "relatedto")
                r4["extension"] = [*r4.get("extension", ()),
                                   *xver("ConceptMap.group.element.target.relationship", target["relationship"])]
                targets.append(r4)
            elements.append({**element, "target": targets})
        groups.append({**group, "element": elements})
    return [_r4_resource(concept_map, {"sourceScopeCanonical": None,
                                       "sourceCanonical": concept_map.get("sourceScopeCanonical"),
                                       "group": groups or None})]


def _document_reference(document: Json, knowledge: Knowledge) -> list[Json]:
    """R5 DocumentReference as R4: a subject R4 does not allow (a Medication) goes to context.related."""
    subject = document.get("subject")
    extensions, context = [], {}
    if subject and subject.get("reference", "").partition("/")[0] not in R4_DOCUMENT_SUBJECTS:
        context["related"] = [subject]
        subject = None
    for key in ("period", "facilityType", "practiceSetting"):
        if key in document:
            context[key] = document[key]
    for key in ("attester", "relatesTo", "context", "event"):
        if key in document:
            extensions.extend(xver(f"DocumentReference.{key}", document[key]))
    return [_r4_resource(document, {
        "subject": subject, "period": None, "facilityType": None, "practiceSetting": None, "attester": None,
        "relatesTo": None, "context": context or None, "event": None,
        "content": [_document_content(item) for item in document.get("content", ())],
    }, extensions)]


def _document_content(content: Json) -> Json:
    """An R5 DocumentReference.content as R4: its profiles as extensions (R4 has format instead)."""
    if "profile" not in content:
        return content
    r4 = {key: value for key, value in content.items() if key != "profile"}
    r4["extension"] = [*r4.get("extension", ()), *xver("DocumentReference.content.profile", content["profile"])]
    return r4


def _composition(composition: Json, knowledge: Knowledge) -> list[Json]:
    """R5 Composition as R4: one subject, relatesTo (an R5 RelatedArtifact) and other R5 elements as extensions."""
    subjects = composition.get("subject", [])
    identifiers = composition.get("identifier", [])
    extensions = [*xver("Composition.subject", subjects[1:]), *xver("Composition.identifier", identifiers[1:])]
    if "relatesTo" in composition:
        extensions.extend(xver("Composition.relatesTo", composition["relatesTo"]))
    return [_r4_resource(composition, {
        "identifier": identifiers[0] if identifiers else None,
        "subject": subjects[0] if subjects else None,
        "relatesTo": None,
    }, extensions)]


def _plan_definition(plan: Json, knowledge: Knowledge) -> list[Json]:
    """R5 PlanDefinition as R4: action code as a list, relatedAction.targetId as actionId, R4 RelatedArtifacts."""
    return [_r4_resource(plan, {
        "relatedArtifact": [_related_artifact(item) for item in plan.get("relatedArtifact", ())] or None,
        "action": [_plan_action(action) for action in plan.get("action", ())] or None,
    })]


def _plan_action(action: Json) -> Json:
    """One R5 PlanDefinition.action (and its sub-actions) as R4."""
    r4 = dict(action)
    extensions = list(r4.pop("extension", ()))
    if "code" in r4:
        r4["code"] = [r4["code"]]
    if "documentation" in r4:
        r4["documentation"] = [_related_artifact(item) for item in r4["documentation"]]
    if "relatedAction" in r4:
        r4["relatedAction"] = [_related_action(item) for item in r4["relatedAction"]]
    if "action" in r4:
        r4["action"] = [_plan_action(item) for item in r4["action"]]
    for key in ("linkId", "location", "participant", "input", "output"):
        if key in r4:
            extensions.extend(xver(f"PlanDefinition.action.{key}", r4.pop(key)))
    return {"extension": extensions, **r4} if extensions else r4


def _related_action(related: Json) -> Json:
    """An R5 relatedAction as R4: targetId is R4's actionId; endRelationship as an extension."""
    r4 = {("actionId" if key == "targetId" else key): value for key, value in related.items()
          if key != "endRelationship"}
    if "endRelationship" in related:
        r4["extension"] = [*r4.get("extension", ()),
                           *xver("PlanDefinition.action.relatedAction.endRelationship", related["endRelationship"])]
    return r4


def _structure_definition(definition: Json, knowledge: Knowledge) -> list[Json]:
    """An extension definition for R4: fhirVersion 4.0.1, contexts on R5-only elements moved to their extensions."""
    return [_r4_resource(definition, {
        "fhirVersion": R4_VERSION,
        "context": [_extension_context(item) for item in definition.get("context", ())] or None,
    })]


def _extension_context(context: Json) -> Json:
    """An extension context as R4: ``ClinicalUseDefinition.interaction`` becomes its cross-version extension."""
    expression = context.get("expression", "")
    if context.get("type") == "element" and expression.partition(".")[0] in R5_ONLY_TYPES:
        return {**context, "type": "extension", "expression": f"{XVER}{expression}"}
    return context


def _search_parameter(parameter: Json, knowledge: Knowledge) -> list[Json]:
    """The search parameter on R4 paths (R5 expression kept), or none if it searches R5-only types only."""
    bases = [base for base in parameter.get("base", ()) if base not in R5_ONLY_TYPES]
    if not bases:
        return []
    expression = parameter.get("expression")
    r4_expression = _r4_expression(expression) if expression else None
    elements: Json = {
        "base": bases,
        "target": [target for target in parameter.get("target", ()) if target not in R5_ONLY_TYPES] or None,
        "expression": r4_expression,
        "processingMode": None,
        "xpathUsage": parameter.get("processingMode"),
    }
    if r4_expression != expression:
        elements["_expression"] = {"extension": xver("SearchParameter.expression", expression)}
    extensions = xver("SearchParameter.base", [base for base in parameter.get("base", ()) if base in R5_ONLY_TYPES])
    extensions += xver("SearchParameter.target",
                       [target for target in parameter.get("target", ()) if target in R5_ONLY_TYPES])
    return [_r4_resource(parameter, elements, extensions)]


def _r4_expression(expression: str) -> str:
    """A FHIRPath expression on R5 paths rewritten to the R4 paths of the view."""
    for r5_fragment, r4_fragment in R4_EXPRESSION_FRAGMENTS:
        expression = expression.replace(r5_fragment, r4_fragment)
    return expression


def _folded(resource: Json, knowledge: Knowledge) -> list[Json]:
    """No R4 resource: the content is folded into the resources that reference it."""
    return []


_CONVERTERS: Mapping[str, Callable[[Json, Any], list[Json]]] = {
    "MedicationKnowledge": _medication_knowledge,
    "Medication": _medication,
    "ClinicalUseDefinition": _detected_issue,
    "PackagedProductDefinition": _folded,
    "ValueSet": _canonical_resource,
    "CodeSystem": _canonical_resource,
    "ActivityDefinition": _canonical_resource,
    "DocumentReference": _document_reference,
    "Composition": _composition,
    "PlanDefinition": _plan_definition,
    "StructureDefinition": _structure_definition,
    "SearchParameter": _search_parameter,
    "OperationDefinition": _canonical_resource,
    "ConceptMap": _concept_map,
}
