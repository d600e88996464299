"""End to end in a real headless browser: Debian's Chromium, driven by chromedriver through Selenium.

The app runs on a real loopback HTTP server (werkzeug ``make_server`` in a thread). The browser opens the
link a renal CDS card carries (``/monographs/anakinra#kidney-disease``) and must land on that section; the
page must also fit a phone's width and hide its navigation when printed. Screenshots go to
``test-output/`` (gitignored). Without Chromium, chromedriver or Selenium these tests are skipped with a
message saying how to install them: ``make browser`` (and ``make install`` for Selenium).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, serving

pytestmark = pytest.mark.slow  # serving: a headless browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OUTPUT = ROOT / "test-output"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")
INSTALL = "install it with `make browser` (Debian's chromium and chromium-driver)"


def _webdriver():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.skip(f"end-to-end browser tests need {' and '.join(missing)}: {INSTALL}")
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("end-to-end browser tests need selenium: `make install` (pip install -e '.[test]')")
    return webdriver


@pytest.fixture(scope="module")
def server(app) -> Iterator[str]:
    """The app on a real HTTP server on loopback, port chosen by the system."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a fresh profile; Selenium Manager is not used (both paths are given)."""
    webdriver = _webdriver()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, url: str) -> None:
    driver.get(url)
    deadline = time.monotonic() + 10
    while driver.execute_script("return document.readyState") != "complete":
        assert time.monotonic() < deadline, f"{url} did not finish loading"
        time.sleep(0.05)


def _screenshot(driver, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    assert path.stat().st_size > 10_000  # a real picture, not an empty canvas
    return path


def test_card_link_lands_on_the_kidney_section(browser, server):
    _open(browser, f"{server}/monographs/anakinra#kidney-disease")
    where = browser.execute_script("""
        const section = document.getElementById('kidney-disease');
        const box = section.getBoundingClientRect();
        const target = document.querySelector(':target');
        return {hash: location.hash, target: target && target.id, top: box.top, height: innerHeight,
                scrolled: scrollY, heading: section.querySelector('h2').innerText,
                h1: document.querySelectorAll('h1').length, lang: document.documentElement.lang};
    """)
    assert where["hash"] == "#kidney-disease"
    assert where["target"] == "kidney-disease"
    assert where["scrolled"] > 0, "the browser stayed at the top of the page"
    assert 0 <= where["top"] < where["height"] / 2, f"the section is not at the top of the viewport: {where}"
    assert (where["heading"], where["h1"], where["lang"]) == ("Kidney disease", 1, "en")
    assert "Creatinine clearance or eGFR < 30 mL/min" in browser.find_element("id", "kidney-disease").text
    _screenshot(browser, "monograph-kidney-disease.png")


def test_readable_on_a_phone(browser, server):
    """A 390 px wide phone screen (device emulation: headless windows are at least 500 px wide)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        _open(browser, f"{server}/monographs/anakinra#dosing-nomid")
        fit = browser.execute_script("""
            const wrap = document.querySelector('#dosing-nomid .weight-table').closest('.table-wrap');
            return {page: document.documentElement.scrollWidth, viewport: innerWidth, table: wrap.clientWidth,
                    font: parseFloat(getComputedStyle(document.body).fontSize)};
        """)
        assert fit["viewport"] == 390
        assert fit["page"] <= fit["viewport"], f"the page scrolls sideways on a phone: {fit}"
        assert fit["table"] <= fit["viewport"] and fit["font"] >= 14
        _screenshot(browser, "monograph-phone-dosing-nomid.png")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_print_layout_hides_navigation(browser, server):
    _open(browser, f"{server}/monographs/anakinra")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shown = browser.execute_script("""
            return {toc: getComputedStyle(document.querySelector('nav.toc')).display,
                    source: getComputedStyle(document.querySelector('.sources a'), '::after').content};
        """)
        assert shown["toc"] == "none"
        assert "/fhir/R5/" in shown["source"]  # printed links show where they lead
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
