"""Value-set membership by code, by regex filter and by whole-word name; the name matcher finds what a
whole-word, case-insensitive regex of the names finds, at a cost linear in the text."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirsvc.terminology import ICD10CM, MAX_NAME_TEXT, RXNORM, ValueSetMatcher, name_pattern, normalize_name


def regex_of(names: Iterable[str]) -> re.Pattern[str]:
    """The reference: the names as whole words (longest first), any whitespace between their words, any case."""
    unique = sorted({normalize_name(name) for name in names if name and name.strip()}, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(map(re.escape, name.split())) for name in unique)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

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
    assert pattern.find("certolizumab pegol") == "certolizumab pegol"
    assert pattern.find("Certolizumab\n\t PEGOL, 200 mg") == "Certolizumab\n\t PEGOL"
    assert name_pattern(["", "  "]) is None


NAMES = ["live", "live vaccine", "live attenuated vaccine", "(live)", "typhoid, oral", "vaccine (live)", "mmr-ii",
         "BCG", "ß", "straße", "\u0131x", "\u017fa", "\u03c3\u03c2", "a_b", "1 2", "-", "x"]
PIECES = ["live", "LIVE", "Live", "vaccine", "attenuated", "(", ")", "(live)", "typhoid", ",", "oral", "mmr", "-",
          "ii", "bcg", "ss", "ß", "SS", "stra", "x", "I", "i", "\u0131", "\u0130", "\u017f", "a", "s", "_", "b",
          "\u03a3", "\u03c3", "\u03c2", "1", "2", " ", "  ", "\t", "\n", "\u00a0", "\u2003", "é", "®"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6), st.lists(st.sampled_from(PIECES), max_size=14))
def test_the_matcher_finds_what_the_whole_word_regex_finds(names, pieces):
    text = "".join(pieces)
    found = regex_of(names).search(text)
    assert name_pattern(names).find(text) == (found.group(0) if found else None)


def test_long_runs_of_spaces_cost_no_backtracking():
    """A text of a name's first word, each followed by a thousand spaces (where the regex backtracked), read
    once: the answer is the same as for the short form."""
    matcher = name_pattern(["live vaccine", "live attenuated vaccine", "rubella"])
    hostile = ("live" + " " * 1000) * 9
    assert matcher.find(hostile) is None
    assert matcher.find(hostile + "live  Vaccine") == "live  Vaccine"
    assert matcher.find(hostile * 500 + "live vaccine") is None  # past the characters read
    assert MATCHER.find_name("adalimumab" + " " * 10**6 + "x") == "adalimumab"


def test_names_are_looked_for_in_the_first_characters_of_a_text():
    padding = "x" * (MAX_NAME_TEXT - len("Humira ") - 1)
    assert MATCHER.find_name(f"{padding} Humira pen") == "Humira"
    assert MATCHER.find_name(f"{padding}xx Humira pen") is None  # cut in the middle of the name
    assert MATCHER.matches_concept({"text": f"{padding} Humira"})
    assert not MATCHER.matches_concept({"text": f"{padding}xx Humira"})
