"""The order hooks' request path outside the checks: each faster step answers what the general step it replaced
answered (the general step is written out here as the reference)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsvc.checks.base import Run
from fhirsvc.checks.engine import drug_orders, run_checks
from fhirsvc.checks.findings import INDICATORS, Finding
from fhirsvc.checks.unavailable import one_card_per_failed_key
from fhirsvc.evaluation.cards import _drop_empty, build_cards
from fhirsvc.evaluation.environment import Environment
from fhirsvc.evaluation.orders import normalize_order
from fhirsvc.evaluation.pipeline import site_findings
from fhirsvc.evaluation.reasons import override_reasons
from fhirsvc.evaluation.references import MedicationPool, names_elsewhere, resolve_medications
from fhirsvc.evaluation.services import evaluate
from fhirsvc.evaluation.tokens import window_start
from fhirsvc.knowledge.site import RuleSettings, SiteConfig
from tests.conftest import ROOT

SCENARIOS = ROOT / "fixtures" / "scenarios"

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def drop_empty_reference(value: Any) -> Any:
    """The value without None, "", [] or {} anywhere: the definition, one Mapping test and two passes per level."""
    if isinstance(value, Mapping):
        cleaned = {k: drop_empty_reference(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(value, (list, tuple)):
        return [v for v in (drop_empty_reference(item) for item in value) if v not in (None, "", [], {})]
    return value


leaves = st.one_of(st.none(), st.just(""), st.text(max_size=3), st.integers(-2, 2), st.booleans(), st.just(0.0))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=2), inner, max_size=4),
    st.dictionaries(st.text(max_size=2), inner, max_size=4).map(MappingProxyType)), max_leaves=25)


@SETTINGS
@given(values)
def test_dropping_empty_values_is_the_definition(value):
    assert _drop_empty(value) == drop_empty_reference(value)
    assert repr(_drop_empty(value)) == repr(drop_empty_reference(value))  # same types, same key order


def finding(indicator: str, order: str) -> Finding:
    return Finding(rule="anakinra-interaction", topic="DRG", topic_display="Drug Interaction Alert",
                   indicator=indicator, summary=f"An {indicator} finding", detail="What was found.", drug="anakinra",
                   section="Drug interactions", anchor="interactions", order_id=order,
                   facts={"order": f"MedicationRequest/{order}", "empty": "", "none": None})


def test_warning_cards_offer_the_override_reasons_each_its_own(knowledge):
    cards = build_cards([finding("warning", "rx-1"), finding("critical", "rx-2"), finding("info", "rx-3")],
                        "patient-1", knowledge, "https://cds.example.org", "site-7")
    reasons = drop_empty_reference(override_reasons(knowledge))
    assert reasons and [c.get("overrideReasons") for c in cards] == [reasons, reasons, None]
    assert list(cards[0])[-1] == "overrideReasons"  # the card's last member, as it always was
    assert cards[0]["extension"]["fhirsvc.site-config"] == "site-7"
    cards[0]["overrideReasons"][0]["code"] = "changed by the caller"
    cards[0]["overrideReasons"].pop()
    again = build_cards([finding("warning", "rx-1")], "patient-1", knowledge, "https://cds.example.org")
    assert cards[1]["overrideReasons"] == reasons == again[0]["overrideReasons"]


RULES = ["anakinra-interaction", "anakinra-renal-dosing", "anakinra-age"]


def rule_finding(rule: str, indicator: str) -> Finding:
    return Finding(rule=rule, topic="DRG", topic_display="Drug Interaction Alert", indicator=indicator,
                   summary="A finding", detail="What was found.", drug="anakinra", section="Drug interactions",
                   anchor="interactions", order_id="rx-1")


site_rules = st.dictionaries(st.sampled_from(RULES), st.builds(
    RuleSettings, enabled=st.booleans(), indicator=st.sampled_from([None, "", *INDICATORS])), max_size=3)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(RULES), st.sampled_from(INDICATORS)), max_size=6), site_rules)
def test_site_findings_are_each_finding_as_the_site_sets_it(pairs, rules):
    findings = [rule_finding(rule, indicator) for rule, indicator in pairs]
    site = SiteConfig("v1", rules)
    kept = site_findings(findings, site)
    assert kept == [replace(f, indicator=site.indicator(f.rule, f.indicator)) for f in findings if site.enabled(f.rule)]
    enabled = [f for f in findings if site.enabled(f.rule)]
    assert [new is old for new, old in zip(kept, enabled, strict=True)] == [  # a finding the site leaves is kept
        site.indicator(f.rule, f.indicator) == f.indicator for f in enabled]


ORDER_SCENARIOS = sorted(p for p in SCENARIOS.glob("*.request.json") if '"patient-view"' not in p.read_text())


def test_the_call_s_one_run_answers_what_a_run_of_each_step_answered(knowledge):
    judged = 0
    for path in ORDER_SCENARIOS:
        expected = path.with_name(path.name.removesuffix(".request.json") + ".expected.json")
        now = datetime.fromisoformat(json.loads(expected.read_text(encoding="utf-8"))["now"])
        body = json.loads(path.read_text(encoding="utf-8"))
        evaluation = evaluate(body, Environment.offline(knowledge, now=now))
        assert body == json.loads(path.read_text(encoding="utf-8")), path.name  # the request is never changed
        if evaluation.context is None:
            continue
        judged += 1
        assert evaluation.findings == one_card_per_failed_key(
            run_checks(evaluation.context, knowledge), evaluation.context, knowledge), path.name
        assert evaluation.drug_orders == tuple(drug_orders(Run(evaluation.context, knowledge))), path.name
    assert judged > 100


dose = st.fixed_dictionaries({"value": st.integers(1, 200), "unit": st.sampled_from(["mg", "mL"])})
repeat = st.dictionaries(st.sampled_from(["frequency", "period", "periodUnit", "periodUnits", "durationUnits"]),
                         st.one_of(st.integers(1, 3), st.sampled_from(["d", "h", "wk"])), max_size=4)
dosage = st.fixed_dictionaries({}, optional={
    "text": st.text(max_size=5), "doseQuantity": dose, "rateQuantity": dose,
    "doseAndRate": st.one_of(st.fixed_dictionaries({"doseQuantity": dose}),
                             st.lists(st.fixed_dictionaries({"doseQuantity": dose}), max_size=2)),
    "timing": st.fixed_dictionaries({}, optional={"repeat": repeat, "code": st.just({"text": "BID"})}),
    "additionalInstruction": st.one_of(st.just({"text": "with food"}), st.lists(st.just({"text": "x"}), max_size=2))})
concept = st.one_of(st.just({"text": "anakinra"}), st.lists(st.just({"text": "RA"}), max_size=2))
draft_order = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["MedicationRequest", "MedicationOrder", "Immunization"]),
     "id": st.sampled_from(["rx-1", "rx-2"])},
    optional={"status": st.sampled_from(["draft", "active"]), "patient": st.just({"reference": "Patient/p1"}),
              "dateWritten": st.just("2026-11-24"), "reasonCodeableConcept": concept, "reasonCode": concept,
              "category": concept, "note": st.just({"text": "a note"}), "identifier": st.just([{"value": "1"}]),
              "medicationCodeableConcept": st.just({"coding": [{"system": "s", "code": "c"}]}),
              "dosageInstruction": st.one_of(dosage, st.lists(st.one_of(dosage, st.just("text")), max_size=3))})


@SETTINGS
@given(draft_order)
def test_an_order_is_normalised_as_a_copy_of_it_was_and_is_left_as_sent(order):
    sent = copy.deepcopy(order)
    normalised = normalize_order(order)
    assert order == sent  # the request is never changed
    assert normalised == normalize_order(copy.deepcopy(order))  # what normalising a whole copy of it gave
    assert normalised is not order and all(normalised[key] is not order.get(key) for key in normalised
                                           if key in ("dosageInstruction", "category", "reasonCode", "note"))


reference = st.one_of(st.none(), st.just(""), st.just(7), st.sampled_from(
    ["#m", "urn:uuid:1", "Medication/m1", "https://pharmacy.example.org/fhir/Medication/m1"]))


def naming(oid: str, target: Any, r5: bool) -> dict:
    if target is None:
        return {"resourceType": "MedicationRequest", "id": oid, "medicationCodeableConcept": {"text": "anakinra"}}
    reference = {"reference": target}
    named = {"medication": {"reference": reference}} if r5 else {"medicationReference": reference}
    return {"resourceType": "MedicationRequest", "id": oid, "contained": [
        {"resourceType": "Medication", "id": "m", "code": {"text": "contained"}}], **named}


@SETTINGS
@given(st.lists(st.tuples(reference, st.booleans()), max_size=4))
def test_the_request_s_medications_are_gathered_only_for_a_reference_they_can_answer(named):
    records = [naming(f"rx-{i}", target, r5) for i, (target, r5) in enumerate(named)]
    pool = MedicationPool.of_entries([{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Medication", "id": "m1"}},
                                      {"fullUrl": "https://pharmacy.example.org/fhir/Medication/m1",
                                       "resource": {"resourceType": "Medication", "id": "m2"}}])
    assert resolve_medications(records, [pool] if names_elsewhere(records) else []) == \
        resolve_medications(records, [pool])
    started = []

    def gathering():  # the pools, gathered when they are first looked in
        started.append(True)
        yield pool

    assert resolve_medications(records, gathering()) == resolve_medications(records, [pool])
    assert started == ([True] if names_elsewhere(records) else [])


def window_start_reference(template: str, today: date) -> date | None:
    found = re.search(r"[?&]date=ge(\{\{[^}]*\}\})", template)
    token = re.fullmatch(r"\{\{\s*today\(\)\s*(?:([+-])\s*(\d{1,5})\s*days?\s*)?\}\}", found[1]) if found else None
    if token is None:
        return None
    days = int(token[2] or 0)
    return today + timedelta(days=-days if token[1] == "-" else days)


@SETTINGS
@given(st.sampled_from(["", "&date=ge{{today()}}", "&date=ge{{today() - 400 days}}", "&date=ge{{ today() + 3 day }}",
                        "&date=ge{{context.patientId}}", "&date=le{{today() - 1 days}}"]),
       st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_the_window_of_a_template_is_read_as_it_was(window, today):
    template = f"Observation?patient={{{{context.patientId}}}}&code=http://loinc.org|2160-0{window}&_sort=-date"
    for _ in range(2):  # the second time from what the first read
        assert window_start(template, today) == window_start_reference(template, today)
