"""``fhirsvc rules`` and ``GET /cds-services/rules``: the rules of the registry with the services that run each."""

from __future__ import annotations

import json

from tests.knowledge.test_rules import RULE_IDS


def test_the_cli_lists_the_rules_as_the_route_does(capsys, monkeypatch, cds):
    from fhirsvc.cli import main

    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_PATH", raising=False)
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_DIR", raising=False)
    assert main(["rules", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["rules"]
    response = cds.get("/cds-services/rules")
    assert response.status_code == 200 and response.get_json()["rules"] == listed
    assert [r["id"] for r in listed] == list(RULE_IDS.values())
    by_id = {r["id"]: r for r in listed}
    assert {s["hook"] for s in by_id["anakinra-kidney-function-test"]["services"]} == {"patient-view"}
    assert [s["id"] for s in by_id["anakinra-active-infection"]["services"]] == [
        "medication-safety-order-select", "medication-safety-order-sign", "medication-safety-patient-view"]
    assert {s["hook"] for s in by_id["anakinra-route"]["services"]} == {"order-select", "order-sign"}
    tnf = by_id["anakinra-tnf-inhibitor"]
    assert (tnf["number"], tnf["topic"]["code"], tnf["indicator"], tnf["sourceSection"]) == (
        "3", "DRG", "warning", "SECTION 3 of 4 \u203a TNF inhibitors, anti-inflammatory drugs")
    assert tnf["sources"] == [{"reference": "ClinicalUseDefinition/anakinra-interaction-tnf-inhibitors",
                               "element": "interaction"}]
    assert tnf["thresholds"] == [] and [t["code"] for t in by_id["anakinra-neutropenia"]["thresholds"]] == [
        "neutrophil-count"]

    assert main(["rules"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["ID", "#", "TOPIC", "INDICATOR", "HOOKS"]
    assert "THRESHOLDS" in table[0].split()
    assert "seniors-age >= 65 a" in next(line for line in table if line.startswith("anakinra-seniors "))
    assert "neutrophil-count < 1.5 10*9/L" in next(line for line in table if line.startswith("anakinra-neutropenia "))
    assert table[2].split()[:5] == ["anakinra-allergy", "1", "ALGY", "critical", "order-select,order-sign"]
    assert table[-2].split()[:5] == ["anakinra-kidney-function-test", "-", "LAB", "info", "patient-view"]
    assert table[-1] == f"{len(RULE_IDS)} rule(s)"
