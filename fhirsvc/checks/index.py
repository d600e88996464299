"""The knowledge's drugs and interaction classes indexed by code and by name, built once per knowledge.

Recognising the drug of an order, and finding the drugs whose interaction class an order belongs to, must
not cost more with every drug added to the knowledge. So instead of asking every drug (and every
interaction value set) whether it matches, the index looks up the few that can: by the ``system|code`` of
each coding, and by the words of each text and display (``fhirsvc.terminology.text_words``: a name can
only occur in a text that has its first word). The candidates are then checked exactly as before
(``DrugProfile.has_code``/``find_name``, ``ValueSetMatcher.matches_concept``), so the answers are the same
as asking every drug, in the same order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhirsvc.checks.recognition import concept_texts, in_value_set
from fhirsvc.drugmodel.profile import DrugProfile, Interaction, drug_profiles
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.ndc import EMPTY_DIRECTORY, NdcDirectory
from fhirsvc.terminology import (
    MEMO_SIZE,
    ValueSetMatcher,
    codings,
    concept_key,
    first_word,
    lookup_keys,
    normalize_name,
    text_words,
)

Concept = Mapping[str, Any]
# a drug's interaction with a class: (the drug's position, (interaction id, value set), the drug, the interaction)
Member = tuple[int, tuple[str, str], DrugProfile, Interaction]


class TermIndex:
    """Items (ints) by code key and by the first word of their names. ``candidates`` returns a superset of
    the items that can match: the caller checks each one."""

    def __init__(self) -> None:
        self.by_code: defaultdict[str, list[int]] = defaultdict(list)
        self.by_word: defaultdict[str, list[int]] = defaultdict(list)
        self.any_code: list[int] = []  # items with regex filters on codes: any code may match
        self.any_name: list[int] = []  # items with a name that does not start with a word character

    def add(self, item: int, codes: Iterable[str], names: Iterable[str], code_filters: bool = False) -> None:
        for key in codes:
            self.by_code[key].append(item)
        if code_filters:
            self.any_code.append(item)
        for word in {first_word(name) for name in names if name}:
            if word is None:
                self.any_name.append(item)
            else:
                self.by_word[word].append(item)

    def by_codes(self, concepts: Sequence[Concept], ndc: NdcDirectory = EMPTY_DIRECTORY) -> set[int]:
        found = set(self.any_code)
        for concept in concepts:
            for coding in codings(concept):
                for key in lookup_keys(coding.get("system"), coding.get("code"), ndc):
                    found.update(self.by_code.get(key, ()))
        return found

    def by_texts(self, texts: Iterable[str]) -> set[int]:
        found = set(self.any_name)
        for text in texts:
            for word in text_words(text):
                found.update(self.by_word.get(word, ()))
        return found


@dataclass(frozen=True)
class Reverse:
    """One interaction of another drug whose interactant class an order belongs to."""

    drug: DrugProfile
    interaction: Interaction


class DrugIndex:
    """The drug profiles of a knowledge (in id order) with their code and name index, and the interaction
    value sets with theirs."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.drugs: tuple[DrugProfile, ...] = drug_profiles(knowledge)
        self.ndc = knowledge.ndc
        self.drug_terms = TermIndex()
        for position, drug in enumerate(self.drugs):
            product = drug.product
            self.drug_terms.add(position, drug.codes | (product.codes if product else frozenset()),
                                {normalize_name(n) for n in drug.names} | (product.names if product else frozenset()),
                                code_filters=bool(product and product.code_patterns))
        # interaction value set -> (drug position, interaction order, drug, interaction), as the engine orders them
        by_class: defaultdict[str, list[Member]] = defaultdict(list)
        for position, drug in enumerate(self.drugs):
            for inter in drug.interactions:
                if inter.value_set in knowledge.value_sets:
                    by_class[inter.value_set].append((position, (inter.id, inter.value_set), drug, inter))
        self.classes: tuple[str, ...] = tuple(by_class)
        self.class_members = {url: tuple(members) for url, members in by_class.items()}
        self.matchers: tuple[ValueSetMatcher, ...] = tuple(knowledge.value_sets[url] for url in self.classes)
        self.class_terms = TermIndex()
        for item, matcher in enumerate(self.matchers):
            self.class_terms.add(item, matcher.codes, matcher.names, code_filters=bool(matcher.code_patterns))
        self._recognized: dict[tuple[Any, ...], tuple[DrugProfile, ...]] = {}  # by the concepts' keys
        self._reversed: dict[tuple[Any, ...], tuple[Member, ...]] = {}  # by the concepts' keys

    def recognize(self, concepts: Sequence[Concept]) -> list[DrugProfile]:
        """The drugs the concepts name, as ``recognition.recognize`` finds them over every drug: by code if any
        code matches, else by whole-word name; in id order."""
        return list(self.recognize_keyed(concepts, concept_keys(concepts)))

    def recognize_keyed(self, concepts: Sequence[Concept], keys: tuple[Any, ...]) -> tuple[DrugProfile, ...]:
        """``recognize`` with the concepts' ``concept_key``s already known (``keys``), by which the answers are
        remembered (the same medications come in every call), at most MEMO_SIZE."""
        if None in keys:
            return tuple(self._recognize(concepts))
        found = self._recognized.get(keys)
        if found is None:
            if len(self._recognized) >= MEMO_SIZE:
                self._recognized.clear()
            found = self._recognized[keys] = tuple(self._recognize(concepts))
        return found

    def _recognize(self, concepts: Sequence[Concept]) -> list[DrugProfile]:
        pairs = [(c.get("system"), c.get("code")) for concept in concepts for c in codings(concept)]
        by_code = [self.drugs[i] for i in sorted(self.drug_terms.by_codes(concepts, self.ndc))
                   if any(self.drugs[i].has_code(system, code) for system, code in pairs)]
        if by_code:
            return by_code
        texts = concept_texts(concepts)
        return [self.drugs[i] for i in sorted(self.drug_terms.by_texts(texts))
                if any(self.drugs[i].find_name(t) for t in texts)]

    def reverse(self, concepts: Sequence[Concept], own: Iterable[str] = (), keys: tuple[Any, ...] | None = None
                ) -> list[Reverse]:
        """The interactions of drugs (not in ``own``) whose interactant value set the concepts belong to: by
        drug in id order, then by interaction id and value set. Remembered by the concepts' ``concept_key``s
        (``keys``, if the caller has them), at most MEMO_SIZE."""
        keys = concept_keys(concepts) if keys is None else keys
        found = self._reversed.get(keys) if None not in keys else None
        if found is None:
            found = self._reverse(concepts)
            if None not in keys:
                if len(self._reversed) >= MEMO_SIZE:
                    self._reversed.clear()
                self._reversed[keys] = found
        skip = set(own)
        return [Reverse(drug, inter) for _, _, drug, inter in found if drug.id not in skip]

    def _reverse(self, concepts: Sequence[Concept]) -> tuple[Member, ...]:
        """Every interaction whose interactant value set the concepts belong to, in the order ``reverse`` gives."""
        candidates = self.class_terms.by_codes(concepts, self.ndc) | self.class_terms.by_texts(concept_texts(concepts))
        found = [member for item in candidates if in_value_set(concepts, self.matchers[item])
                 for member in self.class_members[self.classes[item]]]
        return tuple(sorted(found, key=lambda m: (m[0], m[1])))


def concept_keys(concepts: Sequence[Concept]) -> tuple[Any, ...]:
    """The ``concept_key`` of each concept (None for one that is not remembered)."""
    return tuple(map(concept_key, concepts))


def drug_index(knowledge: Knowledge) -> DrugIndex:
    """The knowledge's drug index, built on first use and kept with the knowledge."""
    return knowledge.derived("checks.drug_index", DrugIndex)
