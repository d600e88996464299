"""Contract "Unable to check": one card per data key that could not be had, naming every check it stopped; and the
course of therapy the patient-view schedule counts from (a renewal continues it)."""

from __future__ import annotations

from datetime import timedelta

from fhirsvc.checks.context import ALLERGIES, CONDITIONS, OBSERVATIONS
from fhirsvc.checks.reading.medications import course_start
from fhirsvc.checks.unavailable import one_card_per_failed_key, one_per_failed_key
from fhirsvc.evaluation.cards import build_cards
from tests.checks.conftest import (
    ANAKINRA_RXNORM,
    NOW,
    PATIENT_ID,
    RA,
    concept,
    context,
    med_request,
    quiet,
    run,
)

OUTCOME = "the EHR answered an OperationOutcome"
ANAKINRA = concept(ANAKINRA_RXNORM)


def consolidated(knowledge, ctx):
    return one_card_per_failed_key(run(knowledge, ctx), ctx, knowledge)


def test_one_finding_names_every_check_the_key_stopped(knowledge):
    ctx = context(med_request(), unavailable={OBSERVATIONS: OUTCOME}, **quiet(observations=[]))
    stopped = run(knowledge, ctx)
    assert len(stopped) == 6  # each check that needed the observations said so on its own
    (finding,) = consolidated(knowledge, ctx)
    assert finding.unable and finding.summary == \
        "Unable to check 6 anakinra checks: observations (lab results, vital signs) unavailable"
    assert ("kidney dosing, active infection, neutrophil count, blood count monitoring, pregnancy and breastfeeding "
            "were not checked") in finding.detail
    # the most severe of them: the first warning (active infection, #12) gives indicator, topic and rule
    assert (finding.indicator, finding.topic, finding.rule) == ("warning", "COND", "anakinra-active-infection")
    assert finding.facts["rules"] == [f.rule for f in stopped]
    assert finding.data_key == OBSERVATIONS and finding.order_id == "rx-1"


def test_two_failed_keys_give_two_cards_each_naming_its_checks(knowledge):
    ctx = context(med_request(), unavailable={ALLERGIES: OUTCOME, OBSERVATIONS: OUTCOME},
                  **quiet(observations=[]))
    findings = consolidated(knowledge, ctx)
    assert [f.data_key for f in findings] == [ALLERGIES, OBSERVATIONS]
    assert "allergies and latex allergy were not checked" in findings[0].detail
    cards = build_cards(findings, PATIENT_ID, knowledge, "https://cds.example.org")
    assert len({c["uuid"] for c in cards}) == 2


def test_a_check_stopped_by_two_keys_is_named_in_both_cards(knowledge):
    ctx = context(med_request(), unavailable={CONDITIONS: OUTCOME, OBSERVATIONS: OUTCOME},
                  medications=quiet()["medications"])
    by_key = {f.data_key: f for f in consolidated(knowledge, ctx)}
    assert set(by_key) == {CONDITIONS, OBSERVATIONS}
    for key in (CONDITIONS, OBSERVATIONS):
        assert "active infection" in by_key[key].facts["not_checked"]


def test_a_key_that_stopped_one_check_keeps_that_checks_card(knowledge):
    ctx = context(med_request(), unavailable={OBSERVATIONS: OUTCOME}, **quiet(observations=[]))
    (infection,) = [f for f in run(knowledge, ctx) if f.rule == "anakinra-active-infection"]
    assert one_per_failed_key([infection], ctx.unavailable, {"anakinra": "anakinra"}) == [infection]


def test_findings_that_decided_are_kept_beside_the_card(knowledge):
    """An infection on the problem list decides #12 without the observations: its card stays, the others that
    needed the observations are one card."""
    infection = {"resourceType": "Condition", "id": "pn", "clinicalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": concept({"system": "http://snomed.info/sct", "code": "233604007", "display": "Pneumonia"})}
    ctx = context(med_request(), unavailable={OBSERVATIONS: OUTCOME},
                  **quiet(observations=[], conditions=[RA, infection]))
    findings = consolidated(knowledge, ctx)
    assert [(f.rule, f.unable) for f in findings if not f.data_key] == [("anakinra-active-infection", False)]
    (card,) = [f for f in findings if f.data_key]
    assert "active infection" not in card.facts["not_checked"]


def _order(rid, start, end=None, status="active"):
    res = med_request(rid, ANAKINRA, status=status)
    res["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": start, **({"end": end} if end else {})}
    return res


GAP = timedelta(days=30)


def test_a_renewal_within_the_gap_continues_the_course():
    first = _order("first", "2026-05-08", "2026-11-03", "completed")
    renewal = _order("renewal", "2026-11-04")
    assert course_start([first, renewal], GAP).date().isoformat() == "2026-05-08"


def test_the_gap_is_inclusive_and_a_longer_gap_starts_a_new_course():
    renewal = _order("renewal", "2026-11-04")
    at_gap = _order("first", "2026-05-08", "2026-10-04", "completed")  # ends 30 days before the renewal's start
    past_gap = _order("first", "2026-05-08", "2026-10-03", "stopped")  # 31 days
    assert course_start([at_gap, renewal], GAP).date().isoformat() == "2026-05-08"
    assert course_start([past_gap, renewal], GAP).date().isoformat() == "2026-11-04"


def test_a_chain_of_renewals_is_one_course_and_an_unknown_end_breaks_it():
    chain = [_order("a", "2026-01-10", "2026-04-10", "completed"), _order("b", "2026-04-20", "2026-08-01", "completed"),
             _order("c", "2026-08-15")]
    assert course_start(chain, GAP).date().isoformat() == "2026-01-10"
    no_end = med_request("b", ANAKINRA, status="completed")
    no_end["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-04-20"}
    assert course_start([chain[0], no_end, chain[2]], GAP).date().isoformat() == "2026-08-15"


def test_no_current_record_or_no_start_is_no_course():
    assert course_start([_order("old", "2026-01-01", "2026-02-01", "completed")], GAP) is None
    assert course_start([med_request("x", ANAKINRA, status="active", dosageInstruction=[])], GAP) is None
    assert NOW.year == 2026
