"""The rule registry (docs/cds-checks.md, "Rules and their identity"): one PlanDefinition action per rule, read by
``fhirsvc.knowledge.rules``; every finding names a rule of the registry, and every rule of the registry is one
that a check names: no orphan either way."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from fhirsvc.checks.engine import rule_keys
from fhirsvc.checks.monitoring import patient_view_rule_keys
from fhirsvc.drugmodel.profile import profile_of
from fhirsvc.evaluation.offline import evaluate_offline
from fhirsvc.knowledge.rules import rule, rule_for, rules
from tests.conftest import ROOT

SCENARIOS = ROOT / "fixtures" / "scenarios"
# The table of rule ids every part of the service uses (the contract's numbers -> ids).
RULE_IDS = {
    "1": "anakinra-allergy", "2": "anakinra-latex-allergy", "3": "anakinra-tnf-inhibitor",
    "4": "anakinra-live-vaccine", "5": "anakinra-duplicate-therapy", "6": "anakinra-max-daily-dose",
    "7": "anakinra-max-dose-for-weight", "8": "anakinra-starting-dose-for-weight", "9": "anakinra-kidney-dosing",
    "10": "anakinra-children", "11": "anakinra-seniors", "12": "anakinra-active-infection",
    "13": "anakinra-neutropenia", "14": "anakinra-blood-count-monitoring", "15": "anakinra-pregnancy",
    "16": "anakinra-breastfeeding", "17": "anakinra-indication", "18": "anakinra-route",
    "19": "anakinra-live-vaccine-on-therapy", "20": "anakinra-live-vaccine-washout",
    "21": "anakinra-tnf-inhibitor-on-therapy", "": "anakinra-kidney-function-test",
}


def test_the_registry_has_the_contracts_rules_with_their_numbers(knowledge):
    assert {r.number: r.id for r in rules(knowledge)} == RULE_IDS
    assert len(rules(knowledge)) == len(RULE_IDS)


def test_each_rule_has_a_topic_an_indicator_a_section_and_the_knowledge_of_its_numbers(knowledge):
    contract = Path(ROOT / "docs" / "cds-checks.md").read_text(encoding="utf-8")
    for r in rules(knowledge):
        assert r.drug == "anakinra" and r.registry == "PlanDefinition/anakinra-order-checks"
        assert r.indicator in ("info", "warning", "critical") and r.title and r.section
        assert r.topic_display and knowledge.get("MedicationKnowledge", r.drug) is not None
        assert r.sources and all(knowledge.resolve(s.reference) is not None for s in r.sources), r.id
        if r.number:  # the contract's table row of the rule gives the same topic and indicator
            row = re.search(rf"^\| {r.number} \| `(\w+)`[^|]*\| (\w+) \|", contract, re.MULTILINE)
            assert row is not None, r.number
            assert (row.group(1), row.group(2)) == (r.topic, r.indicator), r.id
        assert rule(knowledge, r.id) == r and rule_for(knowledge, r.drug, r.key) == r


def test_no_orphan_either_way(knowledge):
    """Every key a check names is a rule of the registry, and every rule of the registry is named by a check."""
    drug = profile_of(knowledge, "anakinra")
    assert drug is not None
    assert rule_keys(drug) | patient_view_rule_keys(drug) == {r.key for r in rules(knowledge)}
    assert patient_view_rule_keys(drug) == {"12", "13", "14", "19", "kidney-function-test"}


def _scenarios() -> list:
    return sorted(SCENARIOS.glob("*.request.json"))


def test_every_finding_of_the_golden_scenarios_names_a_registry_rule(knowledge):
    registry = {r.id for r in rules(knowledge)}
    seen: set[str] = set()
    for request_file in _scenarios():
        expected = json.loads(request_file.with_name(
            request_file.name.replace(".request.", ".expected.")).read_text(encoding="utf-8"))
        result = evaluate_offline(json.loads(request_file.read_text(encoding="utf-8")), knowledge,
                                  now=datetime.fromisoformat(expected["now"]))
        for finding, card in zip(result.findings, result.cards, strict=True):
            assert finding.rule in registry, (request_file.name, finding.rule)
            assert card["extension"]["fhirsvc.rule"] == finding.rule
        seen |= {f.rule for f in result.findings}
    assert len(seen) >= 18, sorted(registry - seen)  # the scenarios exercise most rules


@pytest.mark.parametrize("broken", ["no-prefix-no-drug", "unknown-key"])
def test_a_key_the_registry_lacks_is_no_rule(knowledge, broken):
    assert rule_for(knowledge, "anakinra", "99" if broken == "unknown-key" else "") is None

