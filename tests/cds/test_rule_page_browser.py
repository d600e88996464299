"""The rule page in a real headless browser (Debian's Chromium through Selenium, the fixtures of
tests/monograph/test_e2e_browser.py): a card's "About this rule" link opens the rule's source attributes, readable on
a phone too. Screenshots go to ``test-output/``. Skipped, saying how to install them, without Chromium or Selenium."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.cds.conftest import SERVICE, order_request
from tests.monograph.test_e2e_browser import _open, _screenshot, browser, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow  # serving: a headless browser


def test_a_cards_about_this_rule_link_opens_its_source_attributes(cds, browser, server):  # noqa: F811
    body = order_request()
    body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0][
        "doseQuantity"]["value"] = 300
    card = cds.post(SERVICE, json=body).get_json()["cards"][0]
    rule_id = card["extension"]["fhirsvc.rule"]
    (about,) = [link["url"] for link in card["links"] if link["label"] == "About this rule"]
    path = urlsplit(about).path
    assert path == f"/rules/{rule_id}"
    _open(browser, f"{server}{path}")
    shown = browser.execute_script("""
        const rows = [...document.querySelectorAll('#source-attributes tbody tr')];
        return {title: document.title, h1: document.querySelectorAll('h1').length,
                rows: rows.map(r => r.querySelector('th').innerText),
                notStated: document.querySelectorAll('#source-attributes strong').length,
                citation: document.querySelector('#attribute-bibliographicCitation td').innerText,
                page: document.documentElement.scrollWidth, viewport: innerWidth};
    """)
    assert shown["title"] == f"About rule {rule_id} · fhirsvc" and shown["h1"] == 1
    assert shown["rows"] == ["Bibliographic citation", "Developer", "Funding source", "Release date", "Revision date",
                             "Patient data elements used"]
    assert shown["notStated"] == 2 and "Medically reviewed 2015-05-26" in shown["citation"]
    assert shown["page"] <= shown["viewport"], json.dumps(shown)
    _screenshot(browser, "rule-source-attributes.png")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        _open(browser, f"{server}/rules/{rule_id}")
        fit = browser.execute_script("return {page: document.documentElement.scrollWidth, viewport: innerWidth};")
        assert fit["page"] <= fit["viewport"], f"the rule page scrolls sideways on a phone: {fit}"
        _screenshot(browser, "rule-source-attributes-phone.png")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
