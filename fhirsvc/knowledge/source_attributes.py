"""The source attributes of a rule (ONC HTI-1, 45 CFR 170.315(b)(11)(iv)(A)), read from the knowledge.

HTI-1 lists, for an evidence-based decision support intervention: (1) the bibliographic citation of the
intervention (clinical research or guideline); (2) its developer (who translated it into the rule); (3) the funding
source of its development; (4) its release and, if applicable, revision dates; (5)-(13) its use of race,
ethnicity, language, sexual orientation, gender identity, sex, date of birth, social determinants of health data and
health status assessments data. Here each is read from one place:

- ``bibliographicCitation``: the monograph the registry is derived from (its ``DocumentReference``: authors, title,
  medical review date and reviewer) at the rule's source section, then the rule's own ``citation`` entries of the
  ``source-attributes`` extension (the US label, where the contract's source column says the rule follows it);
- ``developer``: the registry's ``publisher``; ``revisionDate``: the registry's ``date``;
- ``fundingSource``, ``releaseDate``: the registry's ``source-attributes`` extension;
- ``dataElementsUsed``: each of the nine data elements (``CodeSystem/dsi-source-data-elements``), used when the
  rule's action lists it (``dataElement``), with how the rule reads them (``dataElementUse``).

Never invented: an attribute the knowledge does not state is answered ``{"value": "not stated", "reason": ...}``,
the reason from the extension's ``notStated`` entries, else that the knowledge does not record it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhirsvc.canonical import DSI_DATA_ELEMENTS as DATA_ELEMENTS
from fhirsvc.canonical import EXT_SOURCE_ATTRIBUTES
from fhirsvc.knowledge.store import Knowledge

NOT_STATED = "not stated"


def _entries(element: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The sub-extensions of an element's source-attributes extension."""
    return [sub for ext in (element or {}).get("extension") or () if ext.get("url") == EXT_SOURCE_ATTRIBUTES
            for sub in ext.get("extension") or ()]


def _values(entries: list[Mapping[str, Any]], name: str) -> list[Any]:
    return [value for e in entries if e.get("url") == name for key, value in e.items() if key.startswith("value")]


def _not_stated(entries: list[Mapping[str, Any]], attribute: str) -> dict[str, str]:
    reasons = [_values(list(e.get("extension") or ()), "reason") for e in entries if e.get("url") == "notStated"
               and _values(list(e.get("extension") or ()), "attribute") == [attribute]]
    reason = next((r[0] for r in reasons if r), "the knowledge does not record it")
    return {"value": NOT_STATED, "reason": str(reason)}


def _stated(value: Any, entries: list[Mapping[str, Any]], attribute: str) -> dict[str, Any]:
    return {"value": value} if value not in (None, "", []) else _not_stated(entries, attribute)


def _monograph_citation(knowledge: Knowledge, registry: Mapping[str, Any], section: str) -> dict[str, str] | None:
    """The monograph the registry derives from, cited at ``section``: authors, title, medical review."""
    reference = next(((a.get("resourceReference") or {}).get("reference") for a in registry.get("relatedArtifact") or ()
                      if a.get("type") == "derived-from"), None)
    document = knowledge.resolve(str(reference)) if reference else None
    if document is None:
        return None
    authors = "; ".join(a["display"] for a in document.get("author") or () if a.get("display"))
    title = next((c["attachment"]["title"] for c in document.get("content") or ()
                  if (c.get("attachment") or {}).get("title")), "")
    review = next((a for a in document.get("attester") or () if a.get("time")), None)
    parts = [f"{authors}." if authors else "", f"{title}." if title else ""]
    if review:
        party = (review.get("party") or {}).get("display")
        parts.append(f"Medically reviewed {review['time']}" + (f" by {party}." if party else "."))
    if section:
        parts.append(f"Section: {section}.")
    return {"text": " ".join(p for p in parts if p), "reference": str(reference),
            **({"reviewDate": str(review["time"])} if review else {})}


def source_attributes(knowledge: Knowledge, registry_reference: str, action_id: str, section: str) -> dict[str, Any]:
    """The source attributes of the rule ``action_id`` of the registry ``registry_reference`` (``PlanDefinition/id``),
    whose monograph section is ``section``: every HTI-1 attribute, stated or ``not stated`` with the reason."""
    registry = knowledge.resolve(registry_reference) or {}
    action: Mapping[str, Any] = next((a for a in registry.get("action") or () if a.get("id") == action_id), {})
    common, own = _entries(registry), _entries(action)
    entries = [*own, *common]  # the rule's own entries first: a rule may state what the registry does not
    citations = [c for c in [_monograph_citation(knowledge, registry, section)] if c]
    citations += [{"text": str(text)} for text in _values(own, "citation")]
    used = set(_values(own, "dataElement"))
    elements = (knowledge.resolve(DATA_ELEMENTS) or {}).get("concept") or ()
    use = next(iter(_values(own, "dataElementUse")), "")
    return {
        "bibliographicCitation": _stated(citations, entries, "bibliographicCitation"),
        "developer": _stated(registry.get("publisher"), entries, "developer"),
        "fundingSource": _stated(next(iter(_values(entries, "fundingSource")), None), entries, "fundingSource"),
        "releaseDate": _stated(next(iter(_values(entries, "releaseDate")), None), entries, "releaseDate"),
        "revisionDate": _stated(registry.get("date"), entries, "revisionDate"),
        "dataElementsUsed": {
            "value": [{"code": c["code"], "display": c["display"], "used": c["code"] in used} for c in elements],
            **({"how": use} if use else {}),
        },
    }
