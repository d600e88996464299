"""One drug model read by the page and by the checks: the page's weight-based dose table and the dosing checks
(#7 dose for weight, #8 starting dose for weight) come from the same profile, so they agree at every row.

For each body weight of the table, an order of exactly the table's daily maximum passes #7 and one of a little
more fails it; an order of exactly the table's lowest starting dose passes #8 and one of a little less fails it.
"""

from __future__ import annotations

import pytest

from fhirsvc.checks.engine import run_checks
from fhirsvc.drugmodel.profile import profile_of
from fhirsvc.monograph.model import TABLE_WEIGHTS_KG, WeightDoseTable
from tests.checks.conftest import NOMID, context, dosage, med_request, patient, weight

STEP = 1.01  # 1 % above (or below) the table's figure


def table_of(page) -> WeightDoseTable:
    [table] = page.section("dosing-nomid").blocks_of(WeightDoseTable)
    return table


def column(table: WeightDoseTable, label: str) -> int:
    return next(i for i, title in enumerate(table.columns) if title.lower().startswith(label))


def findings(knowledge, kg: float, mg_per_day: float) -> set[str]:
    order = med_request(dosages=[dosage(round(mg_per_day, 6), "mg")])
    found = run_checks(context(order, pat=patient(6), conditions=[NOMID], observations=[weight(kg)]), knowledge)
    return {f.rule for f in found if f.rule in ("anakinra-max-dose-for-weight", "anakinra-starting-dose-for-weight")}


def test_the_table_shows_the_model_figures(page, knowledge):
    guideline = next(g for g in profile_of(knowledge, "anakinra").guidelines if g.weight_based)
    table = table_of(page)
    assert table.rates == tuple(rate for _, rate in guideline.weight_rates)
    assert len(table.rows) >= 5


@pytest.mark.parametrize("row", range(len(TABLE_WEIGHTS_KG)))
def test_every_row_agrees_with_the_dose_for_weight_checks(page, knowledge, row):
    table = table_of(page)
    line = table.rows[row]
    maximum = line.doses[column(table, "maximum")].mg
    lowest = line.doses[column(table, "starting (low)")].mg
    assert findings(knowledge, line.weight_kg, maximum) == set()
    assert findings(knowledge, line.weight_kg, maximum * STEP) == {"anakinra-max-dose-for-weight"}
    assert findings(knowledge, line.weight_kg, lowest) == set()
    assert findings(knowledge, line.weight_kg, lowest / STEP) == {"anakinra-starting-dose-for-weight"}
