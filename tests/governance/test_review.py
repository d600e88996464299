"""What governance says to change, on both backends: cards per order from the orders each CDS call judged, the rules
to review (override flag, and the u-chart of the weekly firing rate with its computed false-alarm rate), and the
effect of a configuration change; every number from stored rows."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from fhirsvc import create_app
from fhirsvc.governance.review import false_alarm, per_order
from fhirsvc.storage import open_store
from fhirsvc.storage.base import ConfigVersion, IssuedCard, JudgedOrder
from tests.cds.test_call_configuration import scenario
from tests.cds.test_scenarios import run_scenario

MONDAY = date(2026, 10, 5)  # six ISO weeks: five of baseline, then the judged week
WEEKS = [MONDAY + timedelta(weeks=n) for n in range(6)]


def make_app(database_url: str):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": database_url,
                       "GOVERNANCE": "on", "PUBLIC_BASE_URL": "https://cds.example.org"})


def test_cards_per_order_mean_and_p90_nearest_rank():
    found = per_order({0: 5, 1: 3, 2: 1, 6: 1})
    assert (found.orders, found.mean, found.p90) == (10, 1.1, 2)  # the 9th of 10 orders, in order, has 2 cards
    assert per_order({3: 1}) == per_order({3: 1}) and per_order({3: 1}).p90 == 3
    assert per_order({}).mean is None


def test_the_false_alarm_rate_is_the_poisson_tail_outside_the_limits():
    centre, orders = 0.1, 400  # 40 cards expected a week
    spread = 3 * math.sqrt(centre / orders)
    lower, upper = centre - spread, centre + spread

    def pmf(k: int, mean: float) -> float:
        return math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))

    mean = centre * orders
    outside = sum(pmf(k, mean) for k in range(0, 400) if k < lower * orders or k > upper * orders)
    assert false_alarm(centre, orders, lower, upper) == pytest.approx(outside, rel=1e-9)
    assert 0.001 < outside < 0.01  # near the normal approximation's 0.27 %, not equal to it


def write_history(store, rules: dict[str, list[int]], orders_per_week: int = 100) -> None:
    """Cards of each rule per week (its list, one count per week of WEEKS) on ``orders_per_week`` judged orders."""
    cards, judged = [], []
    for n, monday in enumerate(WEEKS):
        at = datetime.combine(monday + timedelta(days=2), datetime.min.time(), UTC)
        version = "v1" if n < 4 else "v2"
        for rule, counts in rules.items():
            cards += [("medication-safety-order-sign", IssuedCard(f"{rule}-{n}-{k}", "LAB", "warning", "[]",
                                                                  "anakinra", rule, version), at)
                      for k in range(counts[n])]
        judged += [("medication-safety-order-sign", JudgedOrder(f"order-{n}-{k}", "anakinra", k % 3), version, at)
                   for k in range(orders_per_week)]
    store._db_remember_cards(cards, None, judged)
    for name, week in (("v1", 0), ("v2", 4)):
        store._db_config_seen(ConfigVersion(name, name * 32, datetime.combine(WEEKS[week], datetime.min.time(), UTC),
                                            json.dumps({"version": name})))


def test_rules_to_review_from_the_weekly_firing_rate(database_url):
    store = open_store(database_url)
    try:
        write_history(store, {"anakinra-steady": [10, 12, 9, 11, 10, 10], "anakinra-surge": [10, 9, 11, 10, 10, 40],
                              "anakinra-silent": [20, 22, 18, 21, 19, 0]})
    finally:
        store.close()
    client = make_app(database_url).test_client()
    report = client.get(f"/governance/report.json?from={WEEKS[0]}&to={WEEKS[-1] + timedelta(days=6)}").get_json()
    flagged = {(r["rule"], r["why"]) for r in report["rulesToReview"]}
    assert flagged == {("anakinra-surge", "fires far more"), ("anakinra-silent", "fires far less")}
    charts = {c["rule"]: c for c in report["controlCharts"]["rules"]}
    surge = charts["anakinra-surge"]
    assert surge["centre"] == pytest.approx(50 / 500) and surge["week"] == WEEKS[-1].isoformat()
    assert surge["upper"] == pytest.approx(0.1 + 3 * math.sqrt(0.1 / 100), abs=1e-4)
    assert charts["anakinra-steady"]["signal"] is None
    alarms = [c["falseAlarm"] for c in charts.values()]
    assert report["controlCharts"]["falseAlarm"]["meanPerRule"] == pytest.approx(sum(alarms) / 3, abs=1e-4)
    assert report["controlCharts"]["falseAlarm"]["rulesCharted"] == 3
    # cards per order: orders k = 0..99 of each week got k % 3 cards
    per = report["cardsPerOrder"]["anakinra"]
    assert per["orders"] == 600 and per["mean"] == pytest.approx(sum(k % 3 for k in range(100)) / 100)
    assert per["p90"] == 2
    assert set(per["byConfiguration"]) == {"v1", "v2"} and per["byConfiguration"]["v1"]["orders"] == 400
    effect = report["configurationEffect"]
    assert effect["versions"] == ["v1", "v2"]
    assert effect["rules"]["anakinra-surge"]["v2"]["cardsIssued"] == 50
    page = client.get(f"/governance/?from={WEEKS[0]}&to={WEEKS[-1] + timedelta(days=6)}").get_data(as_text=True)
    assert 'data-rule="anakinra-surge" data-why="fires far more"' in page
    assert "u-chart" in page and "False-alarm rate" in page
    period = f"from={WEEKS[0]}&to={WEEKS[-1] + timedelta(days=6)}"
    table = client.get(f"/governance/report.csv?{period}").get_data(as_text=True)
    assert {row["rule"] for row in csv.DictReader(io.StringIO(table))} == {  # the CSV names each row's rule id
        "anakinra-steady", "anakinra-surge", "anakinra-silent"}


def test_cards_per_order_counts_the_cards_of_each_judged_order(database_url):
    app = make_app(database_url)
    counts = []
    for name in ("001-clean-ra-adult-no-cards", "003-dose-101-mg", "044-monitoring-on-therapy-count-due",
                 "035-age-65"):
        body, now = scenario(name)
        counts.append(len(run_scenario(app, body, now)))
    client = app.test_client()
    first, today = ((datetime.now(UTC) - timedelta(minutes=m)).date().isoformat() for m in (10, 0))  # over midnight
    per = client.get(f"/governance/report.json?from={first}&to={today}").get_json()["cardsPerOrder"]["anakinra"]
    ranked = sorted(counts)
    assert per["orders"] == len(counts)
    assert per["mean"] == pytest.approx(sum(counts) / len(counts), abs=1e-4)
    assert per["p90"] == ranked[math.ceil(0.9 * len(counts)) - 1]
    assert 0 in counts and max(counts) > 1


def test_configuration_in_force_says_since_when_and_why(database_url, tmp_path):
    """Two site configuration versions, one after the other: governance shows the one in force, each changed rule's
    settings with the reason, and since when its entry has been as it is (the first-seen time of the version that
    set it, from the database)."""
    reason = "Committee: overridden 94 % <b>of the time</b>"
    first = {"version": "v1", "rules": {"anakinra-seniors": {"enabled": False, "reason": reason}}}
    second = {"version": "v2", "rules": {"anakinra-seniors": {"enabled": False, "reason": reason},
                                         "anakinra-kidney-dosing": {"kidney-result-max-age-days": 90}}}
    paths = []
    for document in (first, second):
        path = tmp_path / f"{document['version']}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        paths.append(str(path))
    make_site_app(database_url, paths[0])
    app = make_site_app(database_url, paths[1])
    client = app.test_client()
    document = client.get("/governance/report.json").get_json()
    versions = {v["version"]: v["firstSeen"] for v in document["configurationVersions"]}
    assert set(versions) == {"v1", "v2"} and versions["v1"] < versions["v2"]
    in_force = {r["rule"]: r for r in document["configurationInForce"]["rules"]}
    assert document["configurationInForce"]["version"] == "v2"
    assert in_force["anakinra-seniors"]["since"] == versions["v1"] and in_force["anakinra-seniors"]["weakened"]
    assert in_force["anakinra-kidney-dosing"]["since"] == versions["v2"]
    assert in_force["anakinra-kidney-dosing"]["settings"] == [
        {"code": "kidney-result-max-age-days", "value": 90, "default": 180, "unit": "days"}]
    assert not in_force["anakinra-allergy"]["setBySite"] and in_force["anakinra-allergy"]["neverWeaken"]
    page = client.get("/governance/").get_data(as_text=True)
    assert "Committee: overridden 94 % &lt;b&gt;of the time&lt;/b&gt;" in page  # the reason shown, escaped
    assert 'data-rule="anakinra-kidney-dosing"' in page and "(default 180)" in page
    assert client.get("/healthz").get_json()["siteConfig"]["version"] == "v2"


def make_site_app(database_url: str, site_config: str):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": database_url,
                       "GOVERNANCE": "on", "PUBLIC_BASE_URL": "https://cds.example.org", "SITE_CONFIG": site_config})
