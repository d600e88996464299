"""National Drug Codes (NDC, ``http://hl7.org/fhir/sid/ndc``) in every form pharmacy systems write them.

An NDC names a labeler, a product and a package. The FDA publishes it as 10 digits in three hyphenated
segments of 4-4-2, 5-3-2 or 5-4-1 digits; HIPAA transactions and most US pharmacy systems pad it to 11
digits, 5-4-2, by a zero at the front of the short segment (``66658-234-07`` -> ``66658-0234-07``), and
often leave the hyphens out (``66658023407``). A product NDC is the first two segments only
(``66658-234``): it names the product whatever the pack.

``parse`` reads any of these forms into the canonical 11-digit 5-4-2 form (``LLLLL-PPPP-KK``; a product
as ``LLLLL-PPPP``):

- three hyphenated segments of 4-4-2, 5-3-2, 5-4-1 (10 digits) or 5-4-2 (11 digits): padded in the short
  segment;
- 11 digits without hyphens: split 5-4-2;
- two hyphenated segments of 4-4, 5-3 or 5-4 digits: a product NDC;
- 10 digits without hyphens: ambiguous, since any of the three segments may be the short one. It stands
  for one of three 11-digit codes; ``NdcDirectory.lookup_keys`` takes it when exactly one of them is an
  NDC the knowledge knows.

Anything else (letters, other segment lengths, other digit counts, empty) is not an NDC: ``parse`` answers
None and the code is treated as an unknown code. Surrounding white space is ignored.

The matching keys (``index_keys`` for the knowledge's codes, ``NdcDirectory.lookup_keys`` for codes sent
to the service) are ``system|canonical`` strings, so they are indexed beside every other
code: a package key ``NDC|66658-0234-07``, a product key ``NDC|66658-0234``, and, for a product NDC in the
knowledge, ``NDC|66658-0234-*`` (any package of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fhirsvc.canonical import NDC

PACKAGE, PRODUCT, AMBIGUOUS = "package", "product", "ambiguous"

_HYPHENATED = re.compile(r"(\d+)-(\d+)(?:-(\d+))?")
# Hyphenated segment lengths -> the canonical widths (labeler 5, product 4, package 2) they pad to.
_PACKAGE_LAYOUTS = {(4, 4, 2): "4-4-2", (5, 3, 2): "5-3-2", (5, 4, 1): "5-4-1", (5, 4, 2): "5-4-2"}
_PRODUCT_LAYOUTS = {(4, 4): "4-4", (5, 3): "5-3", (5, 4): "5-4"}
# The three ways a 10-digit code without hyphens can be split: (labeler, product, package) lengths.
_TEN_DIGIT_SPLITS = ((4, 4, 2), (5, 3, 2), (5, 4, 1))


@dataclass(frozen=True)
class Ndc:
    """An NDC as read: its ``kind`` (package, product or ambiguous), the ``form`` it was written in
    (``5-3-2``, ``11-digit``, ``10-digit`` ...) and its canonical code(s): one for a package or a product,
    the three possible 11-digit codes for an ambiguous one."""

    kind: str
    form: str
    candidates: tuple[str, ...]

    @property
    def canonical(self) -> str | None:
        """The canonical form, None when ambiguous."""
        return self.candidates[0] if self.kind != AMBIGUOUS else None


def _pad(labeler: str, product: str, package: str | None = None) -> str:
    parts = [labeler.zfill(5), product.zfill(4)] + ([package.zfill(2)] if package is not None else [])
    return "-".join(parts)


def parse(code: object) -> Ndc | None:
    """The NDC a code is, in canonical form; None if it is not an NDC in any form (module docstring). Sent
    data can have any JSON type: anything but a string is not an NDC."""
    return _parse(code) if isinstance(code, str) else None


@lru_cache(maxsize=4096)
def _parse(code: str) -> Ndc | None:
    text = code.strip()
    if not text.isascii():
        return None
    found = _HYPHENATED.fullmatch(text)
    if found:
        labeler, product, package = found.groups()
        if package is None:
            layout = _PRODUCT_LAYOUTS.get((len(labeler), len(product)))
            return Ndc(PRODUCT, layout, (_pad(labeler, product),)) if layout else None
        layout = _PACKAGE_LAYOUTS.get((len(labeler), len(product), len(package)))
        return Ndc(PACKAGE, layout, (_pad(labeler, product, package),)) if layout else None
    if not text.isdigit():
        return None
    if len(text) == 11:
        return Ndc(PACKAGE, "11-digit", (f"{text[:5]}-{text[5:9]}-{text[9:]}",))
    if len(text) == 10:
        splits = []
        for lab, prod, _ in _TEN_DIGIT_SPLITS:
            splits.append(_pad(text[:lab], text[lab:lab + prod], text[lab + prod:]))
        return Ndc(AMBIGUOUS, "10-digit", tuple(splits))
    return None


def normalize(code: str | None) -> str | None:
    """The canonical 11-digit 5-4-2 form of an NDC (``LLLLL-PPPP-KK``, or ``LLLLL-PPPP`` for a product NDC);
    None if the code is not an NDC or is an unhyphenated 10-digit code (ambiguous without a directory)."""
    found = parse(code)
    return found.canonical if found else None


def product_of(canonical: str) -> str:
    """The product (``LLLLL-PPPP``) of a canonical package code."""
    return canonical[:10]


def _key(canonical: str) -> str:
    return f"{NDC}|{canonical}"


def index_keys(code: str | None) -> tuple[str, ...]:
    """The keys an NDC of the knowledge is indexed under: a package under its package and product keys, a
    product under its product key and the any-package key. An ambiguous or invalid code: under its code as
    written (the knowledge validation reports it)."""
    found = parse(code)
    if found is None or found.kind == AMBIGUOUS:
        return (_key(code or ""),)
    canonical = found.candidates[0]
    if found.kind == PACKAGE:
        return (_key(canonical), _key(product_of(canonical)))
    return (_key(canonical), _key(canonical + "-*"))


@dataclass(frozen=True)
class Lookup:
    """How a sent NDC was read against the knowledge: the keys to look up (empty when nothing can match),
    and the status: ``ok``, ``not-ndc`` (no NDC form), ``ambiguous`` (a 10-digit code two or three of
    whose paddings the knowledge knows) or ``unknown`` (a 10-digit code none of whose paddings it knows)."""

    keys: tuple[str, ...]
    status: str
    ndc: Ndc | None = None


class NdcDirectory:
    """The NDCs a knowledge knows, canonical: what resolves an unhyphenated 10-digit code."""

    def __init__(self, codes: Iterable[str] = ()) -> None:
        packages, products, any_package = set(), set(), set()
        for code in codes:
            found = parse(code)
            if found is None or found.kind == AMBIGUOUS:
                continue
            if found.kind == PACKAGE:
                packages.add(found.candidates[0])
                products.add(product_of(found.candidates[0]))
            else:
                any_package.add(found.candidates[0])
        self.packages = frozenset(packages)
        self.products = frozenset(products | any_package)
        self._any_package = frozenset(any_package)
        self._lookups: dict[str, Lookup] = {}

    def __len__(self) -> int:
        return len(self.packages) + len(self._any_package)

    def knows(self, canonical_package: str) -> bool:
        return canonical_package in self.packages or product_of(canonical_package) in self._any_package

    def lookup(self, code: str | None) -> Lookup:
        """The keys a sent NDC is looked up under: a package under its package key and its product's
        any-package key; a product under its product key; a 10-digit code under the one padding the knowledge
        knows (none if it knows none or several)."""
        if not isinstance(code, str):
            return Lookup((), "not-ndc")
        known = self._lookups.get(code)
        if known is None:
            known = self._lookup(code)
            if len(self._lookups) >= 4096:
                self._lookups.clear()
            self._lookups[code] = known
        return known

    def _lookup(self, code: str) -> Lookup:
        found = parse(code)
        if found is None:
            return Lookup((), "not-ndc")
        if found.kind == PRODUCT:
            return Lookup((_key(found.candidates[0]),), "ok", found)
        if found.kind == AMBIGUOUS:
            known = [c for c in found.candidates if self.knows(c)]
            if len(known) != 1:
                return Lookup((), "ambiguous" if known else "unknown", found)
            canonical = known[0]
        else:
            canonical = found.candidates[0]
        return Lookup((_key(canonical), _key(product_of(canonical) + "-*")), "ok", found)

    def lookup_keys(self, code: str | None) -> tuple[str, ...]:
        return self.lookup(code).keys


EMPTY_DIRECTORY = NdcDirectory()
