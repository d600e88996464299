"""Override reasons: the ones offered on warning and critical cards, and the family each reason is counted in.

Both come from the knowledge: the offered reasons are the ValueSet ``cds-override-reasons`` (the service's own
codes, then the clinical selection of HL7's non-adherence reasons of the CDS Hooks 3.0 ballot); the families are
the ConceptMap ``override-reason-families``, which maps each reason, the service's and HL7's (either draft URL of
HL7's code system), to one of the six top-level categories of HL7's non-adherence reasons. Feedback may carry
either; the statistics and the governance view count both in one count per family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fhirsvc.canonical import OFFERED_OVERRIDE_REASONS, OVERRIDE_REASON_FAMILIES
from fhirsvc.knowledge import Knowledge

NO_REASON_FAMILY = "no-reason"  # overridden without a coded reason
OTHER_FAMILY = "other"  # a code the knowledge does not map


@dataclass(frozen=True)
class Families:
    by_coding: Mapping[tuple[str, str], str]  # (system, code) -> family code
    by_code: Mapping[str, str]  # code -> family code, where the code means one family whatever its system
    displays: Mapping[str, str]  # family code -> display

    def of(self, system: str | None, code: str | None) -> str:
        """The family of a reason; ``system`` None: by the code alone (the statistics group by code)."""
        if not code:
            return NO_REASON_FAMILY
        if system is not None:
            return self.by_coding.get((system, code), OTHER_FAMILY)
        return self.by_code.get(code, OTHER_FAMILY)

    def display(self, family: str) -> str:
        return {NO_REASON_FAMILY: "no reason coded", OTHER_FAMILY: "other reason (not mapped)"}.get(
            family, self.displays.get(family, family))


def override_reasons(knowledge: Knowledge) -> list[dict[str, str]]:
    """The override reasons offered on warning and critical cards (system, code, display), in the ValueSet's order."""
    return [dict(reason) for reason in knowledge.derived("cds.override_reasons", _override_reasons)]


def _override_reasons(knowledge: Knowledge) -> tuple[dict[str, str], ...]:
    offered = knowledge.resolve(OFFERED_OVERRIDE_REASONS) or {}
    reasons: list[dict[str, str]] = []
    for include in (offered.get("compose") or {}).get("include") or ():
        system = include["system"]
        concepts = include.get("concept") or (knowledge.resolve(system) or {}).get("concept") or ()
        reasons.extend({"system": system, "code": c["code"], "display": c["display"]} for c in concepts)
    return tuple(reasons)


def families(knowledge: Knowledge) -> Families:
    return knowledge.derived("cds.override_reason_families", _families)


def _families(knowledge: Knowledge) -> Families:
    concept_map = knowledge.resolve(OVERRIDE_REASON_FAMILIES) or {}
    by_coding: dict[tuple[str, str], str] = {}
    codes: dict[str, set[str]] = {}
    displays: dict[str, str] = {}
    for group in concept_map.get("group") or ():
        for element in group.get("element") or ():
            (target,) = element["target"]
            by_coding[(group["source"], element["code"])] = target["code"]
            codes.setdefault(element["code"], set()).add(target["code"])
            displays[target["code"]] = target["display"]
    by_code = {code: next(iter(found)) for code, found in codes.items() if len(found) == 1}
    return Families(by_coding, by_code, displays)


def family_counts(knowledge: Knowledge, reasons: Mapping[tuple[str | None, str | None], int]) -> dict[str, int]:
    """Override counts per family, from counts per (system, code) (system None: by code alone)."""
    found = families(knowledge)
    counts: dict[str, int] = {}
    for (system, code), count in reasons.items():
        family = found.of(system, code)
        counts[family] = counts.get(family, 0) + count
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
