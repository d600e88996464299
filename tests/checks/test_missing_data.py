"""Contract "Missing data": a data key that could not be had makes every check that needs it say
"Unable to check" in its own topic; the absence of a recorded condition is not missing data."""

from __future__ import annotations

import pytest

from fhirsvc.checks.context import ALLERGIES, CONDITIONS, MEDICATIONS, OBSERVATIONS
from fhirsvc.terminology import CVX
from tests.checks.conftest import (
    METHOTREXATE,
    NOMID,
    RA,
    RECENT_ANC,
    RECENT_KIDNEY,
    concept,
    context,
    med_request,
    quiet,
    run,
    weight,
)

OUTCOME = "the EHR answered an OperationOutcome"


@pytest.mark.parametrize(("key", "expected"), [
    pytest.param(ALLERGIES, {"anakinra-allergy": ("ALGY", "warning"), "anakinra-latex-allergy": ("ALGY", "warning")},
                 id="allergies"),
    pytest.param(MEDICATIONS, {"anakinra-tnf-inhibitor": ("DRG", "warning"),
                               "anakinra-duplicate-therapy": ("DUPTHPY", "warning"),
                               "anakinra-blood-count-monitoring": ("LAB", "info"),
                               "anakinra-indication": ("COND", "info")},
                 id="medications"),
    pytest.param(OBSERVATIONS, {"anakinra-kidney-dosing": ("DOSECOND", "info"),
                                "anakinra-active-infection": ("COND", "warning"),
                                "anakinra-neutropenia": ("LAB", "warning"),
                                "anakinra-blood-count-monitoring": ("LAB", "info"),
                                "anakinra-pregnancy": ("PREG", "warning"), "anakinra-breastfeeding": ("LACT", "info")},
                 id="observations"),
    pytest.param(CONDITIONS, {"anakinra-active-infection": ("COND", "warning"),
                              "anakinra-pregnancy": ("PREG", "warning"),
                              "anakinra-breastfeeding": ("LACT", "info"), "anakinra-indication": ("COND", "info")},
                 id="conditions"),
])
def test_unavailable_key_makes_its_checks_unable(knowledge, key, expected):
    kwargs = quiet()
    kwargs[{ALLERGIES: "allergies", MEDICATIONS: "medications", OBSERVATIONS: "observations",
            CONDITIONS: "conditions"}[key]] = []
    found = run(knowledge, context(med_request(), unavailable={key: OUTCOME}, **kwargs))
    assert {f.rule: (f.topic, f.indicator) for f in found} == expected
    for finding in found:
        assert finding.unable and finding.summary.startswith("Unable to check")


def test_weight_based_dose_without_observations_is_unable(knowledge):
    ctx = context(med_request(), unavailable={OBSERVATIONS: OUTCOME}, conditions=[NOMID], medications=[METHOTREXATE])
    finding = next(f for f in run(knowledge, ctx) if f.rule == "anakinra-max-dose-for-weight")
    assert (finding.topic, finding.indicator, finding.unable) == ("DOSEHINDW", "warning", True)


def test_found_evidence_still_fires_when_another_key_is_missing(knowledge):
    """A recent normal kidney result decides even without the condition list; a recorded kidney
    condition decides even without observations."""
    ctx = context(med_request(), unavailable={CONDITIONS: OUTCOME}, medications=[METHOTREXATE],
                  observations=[RECENT_KIDNEY, RECENT_ANC])
    assert "anakinra-kidney-dosing" not in [f.rule for f in run(knowledge, ctx)]


def test_reverse_check_without_the_medication_list_is_unable(knowledge):
    vaccine = {"resourceType": "Immunization", "id": "vac", "status": "completed",
               "vaccineCode": concept({"system": CVX, "code": "03"})}
    found = run(knowledge, context(vaccine, unavailable={MEDICATIONS: OUTCOME}))
    assert [(f.rule, f.topic, f.indicator, f.unable) for f in found] == \
        [("anakinra-live-vaccine-on-therapy", "DRG", "warning", True)]


def test_nothing_recorded_is_not_missing_data(knowledge):
    """Empty condition, allergy and medication lists with recent results: no "Unable to check" at all."""
    ctx = context(med_request(), observations=[RECENT_KIDNEY, RECENT_ANC, weight(70)])
    assert [f.rule for f in run(knowledge, ctx)] == ["anakinra-indication"]
    assert RA["id"] == "ra"
