"""Every shipped knowledge file validates, round-trips, cites its source, and documents its codes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from fhirsvc.fhirversion import r5_class
from fhirsvc.knowledge.loader import CANONICAL_BASE
from fhirsvc.terminology import ATC, CVX, ICD10CM, LOINC, NDC, RXNORM, SNOMED
from tests.conftest import KNOWLEDGE_DIR

# SHA-1 of the monograph text as published (16,457 bytes), the source every fact of the knowledge comes from
MONOGRAPH_SHA1 = "3a2b9aa7267b07508fe6cc1a77adf3b367daa0eb"

FILES = sorted(KNOWLEDGE_DIR.glob("*.json"))
SOURCE_SECTION = CANONICAL_BASE + "StructureDefinition/source-section"
CODE_PROVENANCE = CANONICAL_BASE + "StructureDefinition/code-provenance"
CLINICAL_SYSTEMS = {RXNORM, NDC, SNOMED, ATC, CVX, LOINC, ICD10CM}


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _codings(node, path="$"):
    """Every (path, Coding-like dict) with a system and a code; ValueSet concepts get their include's system."""
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield path, node
        for concept in node.get("concept", []) if "system" in node else []:
            yield f"{path}.concept", {**concept, "system": node["system"]}
        for key, value in node.items():
            if key != "concept":
                yield from _codings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _codings(item, f"{path}[{index}]")


def test_the_knowledge_directory_holds_files():
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_validates_and_round_trips(path):
    resource = _json(path)
    model_class = r5_class(resource["resourceType"])
    model = model_class.model_validate(resource)
    dumped = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    assert dumped == resource, "fhir.resources dropped or changed something"
    assert model_class.model_validate(dumped) == model


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_is_named_after_type_and_id_and_cites_the_monograph(path):
    resource = _json(path)
    assert path.name == f"{resource['resourceType']}-{resource['id']}.json"
    if resource["resourceType"] not in ("StructureDefinition", "OperationDefinition"):  # the service's own definitions
        sections = [e["valueString"] for e in resource.get("extension", []) if e["url"] == SOURCE_SECTION]
        assert sections and all(sections), "no source-section extension on the resource"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_clinical_code_carries_its_provenance(path):
    for where, coding in _codings(_json(path)):
        if coding["system"] not in CLINICAL_SYSTEMS:
            continue
        provenance = [e for e in coding.get("extension", []) if e["url"] == CODE_PROVENANCE]
        assert provenance, f"{where}: {coding['system']}|{coding['code']} has no code-provenance"
        parts = {p["url"]: p.get("valueCode") or p.get("valueString") for p in provenance[0]["extension"]}
        assert parts["status"] in {"verified", "partly-verified", "unverified"}, where
        assert parts["source"].strip(), where


def test_the_monograph_document_embeds_the_source_text():
    doc = _json(KNOWLEDGE_DIR / "DocumentReference-anakinra-monograph-2015.json")
    attachment = doc["content"][0]["attachment"]
    text = base64.b64decode(attachment["data"])
    assert base64.b64encode(hashlib.sha1(text).digest()).decode() == attachment["hash"]
    assert text.startswith(b"Generic Name: anakinra, Parenteral Solution")
    assert b"Medically reviewed by Creighton University" in text
    assert hashlib.sha1(text).hexdigest() == MONOGRAPH_SHA1


def test_every_clinical_use_definition_is_linked_from_the_medication_knowledge(knowledge):
    issues = {ref["reference"] for ref in knowledge.get("MedicationKnowledge", "anakinra")["clinicalUseIssue"]}
    defined = {f"ClinicalUseDefinition/{res['id']}" for res in knowledge.of_type("ClinicalUseDefinition")}
    assert issues == defined
