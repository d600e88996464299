"""Code-system URIs, coding helpers and value-set membership by code and by name.

Real orders name their drug by a code, or only by text ("adalimumab 40 MG/0.4ML ... [Humira]"), so a
value set here is compiled into both a code set and a whole-word name matcher (display and
designations of its concepts).

NDCs come in many forms (``fhirsvc.ndc``): every NDC is read through ``knowledge_keys`` (the knowledge's
codes) or ``lookup_keys`` (codes sent to the service), so ``66658-234-07``, ``66658-0234-07``,
``66658023407`` and the product ``66658-234`` all meet the same key.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from re._casefix import _EXTRA_CASES  # type: ignore[import-not-found]  # re's own table (private: no stub)
from typing import Any

from fhirsvc import ndc as ndc_codes
from fhirsvc.canonical import ATC, CVX, ICD10CM, LOINC, NDC, RXNORM, SNOMED, UCUM
from fhirsvc.ndc import EMPTY_DIRECTORY, NdcDirectory

SYSTEM_NAMES = {
    RXNORM: "RxNorm", NDC: "NDC", SNOMED: "SNOMED CT", ATC: "ATC", CVX: "CVX", LOINC: "LOINC",
    ICD10CM: "ICD-10-CM", UCUM: "UCUM",
}


def code_key(system: str | None, code: str | None) -> str:
    """The index key of a coding: ``system|code``."""
    return f"{system or ''}|{code or ''}"


def knowledge_keys(system: str | None, code: str | None) -> tuple[str, ...]:
    """The index keys of a coding of the knowledge: ``system|code``, an NDC in its canonical forms."""
    if system == NDC:
        return ndc_codes.index_keys(code)
    return (code_key(system, code),)


def lookup_keys(system: str | None, code: str | None, directory: NdcDirectory = EMPTY_DIRECTORY) -> tuple[str, ...]:
    """The keys a sent coding is looked up under: ``system|code``; an NDC in any form under its canonical keys
    (an unhyphenated 10-digit one resolved against the knowledge's NDCs, ``directory``)."""
    if system == NDC:
        return directory.lookup_keys(code)
    return (code_key(system, code),)


def ndc_directory(codes: Iterable[tuple[str | None, str | None]]) -> NdcDirectory:
    """The directory of the NDCs among (system, code) pairs."""
    return NdcDirectory(code for system, code in codes if system == NDC and isinstance(code, str))


def codings(concept: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The codings of a CodeableConcept (none for None). Sent data can have any JSON type, so only objects
    in an array count; the knowledge's arrays are tuples (frozen)."""
    # dict first, and None at once: the same answers, without the slower Mapping (ABC) check on the common ones
    if concept is None or not isinstance(concept, (dict, Mapping)):
        return []
    found = concept.get("coding")
    if isinstance(found, (list, tuple)):
        return [c for c in found if isinstance(c, (dict, Mapping))]
    return []


MEMO_SIZE = 4096  # remembered answers per value set (or index); cleared when full
_MEMO_TEXT = 200  # longest string a remembered concept may hold


def concept_key(concept: Any) -> tuple[str | None, ...] | None:
    """What membership by concept reads of a CodeableConcept: its text, then each coding's system, code and
    display. None when one of them is neither None nor a short string: such a concept is not remembered."""
    if type(concept) is not dict and (concept is None or not isinstance(concept, Mapping)):
        return None
    found = concept.get("coding")
    if type(found) is list and len(found) == 1 and type(found[0]) is dict:  # the common case: one coding
        coding = found[0]
        parts: Any = (concept.get("text"), coding.get("system"), coding.get("code"), coding.get("display"))
    else:
        parts = [concept.get("text")]
        if isinstance(found, (list, tuple)):  # as ``codings``, without building its list
            for coding in found:
                if isinstance(coding, (dict, Mapping)):
                    parts += (coding.get("system"), coding.get("code"), coding.get("display"))
    for part in parts:
        if part is not None and (type(part) is not str or len(part) > _MEMO_TEXT):
            return None
    return tuple(parts)


def normalize_name(text: str) -> str:
    """Lower-case, collapse whitespace: the form names are indexed and compared in."""
    return " ".join(text.lower().split())


# Names are looked for in the first this many characters of a text or display (a drug's or a condition's name
# is written in far fewer): what an order's text costs to read stays bounded whatever its length.
MAX_NAME_TEXT = 10_000


def name_pattern(names: Iterable[str]) -> NamePattern | None:
    """The whole-word matcher of ``names`` (longest first), or None if there are none."""
    pattern = NamePattern(names)
    return pattern if pattern.names else None


class NamePattern:
    """Finds any of ``names`` in a text as whole words, with any whitespace between their words and in any
    case: what ``(?<!\\w)(?:a\\s+b|...)(?!\\w)`` with ``re.IGNORECASE`` (names longest first) finds, but by
    looking up the text's words instead of running that regex over it, so the cost is linear in the text
    whatever it holds (the regex backtracks over long runs of spaces after a name's first word).

    A match starts where a run of word characters begins (or, for a name that starts otherwise, at a
    character after a non-word one): the names are kept by the key of their first word (or first character),
    and only the names under the key found there are compared, character by character (``fold``)."""

    def __init__(self, names: Iterable[str]) -> None:
        unique = sorted({normalize_name(name) for name in names if name and name.strip()}, key=lambda n: (-len(n), n))
        self.names = tuple(unique)
        self._by_word: dict[str, list[tuple[str, ...]]] = {}  # the key of the first word -> names (folded words)
        self._by_char: dict[str, list[tuple[str, ...]]] = {}  # names not starting with a word character
        self._name_of: dict[tuple[str, ...], str] = {}  # folded words -> the name (normalised)
        for name in unique:
            words = tuple(fold(name).split())
            self._name_of.setdefault(words, name)
            found = _WORD.match(words[0])
            if found:
                self._by_word.setdefault(found.group(0), []).append(words)
            else:
                self._by_char.setdefault(words[0][0], []).append(words)

    def find(self, text: str) -> str | None:
        """The first (then longest) name that occurs in ``text`` (its first MAX_NAME_TEXT characters) as whole
        words, as written there, or None."""
        text = text[:MAX_NAME_TEXT]
        for start, end, _words in self._matches(text):
            return text[start:end]
        return None

    def find_all(self, text: str) -> list[str]:
        """Every name that occurs in ``text`` (its first MAX_NAME_TEXT characters) as whole words, normalised
        (``normalize_name``), in the order they occur: a shorter name inside a longer one too."""
        return list(dict.fromkeys(self._name_of[words] for _, _, words in self._matches(text[:MAX_NAME_TEXT])))

    def _matches(self, text: str) -> Iterable[tuple[int, int, tuple[str, ...]]]:
        """(start, end, the name's folded words) of each name matching at each start, by start, longest first."""
        folded = fold(text)
        follows = {chunk.end(): after.start() for chunk, after in itertools.pairwise(_CHUNK.finditer(folded))}
        starts: _Starts = ((m.start(), self._by_word.get(m.group(0), ())) for m in _WORD.finditer(folded))
        if self._by_char:
            starts = _merged(starts, ((m.start(), self._by_char.get(m.group(0), ()))
                                      for m in _NON_WORD_START.finditer(folded)))
        for start, candidates in starts:
            for words in candidates:  # longest first
                end = _match_at(folded, start, words, follows)
                if end is not None:
                    yield start, end, words


# (start in the folded text, the names (folded words) that may begin there), by start
_Starts = Iterable[tuple[int, Sequence[tuple[str, ...]]]]


def _merged(first: _Starts, second: _Starts) -> _Starts:
    return heapq.merge(first, second, key=lambda item: item[0])


def _match_at(folded: str, start: int, words: tuple[str, ...], follows: Mapping[int, int]) -> int | None:
    """The end of the name's match at ``start`` (its words separated by whitespace, no word character
    after it), or None."""
    at = start
    for number, word in enumerate(words):
        if number:
            at = follows.get(at, -1)  # the next run of non-whitespace, when the last word ended one
            if at < 0:
                return None
        if not folded.startswith(word, at):
            return None
        at += len(word)
    if at < len(folded) and _is_word(folded[at]):
        return None
    return at


def _is_word(char: str) -> bool:
    """``\\w`` of ``re`` on str: alphanumeric or the underscore."""
    return char.isalnum() or char == "_"


# Characters re.IGNORECASE matches with each other beyond their lower case (the table re itself uses): each to
# one of its class. With it, ``fold`` keeps the length of a text and two characters fold alike exactly when
# re.IGNORECASE matches them.
_CASE_CLASSES = str.maketrans({chr(code): chr(min(code, *others)) for code, others in _EXTRA_CASES.items()})
_FULL_LOWER = str.maketrans({"\u0130": "i"})  # the one letter whose lower case (in full) is two characters


def fold(text: str) -> str:
    """The text with each character in the form re.IGNORECASE compares it in (its simple lower case, then one
    character of its re case class); same length, same positions."""
    return text.translate(_FULL_LOWER).lower().translate(_CASE_CLASSES)


_CHUNK = re.compile(r"\S+")
_NON_WORD_START = re.compile(r"(?<!\w)[^\w\s]")
_WORD = re.compile(r"\w+")
# Letters re.IGNORECASE matches with a letter that str.casefold() keeps apart (dotless and dotted I).
_IGNORECASE_FOLDS = str.maketrans({"\u0131": "i", "\u0130": "i"})


def word_key(word: str) -> str:
    """The form words are looked up in: two words that a name pattern matches case-insensitively
    (``re.IGNORECASE``) have the same key."""
    return word.translate(_IGNORECASE_FOLDS).casefold()


def first_word(name: str) -> str | None:
    """The key of a name's first word (its leading run of word characters); None if it starts otherwise."""
    found = _WORD.match(name)
    return word_key(found.group(0)) if found else None


def text_words(text: str) -> frozenset[str]:
    """The keys of every word (maximal run of word characters) of a text.

    Where a name pattern matches whole words, the text has a word equal to the name's first word (the
    match starts at a word boundary and the name's first word ends at a non-word character or at the end
    of the name): so a text none of whose words is a name's first word cannot contain that name, and the
    pattern need not run. Like the names, only the first MAX_NAME_TEXT characters are read."""
    return _short_text_words(text) if len(text) <= 200 else _text_words(text[:MAX_NAME_TEXT])


def _text_words(text: str) -> frozenset[str]:
    if text.isascii():  # the common case: lower() is casefold() here, and keeps the words apart
        return frozenset(_WORD.findall(text.lower()))
    return frozenset(word_key(word) for word in _WORD.findall(text))


# The same displays and texts (drug, condition and observation names) come in every call: remembered, short
# ones only, so the cache stays small whatever the callers send.
_short_text_words = lru_cache(maxsize=4096)(_text_words)


@dataclass(frozen=True)
class ValueSetMatcher:
    """Membership test for one ValueSet: explicit codes, regex filters on codes, and names."""

    url: str
    codes: frozenset[str] = frozenset()
    code_patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    names: frozenset[str] = frozenset()
    ndc: NdcDirectory = field(default=EMPTY_DIRECTORY, compare=False, repr=False)  # resolves 10-digit NDCs

    @cached_property
    def _pattern(self) -> NamePattern | None:
        """The whole-word matcher of the names, built on first use (most value sets are never searched)."""
        return name_pattern(self.names)

    @cached_property
    def first_words(self) -> frozenset[str | None]:
        """The first-word keys of the names (``None`` for a name that does not start with a word character)."""
        return frozenset(first_word(name) for name in self.names if name)

    @classmethod
    def from_value_set(cls, value_set: Mapping[str, Any], ndc: NdcDirectory | None = None) -> ValueSetMatcher:
        """Compile ``compose.include`` (concepts, and ``regex`` filters on ``code``). ``ndc``: the NDCs of the
        whole knowledge (an unhyphenated 10-digit NDC is matched when exactly one of its paddings is one of
        them); by default the value set's own."""
        codes: set[str] = set()
        pairs: list[tuple[str, str]] = []
        patterns: list[tuple[str, re.Pattern[str]]] = []
        names: set[str] = set()
        for include in (value_set.get("compose") or {}).get("include") or ():
            system = include.get("system", "")
            for concept in include.get("concept") or ():
                codes.update(knowledge_keys(system, concept.get("code")))
                pairs.append((system, concept.get("code")))
                names.update(filter(None, [concept.get("display")]))
                names.update(d["value"] for d in concept.get("designation") or () if d.get("value"))
            for flt in include.get("filter") or ():
                if flt.get("property") == "code" and flt.get("op") == "regex":
                    patterns.append((system, re.compile(flt["value"])))
        return cls(value_set.get("url", ""), frozenset(codes), tuple(patterns),
                   frozenset(normalize_name(n) for n in names), ndc if ndc is not None else ndc_directory(pairs))

    def has_code(self, system: str | None, code: str | None) -> bool:
        """True if the coding is a member, explicitly or through a regex filter."""
        if system == NDC:
            return any(key in self.codes for key in self.ndc.lookup_keys(code))
        if code_key(system, code) in self.codes:
            return True
        return isinstance(code, str) and bool(code) and any(sys == (system or "") and pat.search(code)
                                  for sys, pat in self.code_patterns)

    def find_name(self, text: str | None) -> str | None:
        """The first member name that occurs in ``text`` as whole words, as written there, or None."""
        if not text or not isinstance(text, str) or not self.names:
            return None
        if None not in self.first_words and self.first_words.isdisjoint(text_words(text)):
            return None  # no word of the text starts a name: the pattern cannot match (text_words)
        if self._pattern is None:
            return None
        found = self._pattern.find(text)
        return " ".join(found.split()) if found else None

    def names_in(self, text: str | None) -> list[str]:
        """Every member name that occurs in ``text`` as whole words (normalised), in the order they occur."""
        if not text or not isinstance(text, str) or not self.names or self._pattern is None:
            return []
        if None not in self.first_words and self.first_words.isdisjoint(text_words(text)):
            return []
        return self._pattern.find_all(text)

    @cached_property
    def _verdicts(self) -> dict[tuple[str | None, ...], bool]:
        return {}

    def matches_concept(self, concept: Mapping[str, Any] | None) -> bool:
        """True if a CodeableConcept has a member code, or names a member in a display or its text. The
        answer depends only on ``concept_key(concept)``: the same codes and names come in every call, so
        answers are remembered by it (at most MEMO_SIZE)."""
        return self.matches_keyed(concept, concept_key(concept))

    def matches_keyed(self, concept: Mapping[str, Any] | None, key: tuple[str | None, ...] | None) -> bool:
        """``matches_concept`` with ``concept_key(concept)`` already known (a caller asking many value sets)."""
        if key is None:
            return self._matches_concept(concept)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= MEMO_SIZE:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._matches_concept(concept)
        return verdict

    def _matches_concept(self, concept: Mapping[str, Any] | None) -> bool:
        if not concept:
            return False
        if any(self.has_code(c.get("system"), c.get("code")) for c in codings(concept)):
            return True
        texts = [concept.get("text"), *(c.get("display") for c in codings(concept))]
        return any(self.find_name(text) for text in texts)
