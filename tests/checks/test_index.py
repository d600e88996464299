"""Recognition through the drug index gives the same answers as asking every drug (``recognition.recognize``),
and so do the reverse interactions, the name pre-filter of a value set and the remembered answers: the index
only makes the cost independent of the number of drugs."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsvc.checks.index import DrugIndex
from fhirsvc.checks.recognition import in_value_set, recognize
from fhirsvc.knowledge import load_knowledge
from fhirsvc.terminology import ATC, CVX, NDC, RXNORM, SNOMED, ValueSetMatcher, concept_key
from tests.checks.test_second_drug import EXAMPLE_DRUG, LOCAL
from tests.conftest import KNOWLEDGE_DIR
from tests.test_terminology import regex_of

CANONICAL = "https://fhirsvc.org/fhir/"
VALUE_SET_EXT = CANONICAL + "StructureDefinition/value-set"


def made_up(i: int) -> list[dict]:
    """A drug with its products and its own interaction class, named so that names overlap between drugs
    (``zumab 3`` is a prefix of ``zumab 30``) and with the shipped drug's classes."""
    products, klass = f"made-up-{i}-products", f"made-up-{i}-class"

    def value_set(vid: str, concepts: list[tuple[str, str, list[str]]]) -> dict:
        return {"resourceType": "ValueSet", "id": vid, "url": f"{CANONICAL}ValueSet/{vid}", "status": "active",
                "compose": {"include": [{"system": LOCAL, "concept": [
                    {"code": c, "display": d, **({"designation": [{"value": n} for n in names]} if names else {})}
                    for c, d, names in concepts]}]}}

    vs_ext = [{"url": VALUE_SET_EXT, "valueCanonical": f"{CANONICAL}ValueSet/{products}"}]
    return [
        value_set(products, [(f"MU-{i}", f"zumab {i}", [f"Zuma-{i}"]),
                             (f"MU-{i}-x", f"Zumab {i} (Zuma-{i}) 10 mg", [])]),
        value_set(klass, [(f"MC-{i}", f"classmab {i % 3}", ["adalimumab" if i % 4 == 0 else f"other{i}"])]),
        {"resourceType": "ClinicalUseDefinition", "id": f"made-up-{i}-interaction", "type": "interaction",
         "interaction": {"interactant": [{"itemCodeableConcept": {
             "extension": [{"url": VALUE_SET_EXT, "valueCanonical": f"{CANONICAL}ValueSet/{klass}"}]}}]}},
        {"resourceType": "MedicationKnowledge", "id": f"made-up-{i:02d}", "status": "active",
         "code": {"extension": vs_ext, "coding": [{"system": LOCAL, "code": f"MU-{i}"}], "text": f"zumab {i}"},
         "name": [f"zumab {i}", f"Zuma-{i}"],
         "clinicalUseIssue": [{"reference": f"ClinicalUseDefinition/made-up-{i}-interaction"}]},
    ]


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    directory = tmp_path_factory.mktemp("index")
    for resource in EXAMPLE_DRUG + [r for i in range(1, 41) for r in made_up(i)]:
        (directory / f"{resource['resourceType']}-{resource['id']}.json").write_text(json.dumps(resource))
    return load_knowledge([KNOWLEDGE_DIR, directory])


@pytest.fixture(scope="module")
def index(knowledge):
    return DrugIndex(knowledge)


def c(*codings: tuple[str, str, str | None], text: str | None = None) -> dict:
    out: dict = {"coding": [{"system": s, "code": k, **({"display": d} if d else {})} for s, k, d in codings]}
    if text is not None:
        out["text"] = text
    return out


CONCEPTS = [
    [c((RXNORM, "72435", None))], [c((NDC, "66658023428", None))], [c((ATC, "L04AC03", None))],
    [c((SNOMED, "385549000", None), text="instead of Humira")], [c(text="Kineret 100 mg/0.67 mL")],
    [c(text="ANAKINRA 100 MG/0.67 ML SC SOSY")], [c((RXNORM, "349325", "anakinra 150 MG/ML [Kineret]"))],
    [c(text="anakinraX 100 mg")], [c(text="(kineret)")], [c(text="Kineret®")], [c(text="KİNERET")],
    [c((LOCAL, "EX-1", None))], [c(text="Exampla 100 mg")], [c((LOCAL, "ST-1", None))], [c(text="Statexa")],
    [c((LOCAL, "MU-3", None))], [c((LOCAL, "MU-30", None))], [c(text="zumab 3")], [c(text="zumab  30 mg")],
    [c(text="Zuma-3 and zumab 30")], [c(text="ZUMA-12")], [c(text="zumab 3x")], [c(text="zumab")],
    [c((LOCAL, "MC-4", None))], [c(text="classmab 1")], [c(text="adalimumab 40 MG [Humira]")],
    [c((CVX, "03", None))], [c(text="Measles, Mumps and Rubella Virus Vaccine Live")], [c(text="Enbrel")],
    [c((RXNORM, "6851", "methotrexate"))], [c(text="")], [c()], [{}], [c(text="x")], [],
    [c((LOCAL, "MU-7", None)), c(text="Kineret")], [c(text="Kineret"), c((LOCAL, "MU-7", None))],
    [{"coding": [{"system": LOCAL, "code": 7}], "text": ["not", "text"]}],
    [{"coding": "MU-7", "text": {"a": 1}}], [c((None, "MU-5", None))], [c(("", "MU-5", "zumab 5"))],
]


def reverse_by_scan(knowledge, concepts, own):
    """The engine's reverse jobs before the index: every drug, every interaction."""
    found = []
    for drug in DrugIndex(knowledge).drugs:
        if drug.id in own:
            continue
        for inter in sorted(drug.interactions, key=lambda i: (i.id, i.value_set)):
            matcher = knowledge.value_sets.get(inter.value_set)
            if matcher is not None and in_value_set(concepts, matcher):
                found.append((drug.id, inter.id, inter.value_set))
    return found


@pytest.mark.parametrize("concepts", CONCEPTS, ids=[json.dumps(x)[:60] for x in CONCEPTS])
def test_the_index_answers_as_a_scan_of_every_drug(knowledge, index, concepts):
    expected = [d.id for d in recognize(concepts, index.drugs)]
    assert [d.id for d in index.recognize(concepts)] == expected
    assert [d.id for d in index.recognize(concepts)] == expected  # remembered: the same again
    for own in ((), {d for d in expected}):
        assert [(r.drug.id, r.interaction.id, r.interaction.value_set) for r in index.reverse(concepts, own)] \
            == reverse_by_scan(knowledge, concepts, own)


def test_the_example_set_recognises_something(index):
    """The table above exercises matches, not only misses."""
    found = {d.id for concepts in CONCEPTS for d in index.recognize(concepts)}
    assert {"anakinra", "examplumab", "made-up-03", "made-up-30", "made-up-12"} <= found


WORDS = ["zumab", "Zuma-3", "3", "30", "Kineret", "kineret", "KINERET", "anakinra", "adalimumab", "Humira",
         "classmab", "mg", "-", "(", ")", "/", " ", "  ", "\t", "é", "®", "x", "_", "Exampla",
         "\u0131", "\u0130", "\u017f", "\u212a"]  # dotless i, dotted I, long s, Kelvin sign: re.IGNORECASE folds


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(WORDS), max_size=8).map("".join), st.sampled_from(CONCEPTS[:30]))
def test_random_texts_give_the_same_answers(knowledge, index, text, concepts):
    probe = [*concepts, {"text": text}]
    assert [d.id for d in index.recognize(probe)] == [d.id for d in recognize(probe, index.drugs)]
    assert [(r.drug.id, r.interaction.id) for r in index.reverse(probe)] == \
        [(d, i) for d, i, _ in reverse_by_scan(knowledge, probe, ())]
    for matcher in list(knowledge.value_sets.values())[:60]:
        found = regex_of(matcher.names).search(text) if matcher.names else None
        assert matcher.find_name(text) == (" ".join(found.group(0).split()) if found else None)


def test_remembered_value_set_answers_depend_only_on_the_concept_key():
    matcher = ValueSetMatcher.from_value_set({"url": "u", "compose": {"include": [
        {"system": LOCAL, "concept": [{"code": "1", "display": "one thing"}]}]}})
    same = [{"coding": [{"system": LOCAL, "code": "1"}]}, {"text": "One  Thing"}, {"text": "two"}]
    for concept in same * 2:
        assert matcher.matches_concept(concept) == matcher._matches_concept(concept)
    assert concept_key({"coding": [{"system": LOCAL, "code": 1}]}) is None  # not a string: not remembered
    odd = {"coding": [{"system": LOCAL, "code": 1}]}
    assert matcher.matches_concept(odd) is matcher._matches_concept(odd) is True  # "1" and 1 have one code key
