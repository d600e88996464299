"""Override reasons from outside reach no reader raw: the page shows only coded reasons (the service's display
of its own codes, else the code; never a display or comment a client sent), the CSV neutralises cells a
spreadsheet would take for a formula, and ``fhirsvc governance`` lets no control character reach the terminal.
The cards and the feedback go through the real routes (order-sign, then feedback) into a real SQLite store."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest

from fhirsvc import create_app
from fhirsvc.cli import main
from fhirsvc.evaluation.cards import OVERRIDE_REASONS
from tests.cds.conftest import SERVICE, order_request

FORMULA = '=HYPERLINK("https://evil.example/x","Click")\x1b[2J\u202e'  # a code: shown, so made harmless
FREE_TEXT = "<script>alert(1)</script> FREE\x1b]0;owned\x07\x1b[2J\u202eTEXT"
COMMENT = "=cmd|' /C calc'!A0 COMMENT"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # tabs and newlines: the layout's


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A store with one warning card (300 mg/day of anakinra) overridden three ways by a hostile client: a code
    of another system that is a formula, with free text as its display; one of the service's own codes with a
    forged display; no code, a formula as comment."""
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": url,
                      "GOVERNANCE": "on"})
    client = app.test_client()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reasons = [{"reason": {"system": "https://evil.example/codes", "code": FORMULA, "display": FREE_TEXT},
                "userComment": COMMENT},
               {"reason": {"system": OVERRIDE_REASONS, "code": "benefit-outweighs-risk",
                           "display": "FORGED DISPLAY"}},
               {"userComment": COMMENT}]
    for n, reason in enumerate(reasons):  # one card each (order mr-0, mr-1, mr-2)
        order = order_request()
        resource = order["context"]["draftOrders"]["entry"][0]["resource"]
        resource["id"] = f"mr-{n}"
        resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 300
        card = next(c for c in client.post(SERVICE, json=order).get_json()["cards"] if c["indicator"] == "warning")
        own = next(r for r in card["overrideReasons"] if r["code"] == "benefit-outweighs-risk")
        answer = client.post(f"{SERVICE}/feedback", json={"feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": now, "overrideReason": reason}]})
        assert answer.status_code == 200, answer.get_data(as_text=True)
    monkeypatch.setenv("FHIRSVC_DATABASE_URL", url)
    monkeypatch.delenv("FHIRSVC_KNOWLEDGE_PATH", raising=False)
    return client, own


def test_the_page_shows_only_coded_reasons_escaped(hostile):
    client, own = hostile
    page = client.get("/governance/").get_data(as_text=True)
    assert "FREE" not in page and "FORGED" not in page and "COMMENT" not in page and "<script>" not in page
    assert own["display"] in page  # the service's own display of its code
    assert "=HYPERLINK(&#34;https://evil.example/x&#34;,&#34;Click&#34;)" in page  # the code, autoescaped
    assert "\x1b" not in page and "\u202e" not in page
    assert "no reason coded" in page


def test_the_json_names_reasons_as_the_page(hostile):
    client, own = hostile
    document = client.get("/governance/report.json").get_json()
    shown = {r["display"] for rule in document["rules"] for r in rule["overrideReasons"]}
    assert shown == {own["display"], FORMULA.replace("\x1b", "").replace("\u202e", ""), "no reason coded"}
    assert FORMULA in {r["code"] for rule in document["rules"] for r in rule["overrideReasons"]}  # the data


def assert_neutral(rows: list[list[str]]) -> None:
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    reasons = rows[1][rows[0].index("top_override_reasons")]
    assert reasons.startswith("'=HYPERLINK(") and "FREE" not in reasons and "FORGED" not in reasons
    assert rows[1][rows[0].index("cards_issued")] == "3"  # numbers stay numbers


def test_the_csv_neutralises_formulas(hostile):
    client, _ = hostile
    rows = list(csv.reader(io.StringIO(client.get("/governance/report.csv").get_data(as_text=True))))
    assert_neutral(rows)


def test_the_terminal_gets_no_control_character(hostile, capsys):
    assert main(["governance"]) == 0
    table = capsys.readouterr().out
    assert not CONTROL.search(table) and "FREE" not in table and "HYPERLINK" in table
    assert main(["governance", "--csv"]) == 0
    assert_neutral(list(csv.reader(io.StringIO(capsys.readouterr().out))))
    assert main(["governance", "--json"]) == 0
    out = capsys.readouterr().out
    assert not CONTROL.search(out.replace("\n", ""))
    assert FORMULA in {r["code"] for rule in json.loads(out)["rules"] for r in rule["overrideReasons"]}
