"""openapi.yaml is a valid OpenAPI document and describes exactly the routes the app serves."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from tests.conftest import ROOT

VARIABLES = {"rtype": "type", "rid": "id", "vid": "vid", "service_id": "serviceId"}
DOCUMENT, _ = read_from_filename(str(ROOT / "openapi.yaml"))


def test_document_is_valid_openapi():
    validate(DOCUMENT)


def _app_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + VARIABLES.get(m.group(1), m.group(1)) + "}", rule.rule)
        operations |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


def test_every_route_is_documented_and_every_documented_operation_is_served(app):
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item
                  if method in {"get", "post", "put", "delete", "patch"}}
    served = _app_operations(app)
    assert sorted(served - documented) == [], "routes missing from openapi.yaml"
    refused = {(p, m) for p, m in documented - served if m in {"put", "delete"}}
    assert sorted(documented - served - refused) == [], "documented operations the app does not serve"
