"""The wording helpers (fhirsvc/checks/wording.py): names shortened as the chart has them, groups named from
the knowledge, the monograph quoted without its patient voice (docs/card-style.md)."""

from __future__ import annotations

import pytest

from fhirsvc.checks import wording
from fhirsvc.terminology import ValueSetMatcher

LIVE = "https://fhirsvc.org/fhir/ValueSet/live-vaccines"
TNF = "https://fhirsvc.org/fhir/ValueSet/tnf-inhibitors"


@pytest.mark.parametrize(("display", "short"), [
    ("Typhoid Vaccine Live Ty21a Oral Capsule [Vivotif]", "Typhoid Vaccine Live Ty21a [Vivotif]"),
    ("Typhoid Vaccine Live Ty21a 2000000000 UNT Oral Capsule [Vivotif]", "Typhoid Vaccine Live Ty21a [Vivotif]"),
    ("anakinra 100 MG in 0.67 ML Prefilled Syringe [Kineret]", "anakinra [Kineret]"),
    ("MMR II vaccine", "MMR II vaccine"),
    ("Humira (adalimumab) 40 mg/0.4 mL pen", "Humira (adalimumab) 40 mg/0.4 mL pen"),
])
def test_an_order_display_is_shortened_keeping_the_brand(display, short):
    assert wording.shorten(display) == short


def test_a_long_name_without_strength_or_form_is_cut_at_a_word():
    name = "A very long medication name without any strength given in its display at all [Brand]"
    short = wording.shorten(name)
    assert len(short) <= wording.NAME_MAX and short.endswith("\u2026 [Brand]") and " " in short


def test_the_member_label_comes_from_the_value_set(knowledge):
    by_name = wording.member_label(knowledge, LIVE, [{"text": "Typhoid Vaccine Live Ty21a Oral Capsule"}], ["Ty21a"])
    assert by_name == "typhoid, oral"
    by_code = wording.member_label(knowledge, LIVE, [{"coding": [{"system": "http://hl7.org/fhir/sid/cvx",
                                                                  "code": "21"}]}])
    assert by_code == "varicella"
    assert wording.member_label(knowledge, TNF, [{"text": "Humira pen"}], ["Humira"]) == "adalimumab"
    assert wording.member_label(knowledge, LIVE, [{"text": "something else"}]) == ""


FLUMIST_QUADRIVALENT = "influenza vaccine live intranasal Nasal Spray [FluMist Quadrivalent]"


def test_the_most_specific_name_found_names_the_member(knowledge):
    """"influenza vaccine live intranasal" names every live nasal influenza vaccine, "FluMist Quadrivalent" one
    (CVX 149, "Influenza, live, quadrivalent, intranasal"): the brand wins over the longer generic phrase."""
    matcher = ValueSetMatcher.from_value_set(knowledge.resolve(LIVE))
    found = matcher.names_in(FLUMIST_QUADRIVALENT)
    assert {"influenza vaccine live intranasal", "flumist", "flumist quadrivalent"} <= set(found)
    label = wording.member_label(knowledge, LIVE, [{"text": FLUMIST_QUADRIVALENT}], found)
    assert label == "Influenza, live, quadrivalent, intranasal"
    # the generic phrase alone names the first of the members that share it, as before
    generic = wording.member_label(knowledge, LIVE, [], ["influenza vaccine live intranasal"])
    assert generic == "Influenza, live, trivalent, intranasal, PF"
    # a brand of one member ("FluMist Home") wins over the brand every member shares ("FluMist")
    home = wording.member_label(knowledge, LIVE, [], ["flumist", "flumist home"])
    assert home == "Influenza, live, trivalent, intranasal, self/caregiver admin, PF"


def test_the_group_is_named_by_the_knowledge(knowledge):
    assert wording.member_name(knowledge, LIVE) == "live vaccine"
    assert wording.member_name(knowledge, LIVE, plural=True) == "live vaccines"
    assert wording.group_with_member("live vaccine", "typhoid, oral") == "a live vaccine (typhoid, oral)"
    assert wording.group_with_member("live vaccine", "") == "a live vaccine"


def test_a_quote_leaves_out_the_sentences_that_address_the_patient():
    text = ("**Seniors.** This medication may lower immunity. If you're over the age of 65, you may have a higher "
            "risk. Seniors may also have reduced kidney function.")
    assert wording.quote_sentences(text) == ("This medication may lower immunity. Seniors may also have reduced "
                                             "kidney function.")
    only_you = "**Heading.** You may get an infection. Call your doctor:\n\n- a fever"
    assert wording.quote_sentences(only_you) == "You may get an infection."
    assert wording.quote("It is so.", "SECTION 1 of 4 \u203a Part") == \
        "> \u201cIt is so.\u201d \u2014 monograph, SECTION 1 of 4 \u203a Part"
    assert wording.quote("", "SECTION 1") == ""


def test_a_monograph_text_is_read_for_quoting_once():
    text = "**Heading.** Quoted once. You may be told again."
    first = wording.quote_sentences(text)
    hits = wording.quote_sentences.cache_info().hits
    assert wording.quote_sentences(text) == first == "Quoted once."
    assert wording.quote_sentences.cache_info().hits == hits + 1
    assert wording.quote_sentences(text, 1) == first  # another question: read anew, the same answer


def test_a_statement_keeps_only_its_impersonal_clauses():
    assert wording.impersonal("Allergy to X; ask your healthcare provider if you aren't sure") == "Allergy to X"
    assert wording.impersonal("Reaction to X; taking it again could be fatal") == \
        "Reaction to X; taking it again could be fatal"


def test_every_template_fills_with_its_facts():
    import string
    for key, (summary, detail) in wording.TEMPLATES.items():
        fields = {name for text in (summary, *detail) for _, name, _, _ in string.Formatter().parse(text) if name}
        facts = {name.lower(): f"<{name.lower()}>" for name in fields}
        filled_summary, filled_detail = wording.words(key, **facts)
        assert "{" not in filled_summary + filled_detail, key
        assert not wording.SECOND_PERSON.search(filled_summary + filled_detail), key
