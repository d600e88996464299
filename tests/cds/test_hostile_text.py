"""Text from the chart reaches a card only escaped: a medication record named like a Markdown link, an HTML
image or with terminal escapes makes no link, image, HTML or control character in the card's summary (plain
text), its detail (GitHub-flavored Markdown) or its suggestions, through order-sign and through $check-orders.
``fhirsvc/escaping.py`` does the escaping; ``wording.words`` applies it to every fact."""

from __future__ import annotations

import json
import re

import pytest

from fhirsvc.escaping import csv_cell, markdown_text, plain_text
from tests.cds.conftest import SERVICE
from tests.conftest import ROOT

markdown_it = pytest.importorskip("markdown_it")

TNF_ACTIVE = ROOT / "fixtures" / "scenarios" / "014-tnf-inhibitor-active.request.json"
HOSTILE = {
    "link": "[Refill here](https://evil.example/rx) Humira",
    "image": "![x](https://evil.example/p.png) adalimumab",
    "html": "<img src=x onerror=alert(1)> Humira",
    "escape": "Humira \x1b]8;;https://evil.example\x07\u202eadalimumab",
}
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def gfm(text: str) -> str:
    """The detail as an EHR renders it: CommonMark with GFM tables and strikethrough, HTML on."""
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)


def tnf_request(name: str) -> dict:
    body = json.loads(TNF_ACTIVE.read_text(encoding="utf-8"))
    record = body["prefetch"]["medications"]["entry"][1]["resource"]
    assert "Humira" in record["medicationCodeableConcept"]["text"]
    record["medicationCodeableConcept"]["text"] = name
    return body


def assert_harmless(card: dict) -> None:
    summary, detail = card["summary"], card["detail"]
    assert not CONTROL.search(summary) and not CONTROL.search(detail.replace("\n", " ")), card  # lines: its own
    assert "<img" not in summary and "<img" not in detail
    rendered = gfm(detail)
    tags = set(re.findall(r"</?([a-z0-9]+)", rendered))
    assert tags <= {"p", "strong", "blockquote"}, rendered  # no link, image or HTML of the record's
    for suggestion in card.get("suggestions", ()):
        assert not CONTROL.search(suggestion["label"]) and "<img" not in suggestion["label"]


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_record_name_is_escaped_in_order_sign_cards(cds, name):
    response = cds.post(SERVICE, json=tnf_request(name))
    assert response.status_code == 200, response.get_json()
    cards = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "DRG"]
    assert cards, "the TNF inhibitor on record is still recognised"
    for card in cards:
        assert_harmless(card)
    shown = cards[0]["detail"]
    assert "Humira" in shown or "adalimumab" in shown  # the name is still there, as text


def test_the_link_name_reads_as_text_in_the_detail(cds):
    card = next(c for c in cds.post(SERVICE, json=tnf_request(HOSTILE["link"])).get_json()["cards"]
                if c["source"]["topic"]["code"] == "DRG")
    assert r"**\[Refill here\](https:\/\/evil.example/rx)" in card["detail"]
    assert "[Refill here](https://evil.example/rx)" in card["summary"]  # plain text: shown as written
    assert "Refill here" in gfm(card["detail"]) and "<a " not in gfm(card["detail"])


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_record_name_is_escaped_in_check_orders(cds, name):
    from tests.fhir.test_check_orders import parameters

    posted = parameters(tnf_request(name))
    answer = cds.post("/fhir/R4/$check-orders", json=posted)
    assert answer.status_code == 200, answer.get_json()
    found = [e["resource"] for e in answer.get_json()["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
             and any(c.get("code") == "DRG" for c in e["resource"]["code"]["coding"])]
    assert found
    for issue in found:
        assert_harmless({"summary": issue["code"]["text"], "detail": issue["detail"]})


@pytest.mark.parametrize(("text", "shown"), [
    ("[a](https://x.example)", r"\[a\](https:\/\/x.example)"),
    ("![a](b)", r"!\[a\](b)"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
    ("<https://x.example>", r"&lt;https:\/\/x.example>"),
    ("www.evil.example", r"www\.evil.example"),
    ("*a* _b_ `c` ~d~ a|b", r"\*a\* \_b\_ \`c\` \~d\~ a\|b"),
    ("&amp; &#60;", "&amp;amp; &amp;#60;"),
    ("# heading", r"\# heading"),
    ("- item", r"\- item"),
    ("1. item", r"1\. item"),
    ("> quoted", "&gt; quoted"),
    ("a\nb\r\n\tc\x1b[31m\u202ed", r"a b   c\[31md"),
    # ordinary names read unchanged
    ("methotrexate 2.5 mg tablet (Trexall)", "methotrexate 2.5 mg tablet (Trexall)"),
    ("CrCl < 30 mL/min, A & B, -5", "CrCl < 30 mL/min, A & B, -5"),
])
def test_markdown_text(text, shown):
    assert markdown_text(text) == shown
    rendered = gfm(markdown_text(text))
    assert "<a " not in rendered and "<img" not in rendered and "<h1" not in rendered and "<li" not in rendered
    assert "<blockquote" not in rendered and "<code" not in rendered and "<em" not in rendered


def test_plain_text():
    assert plain_text("a\x1b[2J\x9b31m\x7f\u202eb\u2066c\nd\te") == "a[2J31mbc d e"
    assert plain_text("<img src=x> < 30") == "\u2039img src=x> < 30"


@pytest.mark.parametrize(("value", "written"), [
    ("=HYPERLINK(\"https://evil.example\",\"x\")", "'=HYPERLINK(\"https://evil.example\",\"x\")"),
    ("+1", "'+1"), ("-1+1", "'-1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), (-3, -3), (0.25, 0.25), ("", ""),
])
def test_csv_cell(value, written):
    assert csv_cell(value) == written
