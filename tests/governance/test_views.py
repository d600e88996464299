"""GET /governance/, /governance/report.csv, /governance/report.json and ``fhirsvc governance`` on a store holding a
generated history (both backends): the numbers in the page's table, the CSV, the JSON and the terminal table equal
the oracle's (tests/governance/conftest.py). The page loads nothing and runs nothing; an empty store says so; bad
parameters answer 400 with the reason, never a 500; off unless FHIRSVC_GOVERNANCE=on."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from bench.history import generate, load
from fhirsvc import create_app
from fhirsvc.cli import main
from fhirsvc.storage import open_store
from tests.governance.conftest import END, SEED, START, expected

FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
QUERY = f"from={FIRST}&to={LAST}"


@pytest.fixture(scope="module")
def history():
    return generate(SEED, cards=4000, feedback=1500, start=START, end=END)


def make_app(database_url: str, **config):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "DATABASE_URL": database_url, "GOVERNANCE": "on",
                       **config})


@pytest.fixture
def loaded_url(database_url, history):
    store = open_store(database_url)
    load(store, history)
    store.close()
    return database_url


@pytest.fixture
def client(loaded_url):
    return make_app(loaded_url).test_client()


class RuleTable(HTMLParser):
    """The rows of the page's table#rules: each row's data-* attributes and its data-col cells' text."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.column: str | None = None
        self.in_rules = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.in_rules = attrs.get("id") == "rules"
        elif self.in_rules and tag == "tr" and "data-topic" in attrs:
            self.rows.append({"rule": (attrs["data-topic"], attrs["data-indicator"], attrs["data-drug"])})
        elif self.in_rules and tag == "td" and "data-col" in attrs:
            self.column = attrs["data-col"]
            self.rows[-1][self.column] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.column = None
        elif tag == "table":
            self.in_rules = False

    def handle_data(self, data):
        if self.column:
            self.rows[-1][self.column] += data


def oracle_numbers(history, service=None) -> dict:
    oracle, _ = expected(history, FIRST, LAST, service)
    return {key: (e.issued, e.with_feedback, e.accepted, e.overridden) for key, e in oracle.items()}


def test_the_page_shows_the_stores_numbers(client, history):
    response = client.get(f"/governance/?{QUERY}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    table = RuleTable()
    table.feed(response.get_data(as_text=True))
    shown = {row["rule"]: (int(row["issued"]), int(row["with-feedback"].split()[0]), int(row["accepted"]),
                           int(row["overridden"])) for row in table.rows}
    assert shown == oracle_numbers(history)
    oracle, _ = expected(history, FIRST, LAST)
    for row in table.rows:
        want = oracle[row["rule"]]
        assert row["rate"] == ("\u2013" if want.rate is None else f"{want.rate * 100:.0f} %")
        flagged = want.rate is not None and want.rate >= 0.8 and want.feedback >= 20
        assert ("FLAG" in row["flag"]) == flagged
        top = [count for _, count in want.reasons.most_common(3)]
        assert [int(n) for n in re.findall(r"\((\d+)\)", row["reasons"])] == top
    page = response.get_data(as_text=True)
    assert page.count("<svg") == 2 and 'role="img"' in page
    assert f'id="total-issued">{sum(v[0] for v in shown.values())}<' in page
    assert 'id="not-issued"' not in page  # feedback on cards never issued is counted on the day it was received
    _, not_issued = expected(history, FIRST, LAST)
    today = datetime.now(UTC).date()
    page = client.get(f"/governance/?from={today}&to={today}").get_data(as_text=True)
    assert not_issued > 0 and re.search(rf'id="not-issued">{not_issued} feedback items received on\s+cards', page)


def test_csv_json_and_terminal_say_the_same(client, history, loaded_url, monkeypatch, capsys):
    want = oracle_numbers(history)
    response = client.get(f"/governance/report.csv?{QUERY}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {(r["topic"], r["indicator"], r["drug"]): (int(r["cards_issued"]), int(r["cards_with_feedback"]),
                                                      int(r["accepted"]), int(r["overridden"])) for r in rows} == want

    document = client.get(f"/governance/report.json?{QUERY}").get_json()
    assert {(r["topic"], r["indicator"], r["drug"]): (r["cardsIssued"], r["cardsWithFeedback"], r["accepted"],
                                                      r["overridden"]) for r in document["rules"]} == want
    assert [r["rank"] for r in document["rules"]] == [int(r["rank"]) for r in rows]
    assert [r["rule"] or "" for r in document["rules"]] == [r["rule"] for r in rows]  # each row names its rule id

    monkeypatch.setenv("FHIRSVC_DATABASE_URL", loaded_url)
    assert main(["governance", "--from", str(FIRST), "--to", str(LAST), "--csv"]) == 0
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out))) == rows
    assert main(["governance", "--from", str(FIRST), "--to", str(LAST), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == document
    assert main(["governance", "--from", str(FIRST), "--to", str(LAST)]) == 0
    table = capsys.readouterr().out
    for row in rows:  # each rule's line: rank, label, cards issued, with feedback, accepted, overridden
        line = next(line for line in table.splitlines() if re.match(rf"\s*{row['rank']}\s", line))
        numbers = re.findall(r"(?<![\w(])(\d+)(?![\w%)])", line.split("·", 1)[1])
        assert numbers[:4] == [row["cards_issued"], row["cards_with_feedback"], row["accepted"], row["overridden"]]


def test_one_service(client, history):
    service = "medication-safety-order-sign"
    document = client.get(f"/governance/report.json?{QUERY}&service={service}").get_json()
    assert document["service"] == service
    assert {(r["topic"], r["indicator"], r["drug"]): (r["cardsIssued"], r["cardsWithFeedback"], r["accepted"],
                                                      r["overridden"]) for r in document["rules"]} == \
        oracle_numbers(history, service)


def test_the_page_loads_nothing_and_runs_nothing(client):
    response = client.get(f"/governance/?{QUERY}")
    page = response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "form-action 'self'" in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in response.headers  # no other site's script may read it
    assert "<script" not in page.lower()
    assert re.findall(r"<[a-zA-Z][^>]*\s(on\w+)\s*=", page) == []  # no event handler attributes
    for url in re.findall(r'(?:href|src|action|xlink:href)="([^"]*)"', page):
        assert not re.match(r"(?i)(https?:)?//", url), f"the page points outside: {url}"
    assert "http://" not in page.replace("http://www.w3.org/", "")  # SVG namespaces only


def test_an_empty_store_says_so(tmp_path):
    client = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}").test_client()
    page = client.get("/governance/").get_data(as_text=True)
    assert 'id="empty"' in page and "No cards were issued and no feedback on issued cards was received" in page
    assert "<svg" not in page and 'id="rules"' not in page
    csv_text = client.get("/governance/report.csv").get_data(as_text=True)
    assert csv_text.splitlines() == [csv_text.splitlines()[0]] and csv_text.startswith("rank,rule,topic,")
    document = client.get("/governance/report.json").get_json()
    assert document["rules"] == [] and document["totals"]["cardsIssued"] == 0
    assert document["totals"]["overrideRate"] is None


@pytest.mark.parametrize(("query", "reason"), [
    ("from=2026-13-01", "from=&#39;2026-13-01&#39; is not a calendar date"),
    ("to=30/11/2026", "is not a date of the form YYYY-MM-DD"),
    ("from=2026-12-01&to=2026-11-01", "from=2026-12-01 is after to=2026-11-01"),
    ("from=2020-01-01&to=2026-11-01", "at most 366 days"),
    ("from=0000-01-01", "not a calendar date"),
    ("from=9999-12-31&to=9999-12-31", "out of range"),
    ("service=nope", "service=&#39;nope&#39; is not a service of this server"),
    ("from=%00%ff", "is not a date of the form"),
    ("from=" + "9" * 5000, "is not a date of the form"),
])
def test_bad_parameters_answer_400_with_the_reason(client, query, reason):
    page = client.get(f"/governance/?{query}")
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert reason in page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    as_json = client.get(f"/governance/report.json?{query}")
    assert as_json.status_code == 400 and as_json.get_json()["error"] == "Bad Request"
    assert as_json.get_json()["message"].replace("'", "&#39;") in page.get_data(as_text=True)
    as_csv = client.get(f"/governance/report.csv?{query}")
    assert as_csv.status_code == 400 and as_csv.mimetype == "text/plain"


def test_bad_parameters_in_the_terminal(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FHIRSVC_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert main(["governance", "--from", "2026-12-01", "--to", "2026-11-01"]) == 2
    assert "from=2026-12-01 is after to=2026-11-01" in capsys.readouterr().err
    monkeypatch.setenv("FHIRSVC_DATABASE_URL", "mysql://nowhere/x")
    assert main(["governance"]) == 2
    assert "unknown kind of database" in capsys.readouterr().err
    monkeypatch.setenv("FHIRSVC_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert main(["governance"]) == 0
    assert "No cards were issued" in capsys.readouterr().out


def test_off_unless_switched_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    off = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "DATABASE_URL": url}).test_client()
    for route in ("/governance/", "/governance/report.csv", "/governance/report.json"):
        response = off.get(route)
        assert response.status_code == 404, route
        assert "FHIRSVC_GOVERNANCE" in response.get_data(as_text=True)
    with pytest.raises(Exception, match="FHIRSVC_GOVERNANCE='yes': use on or off"):
        make_app(url, GOVERNANCE="yes")
    with pytest.raises(Exception, match="GOVERNANCE_FLAG_OVERRIDE_RATE"):
        make_app(url, GOVERNANCE_FLAG_OVERRIDE_RATE=1.5)


def test_a_writer_holding_the_sqlite_file_does_not_stop_the_page(tmp_path):
    """WAL: the page reads a snapshot while a writer (a CDS call noting its cards, feedback) holds the write lock;
    neither waits for the other."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    client = make_app(url, DATABASE_TIMEOUT=0.2).test_client()
    writer = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO issued_cards (service, card, topic, indicator, drug, suggestions, issued_at) VALUES"
                   " ('medication-safety-order-sign', 'c1', 'DOSEH', 'warning', 'anakinra', '[]', ?)",
                   (f"{date.today()}T00:00:00.000000Z",))
    try:
        response = client.get("/governance/report.json")
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert response.status_code == 200 and response.get_json()["rules"] == []  # the uncommitted card is not seen
    assert client.get("/governance/report.json").get_json()["totals"]["cardsIssued"] == 1


@pytest.mark.slow  # chaos: PostgreSQL stopped while serving
def test_the_database_lost_is_a_503_page(postgres_cluster, postgres_url):
    client = make_app(postgres_url, DATABASE_TIMEOUT=1.0).test_client()
    assert client.get("/governance/").status_code == 200
    postgres_cluster.stop("immediate")
    try:
        page, data = client.get("/governance/"), client.get("/governance/report.json")
    finally:
        postgres_cluster.start()
    assert page.status_code == 503 and "database is unavailable" in page.get_data(as_text=True)
    assert data.status_code == 503 and data.get_json()["error"] == "Service Unavailable"
