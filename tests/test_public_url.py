"""One source of the public URL (fhirsvc/urls.py): with FHIRSVC_PUBLIC_BASE_URL set, every absolute URL the service
writes comes from it, whatever Host the caller sends; without it, from the request's host, as before."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from fhirsvc import create_app
from tests.cds.conftest import SERVICE, order_request

PUBLIC = "https://cds.example.org/medsafety"  # behind a reverse proxy, under a path
FORGED = {"Host": "evil.example:8443", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}


def make_client(tmp_path, public: str):
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "GOVERNANCE": "on",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}", "PUBLIC_BASE_URL": public})
    return app.test_client()


@pytest.fixture
def client(tmp_path):
    return make_client(tmp_path, PUBLIC)


def absolute_urls(value) -> list[str]:
    """Every string of a JSON document that is an absolute http(s) URL."""
    if isinstance(value, dict):
        return [u for v in value.values() for u in absolute_urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in absolute_urls(v)]
    return [value] if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") else []


def ours(urls: list[str], base: str = PUBLIC) -> list[str]:
    """The URLs that name this service (not knowledge canonicals or code systems)."""
    return [u for u in urls if "evil.example" in u or u.startswith(base)]


def test_search_links_and_full_urls(client):
    bundle = client.get("/fhir/R4/ValueSet?_count=1", headers=FORGED).get_json()
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert links["self"] == f"{PUBLIC}/fhir/R4/ValueSet?_count=1"
    assert links["next"].startswith(f"{PUBLIC}/fhir/R4/ValueSet?")
    assert all(e["fullUrl"].startswith(f"{PUBLIC}/fhir/R4/ValueSet/") for e in bundle["entry"])
    paged = client.get(links["next"].removeprefix(PUBLIC), headers=FORGED).get_json()
    assert {link["relation"]: link["url"] for link in paged["link"]}["previous"].startswith(f"{PUBLIC}/fhir/R4/")
    posted = client.post("/fhir/R4/Medication/_search", data={"_count": "1"}, headers=FORGED).get_json()
    assert posted["link"][0]["url"].startswith(f"{PUBLIC}/fhir/R4/Medication")
    assert "evil.example" not in str(bundle) + str(paged) + str(posted)


@pytest.mark.parametrize("base", ["/fhir", "/fhir/R4", "/fhir/R5"])
def test_capability_statement(client, base):
    statement = client.get(f"{base}/metadata", headers=FORGED).get_json()
    assert statement["url"] == f"{PUBLIC}{base}/metadata"
    assert statement["implementation"]["url"] == f"{PUBLIC}{base}"
    assert "evil.example" not in str(statement)


@pytest.mark.parametrize(("path", "location"), [
    ("/monographs", "/monographs/"),
    ("/governance?from=2026-11-01", "/governance/?from=2026-11-01"),
])
def test_redirects(client, path, location):
    response = client.get(path, headers=FORGED)
    assert response.status_code == 308
    assert response.headers["Location"] == PUBLIC + location


def test_card_links(client):
    order = order_request()
    order["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0][
        "doseQuantity"]["value"] = 300
    cards = client.post(SERVICE, json=order, headers=FORGED).get_json()["cards"]
    assert cards
    urls = ours(absolute_urls(cards))
    assert urls and all(u.startswith((f"{PUBLIC}/monographs/", f"{PUBLIC}/rules/")) for u in urls), urls
    assert any(u.startswith(f"{PUBLIC}/rules/") for u in urls)  # "About this rule"


def test_check_orders(client):
    order = order_request()["context"]["draftOrders"]["entry"][0]["resource"]
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 300
    posted = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    answer = client.post("/fhir/R4/$check-orders", json=posted, headers=FORGED).get_json()
    assert answer["link"][0]["url"] == f"{PUBLIC}/fhir/R4/$check-orders"
    urls = ours(absolute_urls(answer))
    assert len(urls) > 1 and all(u.startswith(PUBLIC) for u in urls), urls


def test_without_a_public_base_url_the_host_names_the_service(tmp_path):
    client = make_client(tmp_path, "")
    host = {"Host": "cds.internal:8080"}
    assert client.get("/fhir/R4/metadata", headers=host).get_json()["url"] == "http://cds.internal:8080/fhir/R4/metadata"
    assert client.get("/monographs", headers=host).headers["Location"] == "http://cds.internal:8080/monographs/"
    bundle = client.get("/fhir/R4/Medication?_count=1", headers=host).get_json()
    assert bundle["link"][0]["url"] == "http://cds.internal:8080/fhir/R4/Medication?_count=1"
    cards = client.post(SERVICE, json=order_request(), headers=host).get_json()["cards"]
    assert all(u.startswith(("http://cds.internal:8080/monographs/", "http://cds.internal:8080/rules/"))
               for u in ours(absolute_urls(cards), "http://cds.internal:8080"))


def test_a_redirect_elsewhere_is_left_alone(client):
    """Only a Location built from the caller's own host is rewritten (compared parsed, not as a string prefix)."""
    from flask import redirect

    app = client.application
    app.add_url_rule("/elsewhere", "elsewhere", lambda: redirect("https://other.example/x"))
    app.add_url_rule("/relative", "relative", lambda: redirect("/monographs/"))
    assert client.get("/elsewhere", headers=FORGED).headers["Location"] == "https://other.example/x"
    assert client.get("/relative", headers=FORGED).headers["Location"] == "/monographs/"
