"""The read and search path's shortcuts give what the general path gives: the answer written by orjson around the
served resources' texts (``negotiation._spliced``) is what ``json.dumps`` writes, a header read from the WSGI
environ is werkzeug's, a remembered negotiation is the one worked out anew, a read without conditional
headers is one werkzeug would answer in full, and search criteria applied one after another select what a
resource-by-resource reading of all of them selects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from flask import request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.sansio.http import is_resource_modified

from fhirsvc.errors import ApiError
from fhirsvc.fhir import negotiation
from fhirsvc.fhir import search as search_module
from fhirsvc.fhir.views import BASES_EXTENSION

SHARED_FIXTURE = [HealthCheck.function_scoped_fixture]


def outcome(write):
    """What writing gives: the bytes, or the type of the exception it raises."""
    try:
        return write()
    except Exception as exc:  # the two paths must fail alike too
        return type(exc)


def dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def base(open_app):
    return open_app.extensions[BASES_EXTENSION]["R4"]


@pytest.fixture(scope="module")
def served(base):
    return [*base.of_type("MedicationKnowledge"), *base.of_type("ValueSet")][:6]


# JSON values of every kind json.dumps writes: integers of any size (orjson writes 64 bits at most), floats with
# NaN and infinities (orjson writes 1e-05 as 1e-5 and NaN as null), any text (lone surrogates, which neither can
# encode, and the marker's NUL included), keys that are no strings (json.dumps writes them as strings).
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
           | st.sampled_from([negotiation._MARKER, "\u2028\x7f\"\\\n\x00", -0.0, 1e-05, 1e16, 2**64]))
KEYS = st.text(max_size=4) | st.integers(-3, 3)


def bodies(resources: list) -> st.SearchStrategy:
    """A body holding served resources (by identity, as a search Bundle does) at any depth."""
    return st.recursive(
        SCALARS | st.sampled_from(resources),
        lambda inner: (st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
                       | st.dictionaries(KEYS, inner, max_size=4)),
        max_leaves=25)


@settings(max_examples=500, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(data=st.data())
def test_a_spliced_body_is_what_json_dumps_writes(base, served, data):
    body = data.draw(bodies(served))
    assert outcome(lambda: negotiation._spliced(body, base.texts)) == outcome(lambda: dumps(body))


def test_a_search_bundle_with_floats_and_served_resources_is_written_as_json_dumps_writes_it(base, served):
    bundle = {"resourceType": "Bundle", "total": 2, "extra": [1e-05, 0.1, -0.0, 1e16, float("nan")],
              "entry": [{"fullUrl": "x", "resource": served[0], "search": {"mode": "match", "score": 0.5}},
                        {"resource": served[1]}]}
    written = negotiation._spliced(bundle, base.texts)
    assert written == dumps(bundle)
    assert b"1e-05" in written and b"NaN" in written


# Header names as clients send them (any case, dashes), and values of printable Latin-1 (a WSGI environ's text).
HEADER_NAMES = st.sampled_from(["Accept", "Prefer", "If-None-Match", "if-modified-since", "ORIGIN", "X-Custom-Thing"])
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                        max_size=20)


@settings(max_examples=200, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(sent=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3), asked=HEADER_NAMES)
def test_a_header_read_from_the_environ_is_what_werkzeug_gives(open_app, sent, asked):
    with open_app.test_request_context("/fhir/R4/metadata", headers=sent):
        assert negotiation.header(asked) == request.headers.get(asked)


ACCEPTS = st.sampled_from(["", " ", "*/*", "application/fhir+json", "application/fhir+json; fhirVersion=4.0",
                           "application/fhir+json; fhirVersion=5.0", "application/json;q=0", "text/html",
                           "application/fhir+json; fhirVersion=3.0", "application/*;q=0.5, text/plain",
                           "application/fhir+json;q=0, */*"])
FORMATS = st.sampled_from([None, "json", "application/fhir+json", "xml", "text/json; charset=utf-8"])


def negotiated_anew(fixed, wanted_format, accept):
    """The negotiation worked out without the memo."""
    try:
        return negotiation._negotiated.__wrapped__(fixed, wanted_format, accept)
    except ApiError as exc:
        return exc.status, exc.public_message


@settings(max_examples=300, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(fixed=st.sampled_from([None, "R4", "R5"]), wanted_format=FORMATS, accept=ACCEPTS)
def test_a_remembered_negotiation_is_the_one_worked_out_anew(open_app, fixed, wanted_format, accept):
    query = {} if wanted_format is None else {"_format": wanted_format}
    with open_app.test_request_context("/fhir/metadata", query_string=query, headers={"Accept": accept}):
        try:
            answer = negotiation.negotiate(fixed)
        except ApiError as exc:
            answer = exc.status, exc.public_message
    assert answer == negotiated_anew(fixed, wanted_format, accept if wanted_format is None else "")


@settings(max_examples=200, deadline=None)
@given(version=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters='"'), min_size=1),
       modified=st.datetimes(min_value=datetime(1971, 1, 1), timezones=st.just(UTC)))
def test_without_conditional_headers_werkzeug_sends_the_resource(version, modified):
    """What the read's shortcut takes for granted: no If-None-Match and no If-Modified-Since, so modified."""
    assert is_resource_modified(http_if_none_match=None, http_if_modified_since=None, etag=f'W/"{version}"',
                                last_modified=modified)


# Criteria on the R5 ValueSets (23 of them): tokens, strings with modifiers, dates, :missing, bad values.
CRITERIA = st.sampled_from([
    ("status", "active"), ("status", "draft,active"), ("status:not", "active"), ("name", "b"), ("name", "Body"),
    ("name:contains", "ee"), ("name:exact", "BodyWeight"), ("title:missing", "true"), ("title:missing", "false"),
    ("_lastUpdated", "gt2000-01-01"), ("_lastUpdated", "lt2000"), ("_id", "body-weight,breastfeeding"),
    ("url:missing", "maybe"), ("_lastUpdated", "not-a-date"), ("name:text", "x")])


def matched_resource_by_resource(base, rtype, search) -> list[str]:
    """The ids the search selects, each resource judged against every criterion in turn (the general reading)."""
    index = base.index
    return [rid for rid in base.ids[rtype] if all(
        search_module._matches(param, modifier, values, index[(rtype, param.name)][rid], base.ndc)
        for param, modifier, values in search.criteria)]


@settings(max_examples=300, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(criteria=st.lists(CRITERIA, max_size=3))
def test_criteria_applied_one_after_another_select_what_all_of_them_select(open_app, criteria):
    base = open_app.extensions[BASES_EXTENSION]["R5"]
    try:
        search = search_module.parse_search(base, "ValueSet", [*criteria, ("_count", "500")], strict=False)
    except ApiError:
        return  # a modifier the type does not take: refused before any matching
    expected = outcome(lambda: matched_resource_by_resource(base, "ValueSet", search))
    found = outcome(lambda: [r["id"] for r in search_module.run_search(base, "ValueSet", search).matches])
    assert found == expected  # the same ids in the same order, or the same error


# Bare codes (no system, no modifier) as clients send them: the knowledge's own codes, NDCs in other forms, others.
def token_values(base) -> st.SearchStrategy:
    known = sorted({t.code for values in base.index.values() for indexed in values.values() for t in indexed
                    if isinstance(getattr(t, "code", None), str)})
    ndcs = ["66658023407", "66658-0234-07", "66658-234", "6665823407", "0066658234", "66658-234-28"]
    return st.lists(st.sampled_from(known + ndcs) | st.text("0123456789-L", max_size=12), min_size=1, max_size=3)


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_a_bare_code_looked_up_selects_what_matching_each_resource_selects(open_app, version):
    base = open_app.extensions[BASES_EXTENSION][version]
    tokens = [(rtype, name) for (rtype, name) in base.by_code]

    @settings(max_examples=300, deadline=None)
    @given(where=st.sampled_from(tokens), values=token_values(base))
    def check(where, values):
        rtype, name = where
        param = base.specs[rtype].params[name]
        indexed = base.index[(rtype, name)]
        expected = [rid for rid in base.ids[rtype]
                    if search_module._matches(param, None, values, indexed[rid], base.ndc)]
        search = search_module.SearchRequest(criteria=[(param, None, values)], count=500)
        assert [r["id"] for r in search_module.run_search(base, rtype, search).matches] == expected

    check()


# A search Bundle's own members as the search view writes them (strings, integers, lists and objects of them).
HEAD_VALUES = st.recursive(st.text(max_size=8) | st.integers(-(2**63), 2**63) | st.booleans() | st.none(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None, suppress_health_check=SHARED_FIXTURE)
@given(data=st.data(), pretty=st.booleans())
def test_a_searchset_written_in_pieces_is_what_json_dumps_writes(open_app, base, served, data, pretty):
    head = {"resourceType": "Bundle", **data.draw(st.dictionaries(st.text(max_size=5), HEAD_VALUES, max_size=4))}
    # a served resource, a subset of one (a new object holding floats) or an outcome, under any fullUrl and mode
    resources = st.sampled_from(served) | st.builds(lambda extra: {**served[0], "extra": extra}, SCALARS)
    entries = data.draw(st.lists(st.tuples(st.text(max_size=8), resources, st.text(max_size=8)), max_size=3))
    members = [{"fullUrl": url, "resource": resource, "search": {"mode": mode}} for url, resource, mode in entries]
    bundle = {**head, "entry": members} if members else head
    with open_app.test_request_context("/fhir/R4/MedicationKnowledge", query_string={"_pretty": str(pretty)}):
        written = outcome(lambda: negotiation.searchset_response(head, entries, "R4", base.texts).get_data())
        expected = negotiation.fhir_response(bundle, "R4").get_data() if pretty else outcome(lambda: dumps(bundle))
    assert written == expected
