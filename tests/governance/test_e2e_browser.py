"""The governance page end to end in the real headless Chromium of the monograph tests (same Selenium set-up):
a store holding a generated history of the last 45 days, the app on a real loopback server. The default page (last
30 days) shows the ranked rules, both charts drawn and fitting, the period form submits (no script), a bad date
answers the 400 page in the browser, and a phone width needs no sideways scrolling. Screenshots for the desktop
and the phone go to test-output/."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from bench.history import default_window, generate, load
from fhirsvc import create_app
from fhirsvc.storage import open_store
from tests.conftest import serving
from tests.monograph.test_e2e_browser import OUTPUT, _open, _screenshot, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow  # serving: a headless browser

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('governance') / 'state.sqlite3'}"
    store = open_store(url)
    load(store, generate(15, 4000, 1500, *default_window(45)))
    store.close()
    app = create_app({"KNOWLEDGE_PATH": "", "DATABASE_URL": url, "GOVERNANCE": "on"})
    with serving(app) as base:
        yield base


def _full_page(driver, name: str) -> None:
    """The whole page, beyond the window (Chromium's DevTools capture)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / name).write_bytes(base64.b64decode(shot["data"]))


def test_the_page_on_a_desktop(browser, server):  # noqa: F811 - the imported fixture
    _open(browser, f"{server}/governance/")
    seen = browser.execute_script("""
        const rows = [...document.querySelectorAll('#rules tbody tr')];
        const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
            const box = svg.getBoundingClientRect();
            return {width: box.width, height: box.height, label: svg.getAttribute('aria-labelledby'),
                    texts: svg.querySelectorAll('text').length};
        });
        return {rows: rows.length, flagged: rows.filter(r => r.classList.contains('flagged')).length,
                flags: rows.filter(r => r.querySelector('.flag')).length,
                rates: rows.map(r => r.querySelector('[data-col=rate]').innerText),
                charts, page: document.documentElement.scrollWidth, viewport: innerWidth,
                scripts: document.scripts.length, title: document.title,
                issued: document.getElementById('total-issued').innerText};
    """)
    assert seen["rows"] >= 10 and seen["flagged"] == seen["flags"] >= 1
    rates = [int(rate.rstrip(" %")) for rate in seen["rates"] if rate != "\u2013"]
    assert rates == sorted(rates, reverse=True)
    assert len(seen["charts"]) == 2 and seen["scripts"] == 0
    for chart in seen["charts"]:
        assert chart["width"] > 400 and chart["height"] > 100 and chart["texts"] > 10, chart
        assert browser.find_element("id", chart["label"]).text  # each chart is labelled by its caption
    assert seen["page"] <= seen["viewport"], f"the page scrolls sideways: {seen}"
    assert int(seen["issued"]) > 1000
    _screenshot(browser, "governance-desktop.png")
    _full_page(browser, "governance-desktop-full.png")


def test_the_period_form_and_a_bad_date(browser, server):  # noqa: F811
    _open(browser, f"{server}/governance/")
    form = browser.find_element("css selector", "form.period")
    browser.execute_script("arguments[0].querySelector('[name=from]').value = '2026-01-05';"
                           "arguments[0].querySelector('[name=to]').value = '2026-01-11';", form)
    form.find_element("css selector", "select option[value='medication-safety-order-sign']").click()
    form.find_element("css selector", "button[type=submit]").click()
    _wait_for(browser, lambda: "from=2026-01-05" in browser.current_url)
    assert "service=medication-safety-order-sign" in browser.current_url
    assert "No cards were issued" in browser.find_element("id", "empty").text
    _open(browser, f"{server}/governance/?from=2026-02-30")
    assert "from='2026-02-30' is not a calendar date" in browser.find_element("css selector", ".error").text


def test_the_page_on_a_phone(browser, server):  # noqa: F811
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        _open(browser, f"{server}/governance/")
        fit = browser.execute_script("""
            return {page: document.documentElement.scrollWidth, viewport: innerWidth,
                    charts: [...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().width),
                    tables: [...document.querySelectorAll('.table-wrap')].map(t => t.clientWidth),
                    font: parseFloat(getComputedStyle(document.body).fontSize)};
        """)
        assert fit["viewport"] == 390, f"something is wider than the phone: {fit}"
        assert fit["page"] <= fit["viewport"], f"the page scrolls sideways on a phone: {fit}"
        assert all(0 < width <= 390 for width in fit["charts"] + fit["tables"]) and fit["font"] >= 14
        _screenshot(browser, "governance-phone.png")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _wait_for(driver, condition, timeout: float = 10) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda _: condition())
