"""The rendered pages: HTML structure, accessibility basics, escaping, the list page and the 404 page."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

import pytest

from tests.monograph.test_model import ANCHORS


class Outline(HTMLParser):
    """What the tests look at in a page: ids, headings, table header cells, links, tags."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.headings: list[tuple[int, str]] = []
        self.th: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.lang: str | None = None
        self._heading: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "html":
            self.lang = attributes.get("lang")
        if tag == "th":
            self.th.append(attributes)
        if tag == "a":
            self.links.append(attributes.get("href") or "")
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = [tag]

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag):
        if self._heading is not None and tag == self._heading[0]:
            self.headings.append((int(tag[1]), "".join(self._heading[1:]).strip()))
            self._heading = None


@pytest.fixture(scope="module")
def html(app) -> str:
    response = app.test_client().get("/monographs/anakinra")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return response.get_data(as_text=True)


@pytest.fixture(scope="module")
def outline(html) -> Outline:
    return Outline(html)


def test_every_anchor_is_a_section(outline):
    for anchor in ANCHORS:
        assert outline.ids.count(anchor) == 1, anchor
    assert len(outline.ids) == len(set(outline.ids)), "duplicate ids"
    for anchor in ANCHORS:
        assert f"#{anchor}" in outline.links  # the table of contents


def test_one_h1_and_ordered_headings(outline):
    levels = [level for level, _ in outline.headings]
    assert levels.count(1) == 1 and levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), outline.headings
    assert outline.headings[0] == (1, "anakinra (Kineret)")


def test_lang_viewport_print_and_no_script(html, outline):
    assert outline.lang == "en"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@media print" in html and "@media (max-width" in html
    assert "script" not in outline.tags


def test_tables_have_scoped_headers(outline):
    assert outline.th and all(th.get("scope") in ("col", "row") for th in outline.th)


def test_sections_link_their_fhir_resources(outline, client):
    fhir = [link for link in outline.links if link.startswith("/fhir/R5/")]
    for link in ("/fhir/R5/MedicationKnowledge/anakinra", "/fhir/R5/ValueSet/live-vaccines",
                 "/fhir/R5/PlanDefinition/anakinra-monitoring", "/fhir/R5/DocumentReference/anakinra-monograph-2015",
                 "/fhir/R5/Composition/anakinra-patient-information"):
        assert link in fhir
    for link in sorted(set(fhir)):
        assert client.get(link).status_code == 200, link


def test_nomid_table_rendered(html):
    section = html[html.index('id="dosing-nomid"'):html.index('id="kidney-disease"')]
    assert re.search(r'<th scope="row" class="num">20 kg</th><td class="num">20 mg/day <span class="vol">0.13 mL'
                     r'</span></td><td class="num">40 mg/day <span class="vol">0.27 mL</span></td>'
                     r'<td class="num">160 mg/day <span class="vol">1.07 mL</span></td>', section)
    assert "Maximum: 8 mg/kg/day" in section and "100 mg/0.67 mL" in section


def test_vaccines_timeline_and_label_differences_rendered(html):
    vaccines = html[html.index('id="live-vaccines"'):html.index('id="warnings"')]
    assert '<th scope="row">MMRV</th><td>94</td>' in vaccines
    monitoring = html[html.index('id="monitoring"'):html.index('id="storage"')]
    assert '<ol class="timeline"' in monitoring and '<span class="when">Month 12</span>' in monitoring
    source = html[html.index('id="source"'):]
    assert source.count('class="label-note"') == 7
    assert '<a href="https://www.drugs.com/pregnancy/anakinra.html" rel="external noopener noreferrer">' in source


def test_apostrophes_are_escaped(html):
    assert "doesn&#39;t get worse" in html


def test_security_headers(client):
    response = client.get("/monographs/anakinra")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_second_drug_is_escaped_and_listed(two_drug_app):
    client = two_drug_app.test_client()
    html = client.get("/monographs/examplumab").get_data(as_text=True)
    assert "<script>" not in html and "<img" not in html and "javascript:" not in html
    assert "Blocks an enzyme &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    outline = Outline(html)
    assert {"dosing-gout", "dosing-podagra", "dosing-daily", "kidney-disease", "live-vaccines"} <= set(outline.ids)
    listing = Outline(client.get("/monographs/").get_data(as_text=True))
    assert {"/monographs/anakinra", "/monographs/examplumab"} <= set(listing.links)


def test_list_page(client):
    response = client.get("/monographs/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    outline = Outline(response.get_data(as_text=True))
    assert [h for h in outline.headings if h[0] == 1] == [(1, "Monographs")]
    assert "/monographs/anakinra" in outline.links
    assert all(th.get("scope") in ("col", "row") for th in outline.th)


@pytest.mark.parametrize("path", ["/monographs/no-such-drug", "/monographs/anakinra/extra",
                                  "/monographs/%3Cscript%3E"])
def test_unknown_drug_is_a_404_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>No monograph for" in html and "Traceback" not in html and "<script>" not in html
    assert 'href="/monographs/anakinra"' in html
