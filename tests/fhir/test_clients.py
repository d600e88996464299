"""Real FHIR clients against a live server on loopback: SMART fhirclient (R4) and fhirpy (R4 and R5)."""

from __future__ import annotations

import pytest
from fhirclient import client as smart_client
from fhirclient.models.medicationknowledge import MedicationKnowledge
from fhirclient.models.valueset import ValueSet
from fhirclient.server import FHIRNotFoundException
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from fhirsvc import create_app
from tests.conftest import serving


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app without a public base URL (so with the CDS authentication off, which needs one): its links name
    the loopback address the clients call (with one, they name it, and the clients follow them there)."""
    feedback = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "FEEDBACK_DB": str(feedback), "PUBLIC_BASE_URL": "",
                       "AUTH": "off"})


@pytest.fixture(scope="module")
def server_url(app):
    """The app on a real HTTP server on 127.0.0.1 (a free port), for the lifetime of this module."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def smart(server_url):
    settings = {"app_id": "fhirsvc-tests", "api_base": f"{server_url}/fhir/R4"}
    fhir_client = smart_client.FHIRClient(settings=settings)
    fhir_client.prepare()  # GET /metadata, parsed with fhirclient's strict R4 models
    return fhir_client


def test_fhirclient_prepare_reads_an_r4_capability_statement(smart):
    assert smart.ready
    assert smart.server.capabilityStatement.fhirVersion == "4.0.1"
    served = {r.type for r in smart.server.capabilityStatement.rest[0].resource}
    assert "MedicationKnowledge" in served and "ClinicalUseDefinition" not in served


def test_fhirclient_read_and_search(smart):
    knowledge = MedicationKnowledge.read("anakinra", smart.server)
    assert knowledge.synonym == ["anakinra", "Kineret"]
    doses = [dosage.doseAndRate[0].doseQuantity.value
             for guideline in knowledge.administrationGuidelines for typed in guideline.dosage or []
             for dosage in typed.dosage if dosage.doseAndRate and dosage.doseAndRate[0].doseQuantity]
    assert 100 in doses
    found = list(MedicationKnowledge.where(struct={"code": "L04AC03"}).perform_resources_iter(smart.server))
    assert [r.id for r in found] == ["anakinra"]
    with pytest.raises(FHIRNotFoundException):
        MedicationKnowledge.read("no-such-drug", smart.server)


def test_fhirclient_pages_through_a_search(smart):
    pages = list(ValueSet.where(struct={"_count": "4", "_sort": "_id"}).perform_iter(smart.server))
    found = [entry.resource.id for page in pages for entry in page.entry or []]
    assert len(pages) >= 5 and len(found) == pages[0].total == len(set(found))


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_fhirpy_read_search_fetch_all_and_count(server_url, version):
    fhir = SyncFHIRClient(f"{server_url}/fhir/{version}")
    knowledge = fhir.reference("MedicationKnowledge", "anakinra").to_resource()
    assert knowledge["id"] == "anakinra"
    assert fhir.resources("MedicationKnowledge").search(code="L04AC03").fetch()[0]["id"] == "anakinra"
    value_sets = fhir.resources("ValueSet").limit(4).fetch_all()
    assert len(value_sets) == fhir.resources("ValueSet").count() == len({vs["id"] for vs in value_sets}) >= 19
    assert fhir.resources("ValueSet").search(name="LiveVacc").first()["id"] == "live-vaccines"
    with pytest.raises(ResourceNotFound):
        fhir.reference("MedicationKnowledge", "no-such-drug").to_resource()


def test_fhirpy_on_r5_sees_clinical_use_definitions(server_url):
    fhir = SyncFHIRClient(f"{server_url}/fhir/R5")
    warnings = fhir.resources("ClinicalUseDefinition").search(type="warning").fetch_all()
    assert len(warnings) == 12
