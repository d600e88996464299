"""Each check declares the patient data keys it reads (``@check(..., needs=...)``), and the CDS layer fetches
only the keys the checks of the judged orders declare. So a declaration that misses a key would silently
change findings: here every check runs on every golden scenario twice, with all the patient's data and with
only the keys it declares (the others empty, as when they are not fetched), and must find the same."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

from fhirsvc.checks.base import CHECKS
from fhirsvc.checks.context import DATA_KEYS, PATIENT, PatientContext
from fhirsvc.checks.engine import run_checks
from fhirsvc.evaluation.environment import Call, Environment
from fhirsvc.evaluation.offline import request_of
from fhirsvc.evaluation.orders import order_ids, read_draft_orders
from fhirsvc.evaluation.prefetch import assemble_context
from fhirsvc.evaluation.services import validated
from tests.conftest import ROOT

# the golden order-hook scenarios that carry patient data (one, 079, has none: nothing for a check to read;
# patient-view scenarios run other checks)
SCENARIOS = [path for path in sorted((ROOT / "fixtures" / "scenarios").glob("*.request.json"))
             if (body := json.loads(path.read_text(encoding="utf-8"))).get("prefetch")
             and body.get("hook") != "patient-view"]
FIELDS = {PATIENT: "patient", "conditions": "conditions", "allergies": "allergies", "medications": "medications",
          "observations": "observations"}


def scenario_context(path, knowledge) -> PatientContext:
    body = json.loads(path.read_text(encoding="utf-8"))
    expected = json.loads(path.with_name(path.name.replace(".request.", ".expected.")).read_text(encoding="utf-8"))
    data = validated(request_of(body), knowledge)
    orders, others = read_draft_orders(data["context"]["draftOrders"])
    judged = order_ids(orders, data["context"].get("selections") or [f"{o['resourceType']}/{o['id']}" for o in orders])
    # nothing is fetched: the empty allow-list admits no server
    env = Environment.offline(knowledge, now=datetime.fromisoformat(expected["now"]))
    return assemble_context(Call(data, {}, env, env.clock(), orders, others, judged))


def only(context: PatientContext, keys) -> PatientContext:
    """The context as the CDS layer builds it when only ``keys`` are read."""
    cleared = {FIELDS[key]: (None if key == PATIENT else ()) for key in DATA_KEYS if key not in keys}
    return dataclasses.replace(context, **cleared,
                               unavailable={k: v for k, v in context.unavailable.items() if k in keys})


def seen(findings) -> list[tuple]:
    return [(f.rule, f.topic, f.indicator, f.summary, f.detail, f.unable) for f in findings]


def test_every_check_declares_known_keys():
    assert CHECKS
    for chk in CHECKS:
        assert chk.needs <= set(DATA_KEYS), chk.rule


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name.removesuffix(".request.json") for p in SCENARIOS])
def test_each_check_finds_the_same_with_only_the_keys_it_declares(knowledge, path):
    context = scenario_context(path, knowledge)
    for chk in CHECKS:
        full = seen(run_checks(context, knowledge, [chk]))
        declared = seen(run_checks(only(context, chk.needs), knowledge, [chk]))
        assert declared == full, f"{chk.rule} reads data it does not declare (needs={sorted(chk.needs)})"


def test_the_test_would_see_an_undeclared_key(knowledge):
    """Without the medication list, the duplicate-therapy check of scenario 018 finds nothing: a check that
    forgot to declare ``medications`` would be caught above."""
    path = ROOT / "fixtures" / "scenarios" / "018-duplicate-active-anakinra.request.json"
    context = scenario_context(path, knowledge)
    chk = next(c for c in CHECKS if c.rule == "duplicate-therapy")
    assert seen(run_checks(context, knowledge, [chk]))
    assert not seen(run_checks(only(context, chk.needs - {"medications"}), knowledge, [chk]))
