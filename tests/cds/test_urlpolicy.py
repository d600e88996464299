"""The fhirServer allow-list against URL tricks: parsed values compared exactly, never string prefixes.

Two real FHIR servers on loopback: the EHR's (``ehr``, allow-listed, reading only under ``/fhir``) and a
decoy (another port of the same host) that counts every request it gets. Each trick is sent as the call's
``fhirServer`` (with a bearer token) under each of the 4 ways an operator writes the allow-list; the decoy
must get no request, the EHR no request outside ``/fhir`` when the entry names that path, and a refused
server gives the 412 of a call with no data, with a log line naming the host and never the token. The
honest ways of writing the EHR's URL must still be read.
"""

from __future__ import annotations

import logging

import pytest

from fhirsvc import create_app
from fhirsvc.errors import ConfigError
from fhirsvc.evaluation.urlpolicy import UrlPolicy, UrlRefused, parse_url
from tests.cds.conftest import SERVICE, order_request
from tests.cds.fake_ehr import bundle
from tests.conftest import error_fields, error_message

TOKEN = "ehr-bearer-token-0123456789"


@pytest.fixture(autouse=True)
def _reset(ehr, decoy):
    ehr.reset()
    decoy.reset()


# The 4 ways of writing the EHR in the allow-list: its origin or its FHIR base, each with and without a slash.
FORMS = {
    "origin": "http://127.0.0.1:{A}",
    "origin/": "http://127.0.0.1:{A}/",
    "base": "http://127.0.0.1:{A}/fhir",
    "base/": "http://127.0.0.1:{A}/fhir/",
}
PATH_FORMS = {"base", "base/"}

# (fhirServer, the forms under which it may be read). A is the EHR's port, B the decoy's. Every trick that
# could reach the decoy is refused under every form; the ones that stay on the EHR but leave /fhir are
# refused where the entry names /fhir, and read from the EHR itself where the entry is the whole origin.
TRICKS = {
    "userinfo: allowed host as user name": ("http://127.0.0.1:{A}@127.0.0.1:{B}/fhir", set()),
    "userinfo: allowed host as user, empty password": ("http://127.0.0.1:{A}:@127.0.0.1:{B}/fhir", set()),
    "userinfo: user and password": ("http://user:pass@127.0.0.1:{B}/fhir", set()),
    "userinfo on the allowed host itself": ("http://user@127.0.0.1:{A}/fhir", set()),
    "userinfo: percent-encoded @": ("http://127.0.0.1:{A}%40127.0.0.1:{B}/fhir", set()),
    "another port": ("http://127.0.0.1:{B}/fhir", set()),
    "another port, allowed URL in the query": ("http://127.0.0.1:{B}/fhir?u=http://127.0.0.1:{A}/fhir", set()),
    "fragment hiding the real host": ("http://127.0.0.1:{A}#@127.0.0.1:{B}/fhir", set()),
    "query hiding the real host": ("http://127.0.0.1:{A}?@127.0.0.1:{B}/fhir", set()),
    "fragment on the allowed base": ("http://127.0.0.1:{A}/fhir#x", set()),
    "backslash before @": ("http://127.0.0.1:{A}\\@127.0.0.1:{B}/fhir", set()),
    "backslash after the host": ("http://127.0.0.1:{B}\\@127.0.0.1:{A}/fhir", set()),
    "backslashes for slashes": ("http:\\\\127.0.0.1:{B}\\fhir", set()),
    "two ports": ("http://127.0.0.1:{A}:{B}/fhir", set()),
    "port out of range": ("http://127.0.0.1:{A}0000/fhir", set()),
    "short IPv4 form": ("http://127.1:{B}/fhir", set()),
    "decimal IPv4": ("http://2130706433:{B}/fhir", set()),
    "hex IPv4": ("http://0x7f000001:{B}/fhir", set()),
    "octal IPv4": ("http://0177.0.0.1:{B}/fhir", set()),
    "IPv4-mapped IPv6": ("http://[::ffff:127.0.0.1]:{B}/fhir", set()),
    "IPv6 loopback": ("http://[::1]:{B}/fhir", set()),
    "all-zero address": ("http://0.0.0.0:{B}/fhir", set()),
    "localhost on the decoy port": ("http://localhost:{B}/fhir", set()),
    "https instead of http": ("https://127.0.0.1:{A}/fhir", set()),
    "ftp scheme": ("ftp://127.0.0.1:{A}/fhir", set()),
    "file scheme": ("file:///etc/passwd", set()),
    "gopher scheme": ("gopher://127.0.0.1:{B}/_GET%20/", set()),
    "no scheme": ("127.0.0.1:{B}/fhir", set()),
    "scheme-relative": ("//127.0.0.1:{B}/fhir", set()),
    "one slash after the scheme": ("http:/127.0.0.1:{B}/fhir", set()),
    "CRLF header injection": ("http://127.0.0.1:{B}/fhir\r\nHost: 127.0.0.1:{A}", set()),
    "tab in the host": ("http://127.0.0.1:{A}\t@127.0.0.1:{B}/fhir", set()),
    "space in the URL": ("http://127.0.0.1:{A} @127.0.0.1:{B}/fhir", set()),
    "NUL byte": ("http://127.0.0.1:{A}/fhir%00@127.0.0.1:{B}", set()),
    "fullwidth solidus before @ (NFKC)": ("http://127.0.0.1:{A}\uff0f@127.0.0.1:{B}/fhir", set()),
    "ideographic full stops in the host": ("http://127\u30020\u30020\u30021:{B}/fhir", set()),
    "percent-encoded host": ("http://%31%32%37.0.0.1:{B}/fhir", set()),
    "full-width hex IPv4 (read as 0x7f.1 after mapping)": ("http://\uff10x7f.1:{B}/fhir", set()),
    "dot-dot out of /fhir": ("http://127.0.0.1:{A}/fhir/../admin", set()),
    "encoded dot-dot": ("http://127.0.0.1:{A}/fhir/%2e%2e/admin", set()),
    "encoded slash": ("http://127.0.0.1:{A}/fhir%2f..%2fadmin", set()),
    "empty segment": ("http://127.0.0.1:{A}//fhir", set()),
    "prefix of a segment (/fhirX)": ("http://127.0.0.1:{A}/fhirX", {"origin", "origin/"}),
    "another path on the EHR": ("http://127.0.0.1:{A}/admin", {"origin", "origin/"}),
    "@ in the path": ("http://127.0.0.1:{A}/fhir@127.0.0.1:{B}/", {"origin", "origin/"}),
    "not a string": (["http://127.0.0.1:{A}/fhir"], set()),
    "empty string": ("", set()),
}

HONEST = {
    "the base": "http://127.0.0.1:{A}/fhir",
    "the base with a trailing slash": "http://127.0.0.1:{A}/fhir/",
    "upper-case scheme": "HTTP://127.0.0.1:{A}/fhir",
    "mixed-case scheme and a trailing slash": "Http://127.0.0.1:{A}/fhir/",
}


def fill(value, ehr, decoy):
    if isinstance(value, list):
        return [fill(v, ehr, decoy) for v in value]
    return value.replace("{A}", str(ehr.port)).replace("{B}", str(decoy.port))


def app_for(form: str, ehr, tmp_path):
    return create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off",
                       "FEEDBACK_DB": str(tmp_path / "f.sqlite3"), "PUBLIC_BASE_URL": "https://cds.example.org",
                       "FHIR_SERVER_ALLOWLIST": FORMS[form].replace("{A}", str(ehr.port)),
                       "FETCH_CONNECT_TIMEOUT": 0.5, "FETCH_READ_TIMEOUT": 1.0, "FETCH_DEADLINE": 2.0})


@pytest.fixture(scope="module")
def apps(ehr, tmp_path_factory):
    return {form: app_for(form, ehr, tmp_path_factory.mktemp(form.replace("/", "-slash"))) for form in FORMS}


def call(app, fhir_server, prefetch=None, orders=None):
    body = order_request(fhirServer=fhir_server, fhirAuthorization={
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read",
        "subject": "cds-service"}, orders=orders)
    if prefetch is None:
        body.pop("prefetch", None)
    else:
        body["prefetch"] = prefetch
    return app.test_client().post(SERVICE, json=body)


def test_the_table_is_as_large_as_promised():
    assert len(TRICKS) >= 30 and len(FORMS) == 4


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("trick", TRICKS)
def test_a_url_trick_never_reaches_another_server(apps, ehr, decoy, form, trick, caplog):
    template, readable_under = TRICKS[trick]
    fhir_server = fill(template, ehr, decoy)
    with caplog.at_level(logging.INFO, logger="fhirsvc"):
        response = call(apps[form], fhir_server)
    assert decoy.requests == [], f"{trick}: the decoy was contacted"
    if form in PATH_FORMS:
        assert all(path.startswith("/fhir/") for path, _ in ehr.requests), ehr.requests
    if form not in readable_under:
        assert ehr.requests == [], f"{trick}: fetched under the {form} allow-list"
        if response.status_code == 400:  # not even a URL to the request schema: the field is named
            assert set(error_fields(response.get_json())) == {"fhirServer"}
        else:
            assert response.status_code == 412, response.get_json()
            assert "not allow-listed" in error_message(response.get_json())
            refusals = [r.getMessage() for r in caplog.records if "fhirServer refused" in r.getMessage()]
            assert len(refusals) == 1 and "host" in refusals[0]
    else:
        assert response.status_code in (200, 412), response.get_json()
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("honest", HONEST)
def test_the_honest_ways_of_naming_the_ehr_are_read(apps, ehr, decoy, form, honest):
    response = call(apps[form], fill(HONEST[honest], ehr, decoy))
    assert response.status_code == 200, response.get_json()
    types = {path.split("?")[0].split("/")[2] for path, _ in ehr.requests}
    assert types == {"Patient", "Condition", "AllergyIntolerance", "MedicationRequest", "MedicationStatement",
                     "Observation"}
    assert {auth for _, auth in ehr.requests} == {f"Bearer {TOKEN}"}
    assert decoy.requests == []


NEXT_TRICKS = {
    "absolute next link to the decoy": "http://127.0.0.1:{B}/fhir/Condition?page=2",
    "next link with userinfo": "http://127.0.0.1:{A}@127.0.0.1:{B}/fhir/Condition?page=2",
    "relative next link climbing out": "../../../admin?page=2",
    "scheme-relative next link": "//127.0.0.1:{B}/fhir/Condition?page=2",
    "next link with a backslash": "http://127.0.0.1:{A}\\@127.0.0.1:{B}/fhir/Condition?page=2",
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("trick", NEXT_TRICKS)
def test_next_links_are_held_to_the_same_check(apps, ehr, decoy, form, trick):
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"},
                "conditions": bundle({"resourceType": "Condition", "id": "c0"},
                                     next_url=fill(NEXT_TRICKS[trick], ehr, decoy)),
                "allergies": None, "medications": None, "observations": None}
    response = call(apps[form], fill("http://127.0.0.1:{A}/fhir", ehr, decoy), prefetch=prefetch)
    assert response.status_code == 200
    assert decoy.requests == []
    if form in PATH_FORMS:
        assert all(path.startswith("/fhir/") for path, _ in ehr.requests), ehr.requests


@pytest.mark.parametrize("reference", [
    "http://127.0.0.1:{B}/fhir/Medication/k1", "http://127.0.0.1:{A}@127.0.0.1:{B}/fhir/Medication/k1",
    "Medication/../../../admin", "//127.0.0.1:{B}/fhir/Medication/k1"])
def test_medication_references_are_held_to_the_same_check(apps, ehr, decoy, reference):
    order = order_request()["context"]["draftOrders"]["entry"][0]["resource"]
    order = {**{k: v for k, v in order.items() if k != "medicationCodeableConcept"},
             "medicationReference": {"reference": fill(reference, ehr, decoy)}}
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"},
                "conditions": None, "allergies": None, "medications": None, "observations": None}
    response = call(apps["base"], fill("http://127.0.0.1:{A}/fhir", ehr, decoy), prefetch=prefetch, orders=[order])
    assert response.status_code == 200
    assert decoy.requests == [] and all(path.startswith("/fhir/") for path, _ in ehr.requests)


def test_a_redirect_to_another_server_is_not_followed(apps, ehr, decoy):
    ehr.modes["Condition"] = "redirect"
    ehr.redirect_to = f"{decoy.base}/Condition"
    response = call(apps["base"], ehr.base)
    assert response.status_code == 200
    assert decoy.requests == []


# --- the parser itself ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "parts"), [
    ("http://EHR.Example.org/fhir/", ("http", "ehr.example.org", 80, "/fhir")),
    ("HTTPS://ehr.example.org:443", ("https", "ehr.example.org", 443, "")),
    ("https://ehr.example.org.", ("https", "ehr.example.org", 443, "")),
    ("http://[0:0:0:0:0:0:0:1]:8080/r4", ("http", "::1", 8080, "/r4")),
    ("https://b\u00fccher.example/fhir", ("https", "xn--bcher-kva.example", 443, "/fhir")),
    ("https://XN--BCHER-KVA.example/fhir", ("https", "xn--bcher-kva.example", 443, "/fhir")),
    ("http://10.0.0.7:80/fhir", ("http", "10.0.0.7", 80, "/fhir")),
    ("http://\uff11\uff12\uff17.0.0.1:8080/fhir", ("http", "127.0.0.1", 8080, "/fhir")),
])
def test_urls_are_reduced_to_canonical_parts(url, parts):
    parsed = parse_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.path) == parts


def test_paths_are_compared_on_whole_segments():
    policy = UrlPolicy(["https://ehr.example.org/fhir"])
    assert policy.check("https://ehr.example.org/fhir").path == "/fhir"
    assert policy.check("https://ehr.example.org:443/fhir/r4/").path == "/fhir/r4"
    for refused in ("https://ehr.example.org/fhirX", "https://ehr.example.org/", "https://ehr.example.org/fhi",
                    "https://ehr.example.org:8443/fhir", "http://ehr.example.org/fhir",
                    "https://ehr.example.org.evil.example/fhir", "https://evil.example/ehr.example.org/fhir"):
        with pytest.raises(UrlRefused):
            policy.check(refused)


def test_the_request_goes_to_the_url_rebuilt_from_its_parts():
    assert parse_url("HTTP://Ehr.Example.ORG:80/fhir/", allow_query=True).text == "http://ehr.example.org/fhir"
    assert parse_url("https://[::1]:8443/a?b=c", allow_query=True).text == "https://[::1]:8443/a?b=c"


@pytest.mark.parametrize("entry", [
    "ehr.example.org", "ftp://ehr.example.org", "https://user@ehr.example.org", "https://ehr.example.org/fhir#x",
    "https://ehr.example.org/fhir?x=1", "https://ehr.example.org:99999", "https://127.1/", "https://ehr example.org",
    "https://ehr.example.org/a/../b", "https:///fhir"])
def test_a_bad_allow_list_entry_stops_start_up_with_a_clear_message(entry, tmp_path):
    with pytest.raises(ConfigError, match="FHIRSVC_FHIR_SERVER_ALLOWLIST entry") as raised:
        create_app({"KNOWLEDGE_PATH": "", "AUTH": "off", "FEEDBACK_DB": str(tmp_path / "f.sqlite3"),
                    "FHIR_SERVER_ALLOWLIST": f"https://ok.example.org, {entry}"})
    assert repr(entry) in str(raised.value) and "scheme://host[:port][/path]" in str(raised.value)


# --- nothing carried from one call to the next, nothing taken from the environment ---------------------------------

def test_a_cookie_set_during_one_call_is_never_sent_on_another(apps, ehr, decoy):
    ehr.modes.update(dict.fromkeys(("Patient", "Condition", "AllergyIntolerance", "MedicationRequest",
                                    "MedicationStatement", "Observation"), "cookie"))
    assert call(apps["base"], ehr.base).status_code == 200  # user A's call: the EHR sets a session cookie
    first = len(ehr.requests)  # 6 searches and the second page of the conditions
    assert first == 7 and ehr.cookies == [None] * first
    body = order_request(fhirServer=ehr.base, fhirAuthorization={
        "access_token": "user-b-token", "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read",
        "subject": "cds-service"})
    body.pop("prefetch", None)
    assert apps["base"].test_client().post(SERVICE, json=body).status_code == 200  # user B's call
    assert ehr.cookies[first:] == [None] * 7
    assert {auth for _, auth in ehr.requests[first:]} == {"Bearer user-b-token"}


def test_proxy_and_netrc_settings_of_the_environment_are_not_used(apps, ehr, decoy, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password from-netrc\n")
    netrc.chmod(0o600)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", decoy.origin)
    monkeypatch.setenv("http_proxy", decoy.origin)
    body = order_request(fhirServer=ehr.base)  # no fhirAuthorization: a .netrc would add Basic credentials
    body.pop("prefetch", None)
    assert apps["base"].test_client().post(SERVICE, json=body).status_code == 200
    assert decoy.requests == []
    assert len(ehr.requests) == 7 and {auth for _, auth in ehr.requests} == {None}
