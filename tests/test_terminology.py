"""Value-set membership by code, by regex filter and by whole-word name."""

from __future__ import annotations

import pytest

from fhirsvc.terminology import ICD10CM, RXNORM, ValueSetMatcher, name_pattern

VALUE_SET = {
    "resourceType": "ValueSet",
    "url": "https://example.org/ValueSet/test",
    "compose": {"include": [
        {"system": RXNORM, "concept": [
            {"code": "327361", "display": "adalimumab", "designation": [{"value": "Humira"}]},
            {"code": "709271", "display": "certolizumab pegol", "designation": [{"value": "Cimzia"}]},
        ]},
        {"system": ICD10CM, "filter": [{"property": "code", "op": "regex", "value": "^J(09|1[0-8])"}]},
    ]},
}
MATCHER = ValueSetMatcher.from_value_set(VALUE_SET)


@pytest.mark.parametrize(("system", "code", "member"), [
    (RXNORM, "327361", True),
    (RXNORM, "999999", False),
    ("http://snomed.info/sct", "327361", False),
    (ICD10CM, "J18.9", True),
    (ICD10CM, "J09.X2", True),
    (ICD10CM, "J19.0", False),
    (ICD10CM, "AJ10", False),
    (ICD10CM, None, False),
], ids=["code", "other-code", "same-code-other-system", "regex-J18", "regex-J09", "regex-J19", "regex-anchored",
        "no-code"])
def test_has_code(system, code, member):
    assert MATCHER.has_code(system, code) is member


@pytest.mark.parametrize(("text", "found"), [
    ("adalimumab 40 MG/0.4ML Prefilled Syringe [Humira]", "adalimumab"),
    ("HUMIRA pen", "HUMIRA"),
    ("certolizumab  pegol 200 mg", "certolizumab pegol"),
    ("certolizumab 200 mg", None),
    ("Humiras", None),
    ("adalimumab-atto 40 MG/0.8ML", "adalimumab"),
    ("", None),
    (None, None),
], ids=["rxnorm-display", "brand-any-case", "multi-word-extra-space", "partial-name", "not-whole-word",
        "biosimilar-suffix", "empty", "none"])
def test_find_name_whole_words(text, found):
    assert MATCHER.find_name(text) == found


def test_matches_concept_by_code_display_or_text():
    assert MATCHER.matches_concept({"coding": [{"system": RXNORM, "code": "327361"}]})
    assert MATCHER.matches_concept({"coding": [{"system": "urn:local", "code": "1", "display": "Cimzia 200 mg"}]})
    assert MATCHER.matches_concept({"text": "adalimumab-atto"})
    assert not MATCHER.matches_concept({"text": "methotrexate 2.5 MG"})
    assert MATCHER.matches_concept({"text": "adalimumab (biosimilar)"})
    assert not MATCHER.matches_concept(None)


def test_name_pattern_prefers_the_longest_name():
    pattern = name_pattern(["pegol", "certolizumab pegol"])
    assert pattern.search("certolizumab pegol").group(0) == "certolizumab pegol"
    assert name_pattern(["", "  "]) is None
