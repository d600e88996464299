"""The NDC normaliser (fhirsvc/ndc.py): every form pharmacy systems send, read into the 11-digit 5-4-2 form."""

from __future__ import annotations

import pytest

from fhirsvc.ndc import AMBIGUOUS, NDC, PACKAGE, PRODUCT, NdcDirectory, index_keys, normalize, parse

# code as sent -> (kind, form, canonical candidates)
FORMS = [
    ("66658-234-07", PACKAGE, "5-3-2", ("66658-0234-07",)),
    ("66658-0234-07", PACKAGE, "5-4-2", ("66658-0234-07",)),
    ("66658023407", PACKAGE, "11-digit", ("66658-0234-07",)),
    ("66658-0234-28", PACKAGE, "5-4-2", ("66658-0234-28",)),
    ("0002-7597-01", PACKAGE, "4-4-2", ("00002-7597-01",)),
    ("50090-1234-5", PACKAGE, "5-4-1", ("50090-1234-05",)),
    (" 66658-234-07\t", PACKAGE, "5-3-2", ("66658-0234-07",)),
    ("66658-234", PRODUCT, "5-3", ("66658-0234",)),
    ("66658-0234", PRODUCT, "5-4", ("66658-0234",)),
    ("0002-7597", PRODUCT, "4-4", ("00002-7597",)),
    ("6665823407", AMBIGUOUS, "10-digit", ("06665-8234-07", "66658-0234-07", "66658-2340-07")),
    ("0002759701", AMBIGUOUS, "10-digit", ("00002-7597-01", "00027-0597-01", "00027-5970-01")),
]

NOT_NDC = [
    "", "   ", "-", "66658", "666580234", "666580234071", "6665-823-407", "66658-23-07", "666-234-07",
    "66658-12345-07", "66658-234-007", "66658-234-07-1", "66658--07", "66658-234-", "-234-07", "66658_234_07",
    "66658 234 07", "ABCDE-234-07", "66658-23A-07", "6665823407X", "66658\u0662234-07", "\u0666\u0666\u0666\u0665"
    "\u0668\u0662\u0663\u0664\u0660\u0667", "66658.234.07", "66658-234-07 extra",
]


@pytest.mark.parametrize(("code", "kind", "form", "candidates"), FORMS, ids=[f[0].strip() for f in FORMS])
def test_every_valid_form_is_read(code, kind, form, candidates):
    found = parse(code)
    assert found is not None
    assert (found.kind, found.form, found.candidates) == (kind, form, candidates)
    assert normalize(code) == (None if kind == AMBIGUOUS else candidates[0])


@pytest.mark.parametrize("code", NOT_NDC)
def test_anything_else_is_not_an_ndc(code):
    assert parse(code) is None
    assert normalize(code) is None


@pytest.mark.parametrize("value", [None, 66658023407, ["66658-234-07"], {"code": "66658-234-07"}])
def test_values_that_are_not_strings_are_not_ndcs(value):
    assert parse(value) is None


def test_every_canonical_form_is_11_digits_5_4_2():
    for code, kind, _, _ in FORMS:
        for canonical in parse(code).candidates:
            segments = canonical.split("-")
            assert [len(s) for s in segments] == ([5, 4] if kind == PRODUCT else [5, 4, 2]), code
            assert all(s.isdigit() for s in segments)


def test_the_three_readings_of_a_10_digit_code_are_its_three_paddings():
    for code, kind, _, candidates in FORMS:
        if kind == AMBIGUOUS:
            assert sorted(c.replace("-", "") for c in candidates) == sorted(
                [f"0{code}", f"{code[:5]}0{code[5:]}", f"{code[:9]}0{code[9:]}"])


KNOWN = NdcDirectory(["66658-234-07", "66658-234-28"])  # the labeler's form, as the knowledge keeps it


@pytest.mark.parametrize(("sent", "status", "keys"), [
    ("66658-234-07", "ok", {"66658-0234-07", "66658-0234-*"}),
    ("66658-0234-07", "ok", {"66658-0234-07", "66658-0234-*"}),
    ("66658023407", "ok", {"66658-0234-07", "66658-0234-*"}),
    ("6665823407", "ok", {"66658-0234-07", "66658-0234-*"}),  # only the 5-3-2 reading is known
    ("6665823428", "ok", {"66658-0234-28", "66658-0234-*"}),
    ("66658-234", "ok", {"66658-0234"}),
    ("1234567890", "unknown", set()),  # none of its readings is known
    ("not-an-ndc", "not-ndc", set()),
    ("", "not-ndc", set()),
])
def test_lookup_against_the_knowledge(sent, status, keys):
    found = KNOWN.lookup(sent)
    assert found.status == status
    assert set(found.keys) == {f"{NDC}|{k}" for k in keys}


def test_a_10_digit_code_two_of_whose_readings_are_known_is_ambiguous():
    # 1234567890 reads as 01234-5678-90 (4-4-2), 12345-0678-90 (5-3-2) or 12345-6789-00 (5-4-1)
    directory = NdcDirectory(["1234-5678-90", "12345-678-90"])
    found = directory.lookup("1234567890")
    assert (found.status, found.keys) == ("ambiguous", ())
    assert NdcDirectory(["1234-5678-90"]).lookup("1234567890").status == "ok"


def test_the_knowledge_keys_meet_the_lookup_keys():
    """A package is indexed under its package and product keys: every form of it and its product NDC meet one
    of them; another package of the same product does not."""
    indexed = set(index_keys("66658-234-07"))
    for sent in ("66658-234-07", "66658-0234-07", "66658023407", "6665823407", "66658-234", "66658-0234"):
        assert indexed & set(KNOWN.lookup(sent).keys), sent
    for sent in ("66658-234-28", "66658-234-99", "66658-235-07"):
        assert not indexed & set(KNOWN.lookup(sent).keys), sent


def test_a_product_ndc_in_the_knowledge_matches_every_package_of_it():
    directory = NdcDirectory(["66658-234"])
    indexed = set(index_keys("66658-234"))
    for sent in ("66658-234-07", "66658-0234-99", "6665823499", "66658-234"):
        assert indexed & set(directory.lookup(sent).keys), sent
    assert not indexed & set(directory.lookup("66658-235-07").keys)
