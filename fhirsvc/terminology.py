"""Code-system URIs, coding helpers and value-set membership by code and by name.

Real orders name their drug by a code, or only by text ("adalimumab 40 MG/0.4ML ... [Humira]"), so a
value set here is compiled into both a code set and a whole-word name matcher (display and
designations of its concepts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"

SYSTEM_NAMES = {
    RXNORM: "RxNorm", NDC: "NDC", SNOMED: "SNOMED CT", ATC: "ATC", CVX: "CVX", LOINC: "LOINC",
    ICD10CM: "ICD-10-CM", UCUM: "UCUM",
}


def code_key(system: str | None, code: str | None) -> str:
    """The index key of a coding: ``system|code``."""
    return f"{system or ''}|{code or ''}"


def codings(concept: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """The codings of a CodeableConcept (none for None)."""
    yield from (concept or {}).get("coding") or ()


def normalize_name(text: str) -> str:
    """Lower-case, collapse whitespace: the form names are indexed and compared in."""
    return " ".join(text.lower().split())


def name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """A regex that finds any of ``names`` as whole words (longest first), or None if there are none."""
    unique = sorted({normalize_name(name) for name in names if name and name.strip()}, key=len, reverse=True)
    if not unique:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, name.split())) for name in unique)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class ValueSetMatcher:
    """Membership test for one ValueSet: explicit codes, regex filters on codes, and names."""

    url: str
    codes: frozenset[str] = frozenset()
    code_patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    names: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_value_set(cls, value_set: Mapping[str, Any]) -> ValueSetMatcher:
        """Compile ``compose.include`` (concepts, and ``regex`` filters on ``code``)."""
        codes: set[str] = set()
        patterns: list[tuple[str, re.Pattern[str]]] = []
        names: set[str] = set()
        for include in (value_set.get("compose") or {}).get("include") or ():
            system = include.get("system", "")
            for concept in include.get("concept") or ():
                codes.add(code_key(system, concept.get("code")))
                names.update(filter(None, [concept.get("display")]))
                names.update(d["value"] for d in concept.get("designation") or () if d.get("value"))
            for flt in include.get("filter") or ():
                if flt.get("property") == "code" and flt.get("op") == "regex":
                    patterns.append((system, re.compile(flt["value"])))
        return cls(value_set.get("url", ""), frozenset(codes), tuple(patterns),
                   frozenset(normalize_name(n) for n in names), name_pattern(names))

    def has_code(self, system: str | None, code: str | None) -> bool:
        """True if the coding is a member, explicitly or through a regex filter."""
        if code_key(system, code) in self.codes:
            return True
        return bool(code) and any(sys == (system or "") and pat.search(code)
                                  for sys, pat in self.code_patterns)

    def find_name(self, text: str | None) -> str | None:
        """The first member name that occurs in ``text`` as whole words, as written there, or None."""
        if not text or self._pattern is None:
            return None
        found = self._pattern.search(text)
        return " ".join(found.group(0).split()) if found else None

    def matches_concept(self, concept: Mapping[str, Any] | None) -> bool:
        """True if a CodeableConcept has a member code, or names a member in a display or its text."""
        if not concept:
            return False
        if any(self.has_code(c.get("system"), c.get("code")) for c in codings(concept)):
            return True
        texts = [concept.get("text"), *(c.get("display") for c in codings(concept))]
        return any(self.find_name(text) for text in texts)
