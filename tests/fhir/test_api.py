"""The FHIR REST API on both bases: read, vread, conditional reads, search, operations, errors, CORS.

Every response body goes through the validating client (tests/fhir/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest

from fhirsvc.fhir.registry import TYPE_PARAMS
from fhirsvc.fhir.views import MAX_VALIDATE_ISSUES, MAX_VALIDATE_VALUES

SNOMED_RA = "http://snomed.info/sct|69896004"


def ids(response) -> list[str]:
    body = response.get_json()
    assert response.status_code == HTTPStatus.OK, body
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def test_capability_statement_lists_every_served_type_and_parameter(fhir, knowledge):
    body = fhir.get("/fhir/R5/metadata").get_json()
    assert body["fhirVersion"] == "5.0.0" and body["kind"] == "instance" and body["date"]
    served = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(served) == {rtype for rtype, _ in knowledge.resources}
    mk = served["MedicationKnowledge"]
    assert {p["name"] for p in mk["searchParam"]} == {"_id", "_lastUpdated"} | {p.name for p in
                                                                                 TYPE_PARAMS["MedicationKnowledge"]}
    indication = next(p for p in mk["searchParam"] if p["name"] == "indication")
    assert knowledge.resolve(indication["definition"])["code"] == "indication"
    assert {i["code"] for i in mk["interaction"]} == {"read", "vread", "search-type"}
    assert served["ValueSet"]["operation"][0]["name"] == "expand"


def test_read_has_meta_etag_and_last_modified(fhir):
    response = fhir.get("/fhir/R5/MedicationKnowledge/anakinra")
    body = response.get_json()
    assert response.status_code == HTTPStatus.OK
    assert response.headers["Content-Type"] == "application/fhir+json; fhirVersion=5.0; charset=utf-8"
    assert response.headers["ETag"] == f'W/"{body["meta"]["versionId"]}"'
    assert response.headers["Last-Modified"].endswith("GMT")
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert body["indicationGuideline"][0]["dosingGuideline"][0]["id"] == "ra-adult"


def test_vread_and_conditional_reads(fhir):
    first = fhir.get("/fhir/R5/Medication/kineret")
    version = first.get_json()["meta"]["versionId"]
    assert fhir.get(f"/fhir/R5/Medication/kineret/_history/{version}").status_code == HTTPStatus.OK
    assert fhir.get("/fhir/R5/Medication/kineret/_history/nope").status_code == HTTPStatus.NOT_FOUND
    assert fhir.get("/fhir/R5/Medication/kineret",
                    headers={"If-None-Match": first.headers["ETag"]}).status_code == HTTPStatus.NOT_MODIFIED
    assert fhir.get("/fhir/R5/Medication/kineret",
                    headers={"If-None-Match": 'W/"other"'}).status_code == HTTPStatus.OK
    assert fhir.get("/fhir/R5/Medication/kineret", headers={
        "If-Modified-Since": first.headers["Last-Modified"]}).status_code == HTTPStatus.NOT_MODIFIED
    assert fhir.get("/fhir/R5/Medication/kineret", headers={
        "If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}).status_code == HTTPStatus.OK


@pytest.mark.parametrize("if_none_match", [
    "*", '"{v}"', 'W/"{v}"', '"other", "{v}"', 'W/"other", W/"{v}"',
])
def test_if_none_match_compares_weakly_and_takes_a_star(fhir, if_none_match):
    """RFC 9110 13.1.2: If-None-Match uses the weak comparison (the strong form of the ETag matches too), and ``*``
    matches any current representation; If-Modified-Since is then not looked at."""
    version = fhir.get("/fhir/R4/Medication/kineret").get_json()["meta"]["versionId"]
    response = fhir.get("/fhir/R4/Medication/kineret", headers={
        "If-None-Match": if_none_match.format(v=version), "If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert response.headers["ETag"] == f'W/"{version}"'


def test_if_none_match_that_does_not_match_wins_over_if_modified_since(fhir):
    first = fhir.get("/fhir/R4/Medication/kineret")
    response = fhir.get("/fhir/R4/Medication/kineret", headers={
        "If-None-Match": '"other"', "If-Modified-Since": first.headers["Last-Modified"]})
    assert response.status_code == HTTPStatus.OK


SEARCHES = [
    ("MedicationKnowledge?code=L04AC03", ["anakinra"]),
    ("MedicationKnowledge?code=http://www.whocc.no/atc|L04AC03", ["anakinra"]),
    ("MedicationKnowledge?code=http://snomed.info/sct|L04AC03", []),
    ("MedicationKnowledge?code=http://hl7.org/fhir/sid/ndc|", ["anakinra"]),
    ("MedicationKnowledge?code=66658-234-07,999", ["anakinra"]),
    ("MedicationKnowledge?drug-name=KIN", ["anakinra"]),
    ("MedicationKnowledge?drug-name:exact=Kineret", ["anakinra"]),
    ("MedicationKnowledge?drug-name:exact=kineret", []),
    ("MedicationKnowledge?drug-name:contains=prefilled", ["anakinra"]),
    ("MedicationKnowledge?drug-name=prefilled", []),
    ("MedicationKnowledge?doseform=385219001", ["anakinra"]),
    ("MedicationKnowledge?classification=L04AC", ["anakinra"]),
    ("MedicationKnowledge?classification-type:text=ATC", ["anakinra"]),
    ("MedicationKnowledge?ingredient-code=http://snomed.info/sct|385549000", ["anakinra"]),
    ("MedicationKnowledge?status=active", ["anakinra"]),
    ("MedicationKnowledge?status=inactive", []),
    ("MedicationKnowledge?monitoring-program-type=751-8", ["anakinra"]),
    ("MedicationKnowledge?monograph=DocumentReference/anakinra-monograph-2015", ["anakinra"]),
    ("MedicationKnowledge?monograph=anakinra-monograph-2015", ["anakinra"]),
    (f"MedicationKnowledge?indication={SNOMED_RA}", ["anakinra"]),
    ("MedicationKnowledge?indication:text=neonatal-onset", ["anakinra"]),
    ("MedicationKnowledge?indication=http://snomed.info/sct|25064002", []),
    ("MedicationKnowledge?_id=anakinra", ["anakinra"]),
    ("MedicationKnowledge?_lastUpdated=gt2000-01-01", ["anakinra"]),
    ("MedicationKnowledge?_lastUpdated=lt2000", []),
    ("MedicationKnowledge?code:missing=false", ["anakinra"]),
    ("MedicationKnowledge?code:missing=true", []),
    ("ClinicalUseDefinition?type=interaction",
     ["anakinra-interaction-live-vaccines", "anakinra-interaction-tnf-inhibitors"]),
    ("ClinicalUseDefinition?type=contraindication&subject=Medication/kineret",
     ["anakinra-contraindication-anakinra", "anakinra-contraindication-e-coli-protein"]),
    (f"ClinicalUseDefinition?indication={SNOMED_RA}", ["anakinra-indication-ra"]),
    ("ClinicalUseDefinition?effect=http://snomed.info/sct|25064002", ["anakinra-effect-headache"]),
    ("ClinicalUseDefinition?interaction=L04AB", ["anakinra-interaction-tnf-inhibitors"]),
    ("ClinicalUseDefinition?contraindication:text=allergy to proteins",
     ["anakinra-contraindication-e-coli-protein"]),
    ("ClinicalUseDefinition?type:not=undesirable-effect&type:not=warning&type:not=indication",
     ["anakinra-contraindication-anakinra", "anakinra-contraindication-e-coli-protein",
      "anakinra-interaction-live-vaccines", "anakinra-interaction-tnf-inhibitors"]),
    ("ValueSet?url=https://fhirsvc.org/fhir/ValueSet/live-vaccines", ["live-vaccines"]),
    ("ValueSet?name=LiveVacc", ["live-vaccines"]),
    ("ValueSet?status=retired", []),
    ("Medication?code=66658-234-28", ["kineret"]),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES, ids=[q for q, _ in SEARCHES])
def test_search(fhir, query, expected):
    assert sorted(ids(fhir.get(f"/fhir/R5/{query}"))) == expected


def test_search_by_post_equals_get(fhir):
    form = {"type": "interaction", "_count": "1"}
    posted = fhir.post("/fhir/R5/ClinicalUseDefinition/_search", data=form)
    gotten = fhir.get("/fhir/R5/ClinicalUseDefinition", query_string=form)
    assert ids(posted) == ids(gotten) and posted.get_json()["total"] == 2


def test_paging_follows_next_links_to_every_match(fhir):
    page = fhir.get("/fhir/R5/ClinicalUseDefinition?_count=7&_sort=_id").get_json()
    total, seen = page["total"], []
    while True:
        seen += [e["resource"]["id"] for e in page["entry"]]
        assert all(e["fullUrl"].endswith(f"/fhir/R5/ClinicalUseDefinition/{e['resource']['id']}")
                   for e in page["entry"])
        links = {link["relation"]: link["url"] for link in page["link"]}
        if "next" not in links:
            break
        assert "previous" in links or len(seen) == 7
        assert links["next"].startswith("https://cds.example.org/fhir/R5/")  # the public URL (tests/conftest.py)
        page = fhir.get(links["next"].removeprefix("https://cds.example.org")).get_json()
    assert total == 32 and len(seen) == 32 and seen == sorted(seen)


def test_count_summary_elements_and_sort(fhir):
    counted = fhir.get("/fhir/R5/ClinicalUseDefinition?_summary=count").get_json()
    assert counted["total"] == 32 and "entry" not in counted
    zero = fhir.get("/fhir/R5/ClinicalUseDefinition?_count=0").get_json()
    assert zero["total"] == 32 and "entry" not in zero
    summary = fhir.get("/fhir/R5/MedicationKnowledge?_summary=true").get_json()["entry"][0]["resource"]
    assert "code" in summary and "indicationGuideline" not in summary
    assert summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    elements = fhir.get("/fhir/R5/ClinicalUseDefinition?_elements=type&_count=1").get_json()["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "type"}
    descending = ids(fhir.get("/fhir/R5/ClinicalUseDefinition?_sort=-_id"))
    assert descending == sorted(descending, reverse=True)


def links(body: dict) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in body["link"]}


def outcome_notes(body: dict) -> list[str]:
    return [issue["diagnostics"] for e in body.get("entry", ()) if e["search"]["mode"] == "outcome"
            for issue in e["resource"]["issue"]]


@pytest.mark.parametrize("query", ["_summary=count", "_count=0", "_summary=count&_count=5", "_count=0&_offset=10"])
def test_a_count_alone_has_no_paging_links(fhir, query):
    body = fhir.get(f"/fhir/R5/ClinicalUseDefinition?{query}").get_json()
    assert body["total"] == 32 and "entry" not in body
    assert set(links(body)) == {"self"}


def test_the_self_link_lists_the_parameters_applied_and_no_other(fhir):
    body = fhir.get("/fhir/R4/ValueSet?bogus=1&status=active&_count=2&_sort=-_id,colour&_format=json"
                    "&_include=ValueSet:nothing&_elements=url,compose.include").get_json()
    self_link = links(body)["self"]
    assert self_link.endswith("/fhir/R4/ValueSet?status=active&_count=2&_sort=-_id&_elements=url")
    assert links(fhir.get("/fhir/R4/ValueSet?bogus=1").get_json())["self"].endswith("/fhir/R4/ValueSet")
    notes = outcome_notes(body)
    assert any("bogus" in n and "_include=ValueSet:nothing" in n for n in notes)
    assert any("'colour'" in n for n in notes) and any("'compose.include'" in n for n in notes)


def test_sort_by_a_search_parameter_of_the_type(fhir):
    def titles(query):
        body = fhir.get(f"/fhir/R5/ValueSet?_sort={query}&_count=500&_elements=title").get_json()
        return [e["resource"].get("title") for e in body["entry"] if e["search"]["mode"] == "match"]
    ascending, descending = titles("title"), titles("-title")
    with_title = [t for t in ascending if t is not None]
    assert len(with_title) > 3 and with_title == sorted(with_title, key=str.casefold)
    assert [t for t in descending if t is not None] == with_title[::-1]


@pytest.mark.parametrize("query", ["_sort=colour", "_elements=compose.include"])
def test_what_is_not_applied_is_reported_or_refused_when_strict(fhir, query):
    lenient = fhir.get(f"/fhir/R5/ValueSet?{query}")
    assert lenient.status_code == HTTPStatus.OK and outcome_notes(lenient.get_json())
    strict = fhir.get(f"/fhir/R5/ValueSet?{query}", headers={"Prefer": "handling=strict"})
    assert strict.status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize("total", ["none", "estimate", "accurate"])
def test_total_takes_its_three_modes(fhir, total):
    assert fhir.get(f"/fhir/R5/ClinicalUseDefinition?_total={total}").get_json()["total"] == 32


@pytest.mark.parametrize("base", ["R4", "R5"])
def test_a_read_honours_summary_and_elements(fhir, base):
    full = fhir.get(f"/fhir/{base}/MedicationKnowledge/anakinra").get_json()
    assert "SUBSETTED" not in str(full["meta"])
    elements = fhir.get(f"/fhir/{base}/MedicationKnowledge/anakinra?_elements=code,status").get_json()
    assert set(elements) == {"resourceType", "id", "meta", "code", "status"}
    assert elements["meta"]["tag"][-1]["code"] == "SUBSETTED"
    summary = fhir.get(f"/fhir/{base}/MedicationKnowledge/anakinra?_summary=true").get_json()
    assert "code" in summary and set(summary) < set(full)
    assert summary["meta"]["tag"][-1]["code"] == "SUBSETTED"
    text = fhir.get(f"/fhir/{base}/MedicationKnowledge/anakinra?_summary=text").get_json()
    assert set(text) < set(full) and text["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_include_and_revinclude(fhir):
    body = fhir.get("/fhir/R5/MedicationKnowledge?_include=MedicationKnowledge:monograph").get_json()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in body["entry"]}
    assert modes == {("MedicationKnowledge", "match"), ("DocumentReference", "include")}
    body = fhir.get("/fhir/R5/Medication?_revinclude=ClinicalUseDefinition:subject").get_json()
    included = [e for e in body["entry"] if e["search"]["mode"] == "include"]
    assert len(included) == 32 and body["total"] == 1


def test_unknown_parameter_is_reported_or_rejected_when_strict(fhir):
    body = fhir.get("/fhir/R5/ValueSet?colour=blue&_count=1").get_json()
    outcome = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert "colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    strict = fhir.get("/fhir/R5/ValueSet?colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == HTTPStatus.BAD_REQUEST
    assert "colour" in strict.get_json()["issue"][0]["diagnostics"]


BAD_SEARCHES = [
    "MedicationKnowledge?_count=-1", "MedicationKnowledge?_count=ten", "MedicationKnowledge?_offset=x",
    "MedicationKnowledge?_total=bogus", "MedicationKnowledge?_summary=maybe",
    "MedicationKnowledge/anakinra?_summary=count", "MedicationKnowledge?_lastUpdated=soon",
    "MedicationKnowledge?_lastUpdated=2026-13-45", "MedicationKnowledge?code:exact=x",
    "MedicationKnowledge?code:missing=maybe", "MedicationKnowledge?code=",
]


@pytest.mark.parametrize("query", BAD_SEARCHES)
def test_bad_search_values_are_400(fhir, query):
    response = fhir.get(f"/fhir/R5/{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.get_json()["issue"][0]["code"] == "invalid"


ERRORS = [
    ("GET", "/fhir/R5/Patient", {}, HTTPStatus.NOT_FOUND),
    ("GET", "/fhir/R5/MedicationKnowledge/no-such-drug", {}, HTTPStatus.NOT_FOUND),
    ("PUT", "/fhir/R5/MedicationKnowledge/anakinra", {"json": {"resourceType": "MedicationKnowledge"}},
     HTTPStatus.METHOD_NOT_ALLOWED),
    ("DELETE", "/fhir/R5/MedicationKnowledge/anakinra", {}, HTTPStatus.METHOD_NOT_ALLOWED),
    ("POST", "/fhir/R5/MedicationKnowledge", {"json": {"resourceType": "MedicationKnowledge"}},
     HTTPStatus.METHOD_NOT_ALLOWED),
    ("PATCH", "/fhir/R4/Medication/kineret", {"json": []}, HTTPStatus.METHOD_NOT_ALLOWED),
    ("GET", "/fhir/R5/MedicationKnowledge?_format=xml", {}, HTTPStatus.NOT_ACCEPTABLE),
    ("GET", "/fhir/R5/MedicationKnowledge/anakinra", {"headers": {"Accept": "application/fhir+xml"}},
     HTTPStatus.NOT_ACCEPTABLE),
    ("GET", "/fhir/R4/MedicationKnowledge/anakinra",
     {"headers": {"Accept": "application/fhir+json; fhirVersion=5.0"}}, HTTPStatus.NOT_ACCEPTABLE),
    ("GET", "/fhir/MedicationKnowledge/anakinra", {"headers": {"Accept": "application/fhir+json; fhirVersion=3.0"}},
     HTTPStatus.NOT_ACCEPTABLE),
    ("GET", "/fhir/R4/Medication/kineret", {"headers": {"Accept": "application/fhir+json;q=0"}},
     HTTPStatus.NOT_ACCEPTABLE),
    ("GET", "/fhir/R4/metadata", {"headers": {"Accept": "application/fhir+json;q=0, application/json;q=0, */*"}},
     HTTPStatus.NOT_ACCEPTABLE),
    ("POST", "/fhir/R5/Medication/$validate", {"data": "<Medication/>", "content_type": "application/fhir+xml"},
     HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    ("POST", "/fhir/R5/Medication/$validate", {"data": "{not json", "content_type": "application/fhir+json"},
     HTTPStatus.BAD_REQUEST),
    ("POST", "/fhir/R5/Medication/$validate", {"json": {"resourceType": "Patient"}}, HTTPStatus.BAD_REQUEST),
    ("POST", "/fhir/R5/ValueSet/_search", {"json": {"name": "x"}}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    ("POST", "/fhir/R5/Medication/$validate",
     {"data": "{" + " " * (5 * 1024 * 1024) + "}", "content_type": "application/fhir+json"},
     HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    ("GET", "/fhir/R5/ValueSet/$expand", {}, HTTPStatus.BAD_REQUEST),
    ("GET", "/fhir/R5/ValueSet/$expand?url=https://example.org/none", {}, HTTPStatus.NOT_FOUND),
    ("GET", "/fhir/R5/ValueSet/live-vaccines/$expand?count=-2", {}, HTTPStatus.BAD_REQUEST),
    ("GET", "/fhir/R5/ValueSet/live-vaccines/$validate-code", {}, HTTPStatus.BAD_REQUEST),
    ("POST", "/fhir/R5/ValueSet/live-vaccines/$expand", {"json": {"resourceType": "Bundle"}}, HTTPStatus.BAD_REQUEST),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "status"), ERRORS,
                         ids=[f"{m} {u[:60]} -> {int(s)}" for m, u, _, s in ERRORS])
def test_errors_are_operation_outcomes_with_the_right_status(fhir, method, url, kwargs, status):
    response = fhir.open(url, method=method, **kwargs)
    assert response.status_code == status
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        assert "GET" in response.headers["Allow"]


def test_cors_preflight(client):
    response = client.options("/fhir/R4/MedicationKnowledge", headers={
        "Origin": "https://ehr.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert response.status_code == HTTPStatus.OK
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "authorization"


def test_version_negotiation_on_the_unversioned_base(fhir):
    default = fhir.get("/fhir/MedicationKnowledge/anakinra")
    assert "fhirVersion=4.0" in default.headers["Content-Type"]
    assert "administrationGuidelines" in default.get_json()
    r5 = fhir.get("/fhir/MedicationKnowledge/anakinra", headers={"Accept": "application/fhir+json; fhirVersion=5.0"})
    assert "fhirVersion=5.0" in r5.headers["Content-Type"] and "indicationGuideline" in r5.get_json()
    assert fhir.get("/fhir/metadata", headers={"Accept": "application/json"}).get_json()["fhirVersion"] == "4.0.1"


@pytest.mark.parametrize(("accept", "version"), [
    ("application/fhir+xml, application/fhir+json;q=0.1", "4.0"),
    ("application/fhir+json;q=0, */*;q=0.5", None),  # fhir+json named and refused; */* is less specific
    ("application/fhir+json; fhirVersion=5.0; q=0.8, application/fhir+json; fhirVersion=4.0; q=0", "5.0"),
    ("application/fhir+json; fhirVersion=4.0; q=0, application/fhir+json; fhirVersion=5.0", "5.0"),
    ("text/html, */*;q=0.8", "4.0"),
])
def test_accept_qualities_are_read(fhir, accept, version):
    """Quality values count (RFC 9110 12.4.2): a range with q=0 is "not acceptable", and a refused version is not
    asked for."""
    response = fhir.get("/fhir/Medication/kineret", headers={"Accept": accept})
    if version is None:
        assert response.status_code == HTTPStatus.NOT_ACCEPTABLE
    else:
        assert response.status_code == HTTPStatus.OK
        assert f"fhirVersion={version}" in response.headers["Content-Type"]


def test_pretty_and_format_json(client):
    compact = client.get("/fhir/R5/Medication/kineret?_format=json")
    pretty = client.get("/fhir/R5/Medication/kineret?_pretty=true&_format=application/fhir%2Bjson")
    assert compact.status_code == pretty.status_code == HTTPStatus.OK
    assert b"\n" not in compact.data and b'\n  "id": "kineret"' in pretty.data
    assert compact.get_json() == pretty.get_json()


def test_expand_with_filter_count_offset(fhir):
    body = fhir.get("/fhir/R5/ValueSet/live-vaccines/$expand?filter=measles").get_json()
    codes = {c["code"] for c in body["expansion"]["contains"]}
    assert {"03", "05", "94"} <= codes and "111" not in codes
    full = fhir.get("/fhir/R4/ValueSet/$expand?url=https://fhirsvc.org/fhir/ValueSet/live-vaccines").get_json()
    page = fhir.get("/fhir/R4/ValueSet/live-vaccines/$expand?offset=2&count=3").get_json()
    assert page["expansion"]["contains"] == full["expansion"]["contains"][2:5]
    assert page["expansion"]["total"] == full["expansion"]["total"] >= 28
    regex = fhir.get("/fhir/R5/ValueSet/serious-infections/$expand").get_json()
    assert any(p["name"] == "not-enumerated" for p in regex["expansion"]["parameter"])


VALIDATE_CODE = [
    ("live-vaccines", "http://hl7.org/fhir/sid/cvx", "03", True),
    ("live-vaccines", "http://hl7.org/fhir/sid/cvx", "141", False),
    ("serious-infections", "http://hl7.org/fhir/sid/icd-10-cm", "J18.9", True),
    ("serious-infections", "http://hl7.org/fhir/sid/icd-10-cm", "J30.1", False),
    ("anakinra-products", "http://hl7.org/fhir/sid/ndc", "66658-234-07", True),
]


@pytest.mark.parametrize(("vs", "system", "code", "member"), VALIDATE_CODE)
def test_validate_code(fhir, vs, system, code, member):
    body = fhir.get(f"/fhir/R5/ValueSet/{vs}/$validate-code", query_string={"system": system, "code": code}).get_json()
    assert body["parameter"][0] == {"name": "result", "valueBoolean": member}


def test_validate_code_by_post_with_a_coding(fhir):
    body = fhir.post("/fhir/R4/ValueSet/$validate-code", json={"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": "https://fhirsvc.org/fhir/ValueSet/tnf-inhibitors"},
        {"name": "coding", "valueCoding": {"system": "http://www.whocc.no/atc", "code": "L04AB04"}}]}).get_json()
    assert body["parameter"][0]["valueBoolean"] is True


def test_validate_operation(fhir, knowledge):
    good = fhir.post("/fhir/R5/Medication/$validate", json=dict(knowledge.get("Medication", "kineret"))).get_json()
    assert good["issue"][0]["severity"] == "information"
    bad = fhir.post("/fhir/R5/Medication/$validate", json={"resourceType": "Medication", "colour": "red"}).get_json()
    assert bad["issue"][0]["severity"] == "error" and bad["issue"][0]["expression"] == ["Medication.colour"]


@pytest.mark.parametrize("base", ["R4", "R5"])
def test_validate_lists_at_most_so_many_errors_then_how_many_more(fhir, base):
    mistakes = MAX_VALIDATE_ISSUES * 30
    body = fhir.post(f"/fhir/{base}/Patient/$validate", json={"resourceType": "Patient", "name": [1] * mistakes,
                                                               "gender": 7}).get_json()
    listed, more = body["issue"][:-1], body["issue"][-1]
    assert len(listed) == MAX_VALIDATE_ISSUES
    assert all(i["severity"] == "error" and i["code"] == "structure" for i in listed)
    assert sum(1 for i in listed if i["expression"][0].startswith("Patient.name[")) >= MAX_VALIDATE_ISSUES - 1
    assert more["severity"] == "error" and more["code"] == "too-costly"
    assert more["diagnostics"].startswith(f"{mistakes + 1 - MAX_VALIDATE_ISSUES} more errors are not listed")
    assert "MAX_VALIDATE_ISSUES" in more["diagnostics"]


def test_validate_refuses_a_resource_of_more_values_than_allowed(fhir):
    response = fhir.post("/fhir/R4/Patient/$validate", json={"resourceType": "Patient",
                                                             "name": [1] * MAX_VALIDATE_VALUES})
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    issue = response.get_json()["issue"][0]
    assert issue["code"] == "too-costly" and "MAX_VALIDATE_VALUES" in issue["diagnostics"]
    names = [{"family": f"F{i}"} for i in range((MAX_VALIDATE_VALUES - 2) // 3)]  # 3 values each
    assert fhir.post("/fhir/R4/Patient/$validate", json={"resourceType": "Patient", "name": names}).status_code == 200


def test_responses_built_from_cached_json_equal_a_fresh_serialization(client):
    """Reads and searches splice the JSON serialized at start-up; the document equals a fresh (pretty)
    serialization, apart from what differs per request (a Bundle's id, time and links)."""
    def comparable(response):
        body = response.get_json()
        if body["resourceType"] == "Bundle":
            for key in ("id", "meta", "link"):
                body.pop(key)
        return body

    for url in ("/fhir/R4/MedicationKnowledge/anakinra", "/fhir/R5/ClinicalUseDefinition?_count=5",
                "/fhir/R5/MedicationKnowledge?_include=MedicationKnowledge:monograph&_summary=true"):
        pretty_url = url + ("&" if "?" in url else "?") + "_pretty=true"
        assert comparable(client.get(url)) == comparable(client.get(pretty_url))


# The CDS Hooks wire types (what an EHR sends), and the knowledge's: every resource type of the base's version.
WIRE_TYPES = {
    "MedicationRequest": {"resourceType": "MedicationRequest", "id": "mr", "status": "draft", "intent": "order",
                          "subject": {"reference": "Patient/p1"},
                          "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc",
                                                                    "code": "66658-0234-07"}]}},
    "Medication": {"resourceType": "Medication", "id": "m", "code": {"text": "Kineret"}},
    "Patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-05-01"},
    "Condition": {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p1"},
                  "code": {"text": "Rheumatoid arthritis"}},
    "AllergyIntolerance": {"resourceType": "AllergyIntolerance", "id": "a", "patient": {"reference": "Patient/p1"},
                           "code": {"text": "Latex"}},
    "Observation": {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "Body weight"}},
    "Immunization": {"resourceType": "Immunization", "id": "i", "status": "completed",
                     "vaccineCode": {"text": "MMR"}, "patient": {"reference": "Patient/p1"},
                     "occurrenceDateTime": "2026-11-01"},
    "ServiceRequest": {"resourceType": "ServiceRequest", "id": "s", "status": "draft", "intent": "order",
                       "subject": {"reference": "Patient/p1"}, "code": {"text": "MMR vaccine"}},
    "Bundle": {"resourceType": "Bundle", "id": "b", "type": "collection"},
}


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("rtype", sorted(WIRE_TYPES))
def test_validate_takes_the_cds_hooks_wire_types(fhir, version, rtype):
    resource = WIRE_TYPES[rtype]
    if version == "R5" and rtype == "MedicationRequest":  # R5 names the medication by a CodeableReference
        resource = {**{k: v for k, v in resource.items() if k != "medicationCodeableConcept"},
                    "medication": {"concept": resource["medicationCodeableConcept"]}}
    if version == "R5" and rtype == "ServiceRequest":  # R5: a CodeableReference
        resource = {**resource, "code": {"concept": resource["code"]}}
    if version == "R5" and rtype == "Condition":  # R5: clinicalStatus is required
        resource = {**resource, "clinicalStatus": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}}
    good = fhir.post(f"/fhir/{version}/{rtype}/$validate", json=resource)
    assert good.status_code == HTTPStatus.OK, good.get_json()
    body = good.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["severity"] for i in body["issue"]] == ["information"], body
    bad = fhir.post(f"/fhir/{version}/{rtype}/$validate", json={**resource, "colour": "red"}).get_json()
    assert bad["resourceType"] == "OperationOutcome"
    assert any(i["severity"] == "error" and i["code"] == "structure" for i in bad["issue"]), bad


@pytest.mark.parametrize(("url", "status"), [
    ("/fhir/R4/ClinicalUseDefinition/$validate", HTTPStatus.NOT_FOUND),  # R4B/R5 only
    ("/fhir/R4/HumanName/$validate", HTTPStatus.NOT_FOUND),  # a data type
    ("/fhir/R5/Resource/$validate", HTTPStatus.NOT_FOUND),  # abstract
    ("/fhir/R5/NoSuchType/$validate", HTTPStatus.NOT_FOUND),
])
def test_validate_refuses_what_is_not_a_resource_type_of_the_version(fhir, url, status):
    response = fhir.post(url, json={"resourceType": url.split("/")[3]})
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("code", ["66658-234-07", "66658-0234-07", "66658023407", "6665823407", "66658-234",
                                  "66658-0234-28"])
def test_every_ndc_form_finds_the_drug_and_is_a_member(fhir, code):
    found = fhir.get("/fhir/R4/MedicationKnowledge", query_string={"code": f"http://hl7.org/fhir/sid/ndc|{code}"})
    assert [e["resource"]["id"] for e in found.get_json().get("entry", ())] == ["anakinra"]
    member = fhir.get("/fhir/R5/ValueSet/anakinra-products/$validate-code",
                      query_string={"system": "http://hl7.org/fhir/sid/ndc", "code": code}).get_json()
    assert member["parameter"][0] == {"name": "result", "valueBoolean": True}


@pytest.mark.parametrize("code", ["66658-234-99", "1234567890", "66658-23A-07", ""])
def test_other_ndcs_find_nothing(fhir, code):
    found = fhir.get("/fhir/R4/MedicationKnowledge", query_string={"code": f"http://hl7.org/fhir/sid/ndc|{code}"})
    assert found.status_code == HTTPStatus.OK
    assert found.get_json()["total"] == (0 if code else 1)  # system| alone: any NDC


def literal_references(value: Any) -> Iterator[str]:
    """Every Reference.reference in a JSON tree."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from literal_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from literal_references(item)


def test_every_literal_reference_served_on_r4_can_be_followed_on_r4(fhir):
    """Each resource of every type the R4 CapabilityStatement lists, read through search paging, and each of its
    literal references read on /fhir/R4: 200 (a contained target, "#id", is in the same resource)."""
    served = [r["type"] for r in fhir.get("/fhir/R4/metadata").get_json()["rest"][0]["resource"]]
    resources, followed = [], set()
    for rtype in served:
        url: str | None = f"/fhir/R4/{rtype}?_count=500"
        while url:
            page = fhir.get(url).get_json()
            resources += [e["resource"] for e in page.get("entry", ()) if e["search"]["mode"] == "match"]
            url = links(page).get("next", "").removeprefix("https://cds.example.org") or None
    assert len(resources) > 50
    for resource in resources:
        contained = {f"#{c['id']}" for c in resource.get("contained", ())}
        for reference in literal_references(resource):
            if reference.startswith("#"):
                assert reference in contained, (resource["id"], reference)
            else:
                followed.add(reference.removeprefix("https://cds.example.org/fhir/R4/"))
    assert followed
    for reference in sorted(followed):
        assert fhir.get(f"/fhir/R4/{reference}").status_code == HTTPStatus.OK, reference
