"""The project's illustrative CDS requests (tests/conformance) through the rules, and the findings'
JSON-readiness (facts and suggested resources are plain JSON)."""

from __future__ import annotations

import json

import pytest

from tests.checks.conftest import context, patient, rules, run
from tests.conftest import CONFORMANCE_DIR as EXAMPLES


def drafts(name: str) -> tuple[list[dict], list[str]]:
    body = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    resources = [e["resource"] for e in body["context"]["draftOrders"]["entry"]]
    selected = [s.split("/", 1)[1] for s in body["context"].get("selections", [])] or [r["id"] for r in resources]
    return resources, selected


@pytest.mark.parametrize("name", ["anakinra.order-select.r4.request.illustrative.json",
                                  "anakinra.order-sign.r4.request.illustrative.json"])
def test_illustrative_requests_for_a_patient_with_nothing_recorded(knowledge, name):
    resources, selected = drafts(name)
    referenced = {"Medication/ehr-med-0001": {"resourceType": "Medication", "id": "ehr-med-0001",
                                              "code": {"text": "ANAKINRA 100 MG/0.67 ML SC SOSY"}}}
    found = run(knowledge, context(*resources, judged=selected, pat=patient(52), referenced=referenced))
    assert rules(found) == ["anakinra-kidney-dosing", "anakinra-blood-count-monitoring", "anakinra-indication"]
    assert [f.indicator for f in found] == ["info", "info", "info"]
    for finding in found:
        json.dumps(finding.facts)
        for suggestion in finding.suggestions:
            json.dumps(suggestion.resource)
