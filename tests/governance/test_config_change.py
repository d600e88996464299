"""A configuration change in the demo history (bench/config_history.py: the golden scenarios' real cards under the
configuration before and after the shipped example) lowers cards per anakinra order; governance reads the same
numbers from the stored rows as the history holds, on both backends, and the page shows the change in Chromium
(screenshot in test-output/)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bench.config_history import BEFORE, cards_per_order, generate, load
from fhirsvc import create_app
from fhirsvc.storage import open_store
from tests.conftest import serving
from tests.governance.test_e2e_browser import _full_page
from tests.monograph.test_e2e_browser import _open, browser  # noqa: F401 - the fixture
from tests.test_site_config import EXAMPLE

END = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
PERIOD = "from=2026-10-01&to=2026-11-29"


@pytest.fixture(scope="module")
def history(knowledge):
    return generate(knowledge, end=END)


def make_app(database_url: str):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": database_url,
                       "GOVERNANCE": "on", "SITE_CONFIG": str(EXAMPLE), "CARD_RETENTION_DAYS": 3650})


def test_the_change_lowers_cards_per_order_and_governance_says_so(database_url, history):
    expected = cards_per_order(history)
    after = next(v for v in history.versions if v != BEFORE["version"])
    assert expected[after]["mean"] < expected[BEFORE["version"]]["mean"]
    store = open_store(database_url)
    try:
        load(store, history)
    finally:
        store.close()
    client = make_app(database_url).test_client()
    report = client.get(f"/governance/report.json?{PERIOD}").get_json()
    by_version = report["cardsPerOrder"]["anakinra"]["byConfiguration"]
    for version, numbers in expected.items():
        assert by_version[version]["orders"] == numbers["orders"]
        assert by_version[version]["mean"] == pytest.approx(numbers["mean"], abs=1e-4)
        assert by_version[version]["p90"] == numbers["p90"]
    assert report["configurationEffect"]["versions"] == [BEFORE["version"], after]
    seniors = report["configurationEffect"]["rules"]["anakinra-seniors"]
    assert seniors[BEFORE["version"]]["cardsIssued"] > 0 and after not in seniors  # switched off: no card after
    in_force = {r["rule"]: r for r in report["configurationInForce"]["rules"]}
    assert not in_force["anakinra-seniors"]["enabled"] and in_force["anakinra-seniors"]["reason"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, history) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('config-change') / 'state.sqlite3'}"
    store = open_store(url)
    load(store, history)
    store.close()
    with serving(make_app(url)) as base:
        yield base


@pytest.mark.slow
def test_the_page_shows_the_change_in_a_browser(browser, server):  # noqa: F811 - the imported fixture
    _open(browser, f"{server}/governance/?{PERIOD}")
    seen = browser.execute_script("""
        const rows = [...document.querySelectorAll('#cards-per-order tbody tr')].map(r => ({
            version: r.dataset.version, mean: r.querySelector('[data-col=mean]').innerText,
            p90: r.querySelector('[data-col=p90]').innerText}));
        return {rows, inForce: document.querySelectorAll('#configuration-in-force tbody tr').length,
                effect: document.querySelectorAll('#configuration-effect tbody tr').length,
                method: document.getElementById('spc-method').innerText,
                page: document.documentElement.scrollWidth, viewport: innerWidth};
    """)
    means = {row["version"]: float(row["mean"]) for row in seen["rows"]}
    assert means["2026-12-committee"] < means[BEFORE["version"]]
    assert seen["inForce"] >= 4 and seen["effect"] >= 5
    assert "u-chart" in seen["method"] and "False-alarm rate" in seen["method"]
    _full_page(browser, "governance-config-change-full.png")
