"""One declaration per FHIR operation (``fhirsvc/fhir/operations.py``) drives its routes, its entries in the
CapabilityStatement of every base and its place in ``openapi.yaml``: each is compared with the table here."""

from __future__ import annotations

import re
from dataclasses import replace
from http import HTTPStatus

import pytest
from flask import Flask
from openapi_spec_validator.readers import read_from_filename

from fhirsvc import handlers
from fhirsvc.fhir import capability, views
from fhirsvc.fhir.operations import OPERATIONS, Call, Operation
from fhirsvc.fhir.registry import R4, R5
from tests.conftest import ROOT

PREFIXES = {"/fhir/R5": (R5,), "/fhir/R4": (R4,), "/fhir": (R4, R5)}  # /fhir negotiates either version
OPENAPI_VARIABLES = {"rtype": "type", "rid": "id"}


def _openapi(path: str) -> str:
    return re.sub(r"<(\w+)>", lambda m: "{" + OPENAPI_VARIABLES[m.group(1)] + "}", path)


def declared(openapi: bool = False) -> set[tuple[str, str]]:
    """(path, method) of every declared operation on every prefix that serves one of its versions."""
    return {(prefix + (_openapi(path) if openapi else path), method)
            for op in OPERATIONS for prefix, versions in PREFIXES.items() if set(versions) & set(op.versions)
            for path in op.paths() for method in op.methods}


def test_the_url_map_serves_exactly_the_declared_operations(open_app):
    served = {(rule.rule, method) for rule in open_app.url_map.iter_rules() if "/$" in rule.rule
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == declared()
    assert ("/fhir/R4/ValueSet/<rid>/$expand", "GET") in served and ("/fhir/$check-orders", "POST") in served


def test_openapi_documents_exactly_the_declared_operations():
    document, _ = read_from_filename(str(ROOT / "openapi.yaml"))
    documented = {(path, method.upper()) for path, item in document["paths"].items() if "/$" in path
                  for method in item if method in {"get", "post", "put", "delete", "patch"}}
    assert documented == declared(openapi=True)


@pytest.mark.parametrize("version", [R4, R5])
def test_the_capability_statement_lists_each_operation_where_it_is_declared(fhir, version):
    statement = fhir.get(f"/fhir/{version}/metadata").get_json()
    rest = statement["rest"][0]
    assert rest["operation"] == [{"name": op.name, "definition": op.definition} for op in OPERATIONS
                                 if op.system and version in op.versions]
    for resource in rest["resource"]:
        assert resource["operation"] == [{"name": op.name, "definition": op.definition} for op in OPERATIONS
                                         if (op.type or op.instance) and version in op.versions
                                         and (not op.types or resource["type"] in op.types)], resource["type"]
    by_type = {r["type"]: [o["name"] for o in r["operation"]] for r in rest["resource"]}
    assert by_type["ValueSet"] == ["expand", "validate-code", "validate"] and by_type["Medication"] == ["validate"]


def test_the_service_s_own_operations_match_their_operation_definitions(knowledge):
    own = [op for op in OPERATIONS if not op.definition.startswith("http://hl7.org/")]
    assert own
    for op in own:
        definition = knowledge.resolve(op.definition)
        assert definition["resourceType"] == "OperationDefinition" and definition["code"] == op.name
        assert (definition["system"], definition["type"], definition["instance"]) == (op.system, op.type,
                                                                                      op.instance)
        assert sorted(definition.get("resource", ())) == sorted(op.types)


def _echo(call: Call) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": "type", "valueString": str(call.rtype)}]}


R5_ONLY = Operation("echo", "http://example.org/OperationDefinition/echo", _echo, type=True, types=("Medication",),
                    methods=("GET",), versions=(R5,))


def test_a_new_declaration_is_listed_and_served_on_its_versions_only(open_app):
    bases = open_app.extensions[views.BASES_EXTENSION]
    listed = {version: capability.capability_statement(bases[version], "https://example.org/fhir",
                                                       (*OPERATIONS, R5_ONLY)) for version in (R4, R5)}
    names = {v: [o["name"] for r in s["rest"][0]["resource"] if r["type"] == "Medication" for o in r["operation"]]
             for v, s in listed.items()}
    assert names == {R4: ["validate"], R5: ["validate", "echo"]}

    app = Flask(__name__)
    app.config.update(open_app.config)
    app.extensions[views.BASES_EXTENSION] = bases
    handlers.init_app(app)  # the app's error handlers: an ApiError answers an OperationOutcome
    (route,) = R5_ONLY.routes()
    for prefix in ("/fhir/R5", "/fhir/R4"):
        app.add_url_rule(prefix + route.path, endpoint=prefix, view_func=views.operation_view(R5_ONLY, route),
                         defaults={"requested": prefix.rsplit("/", 1)[1]}, methods=["GET"])
    client = app.test_client()
    assert client.get("/fhir/R5/Medication/$echo").get_json()["parameter"][0]["valueString"] == "Medication"
    refused = client.get("/fhir/R4/Medication/$echo")
    assert refused.status_code == HTTPStatus.NOT_FOUND
    assert refused.get_json()["issue"][0]["code"] == "not-supported"
    assert "$echo is not served on FHIR 4.0.1" in refused.get_json()["issue"][0]["diagnostics"]


def test_an_operation_is_served_on_the_levels_and_types_it_declares():
    op = replace(R5_ONLY, system=True, instance=True, types=())
    assert list(op.paths()) == ["/$echo", "/<rtype>/$echo", "/<rtype>/<rid>/$echo"]
    assert [(r.rtype, r.system) for r in op.routes()] == [(None, True), (None, False), (None, False)]
    two = replace(R5_ONLY, instance=True, types=("Medication", "ValueSet"))
    assert list(two.paths()) == ["/Medication/$echo", "/ValueSet/$echo", "/Medication/<rid>/$echo",
                                 "/ValueSet/<rid>/$echo"]
    assert op.on(R5) and op.on(R5, "Patient") and not op.on(R4, "Patient")
    assert not R5_ONLY.on(R5, "Patient") and not R5_ONLY.on(R5) and R5_ONLY.on(R5, "Medication")
