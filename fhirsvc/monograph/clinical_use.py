"""How the page reads ClinicalUseDefinitions: their titles, topics and bodies, the sections they belong to, the
interactions and wash-out periods, and the current-label notes beside a statement."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fhirsvc.canonical import CVX, EXT_LABEL_DIFFERENCE, EXT_SOURCE_SECTION, EXT_VALUE_SET, EXT_WASHOUT
from fhirsvc.fhirtypes import concept_text
from fhirsvc.monograph.blocks import Block, LabelNote, Paragraph, SourceRef, source_ref
from fhirsvc.monograph.markup import markdown_blocks, plain_text
from fhirsvc.monograph.text import reference_display, signed_quantity_text, value_text

# Which section a warning or contraindication belongs to, read from its code, category and condition
# (first match wins; anything else goes to "warnings"). Generic clinical words, no drug names.
CUD_TOPICS = (
    ("breastfeeding", re.compile(r"breast|nursing|lactat", re.I)),
    ("pregnancy", re.compile(r"pregnan", re.I)),
    ("seniors", re.compile(r"senior|elderly|geriatric|older adult|age (?:over|above|of|≥|>=) ?[6-9]\d", re.I)),
    ("children", re.compile(r"child|pediatric|paediatric|infant|adolescen", re.I)),
    ("allergies", re.compile(r"allerg|latex|hypersensitiv", re.I)),
    ("side-effects", re.compile(r"side effect", re.I)),
    ("monitoring", re.compile(r"\btests?\b|\bcounts?\b|monitor", re.I)),
    ("kidney-disease", re.compile(r"kidney|renal|creatinine|\be?gfr\b", re.I)),
)


KIDNEY = CUD_TOPICS[-1][1]


# Which section a patient-information (Composition) section belongs to, by its title.
PATIENT_TOPICS = (
    ("side-effects", re.compile(r"side effect", re.I)),
    ("interactions", re.compile(r"interact", re.I)),
    ("storage", re.compile(r"storage|\bstore|refrigerat", re.I)),
    ("travel", re.compile(r"travel", re.I)),
    ("monitoring", re.compile(r"monitor|blood test", re.I)),
    ("self-injection", re.compile(r"inject|suppl|miss|dose|taking|take it|cost|insurance|how to take", re.I)),
)


DRUG_CHARACTERISTIC_TOPICS = (
    ("how-it-works", re.compile(r"mechanism|how it works", re.I)),
    ("allergies", re.compile(r"allerg|latex", re.I)),
)


TRAVEL = re.compile(r"travel", re.I)


def source_sections(element: Mapping[str, Any]) -> list[str]:
    return [str(ext.get("valueString")) for ext in element.get("extension") or ()
            if ext.get("url") == EXT_SOURCE_SECTION and ext.get("valueString")]


def concept_value_sets(concept: Mapping[str, Any] | None) -> list[str]:
    return [ext.get("valueCanonical") for ext in (concept or {}).get("extension") or ()
            if ext.get("url") == EXT_VALUE_SET and ext.get("valueCanonical")]


def is_vaccine_set(value_set: Mapping[str, Any]) -> bool:
    return any(include.get("system") == CVX for include in (value_set.get("compose") or {}).get("include") or ())


def interactant_text(interactant: Mapping[str, Any]) -> str:
    if interactant.get("itemCodeableConcept"):
        return concept_text(interactant["itemCodeableConcept"])
    return reference_display(interactant.get("itemReference"))


def washout_text(interaction: Mapping[str, Any]) -> str | None:
    for ext in interaction.get("extension") or ():
        if ext.get("url") == EXT_WASHOUT:
            for key in ("valueDuration", "valueQuantity"):
                if ext.get(key):
                    return signed_quantity_text(ext[key])
    return None


def short_name(cud_id: str, drug_id: str) -> str:
    """The short name of an indication from its CUD id: the part after ``indication-`` (``<drug>-indication-ra``
    -> ``ra``), else the id without the drug's prefix."""
    match = re.search(r"(?:^|-)indication-(.+)$", cud_id)
    if match:
        return match.group(1)
    return cud_id.removeprefix(f"{drug_id}-") or cud_id


def indication_name(cud: Mapping[str, Any]) -> str:
    indication = cud.get("indication") or {}
    return concept_text((indication.get("diseaseSymptomProcedure") or {}).get("concept")) or cud["id"]


def cud_title(cud: Mapping[str, Any]) -> str:
    """A short title of a ClinicalUseDefinition (its code, condition or interactant)."""
    kind = cud.get("type")
    if kind == "warning":
        return concept_text((cud.get("warning") or {}).get("code")) or "Warning"
    if kind == "contraindication":
        situation = (cud.get("contraindication") or {}).get("diseaseSymptomProcedure") or {}
        condition = concept_text(situation.get("concept"))
        return f"Do not use: {condition}" if condition else "Contraindication"
    if kind == "indication":
        return indication_name(cud)
    if kind == "interaction":
        items = [interactant_text(i) for i in (cud.get("interaction") or {}).get("interactant") or ()]
        return "Interaction: " + "; ".join(filter(None, items[1:] or items))
    if kind == "undesirable-effect":
        return concept_text(((cud.get("undesirableEffect") or {}).get("symptomConditionEffect") or {}).get("concept"))
    return str(cud.get("id", ""))


def cud_topic_text(cud: Mapping[str, Any]) -> str:
    """The words that decide a warning's or contraindication's section: title, category codes, code displays."""
    words = [cud_title(cud)]
    for category in cud.get("category") or ():
        words += [str(c.get("code") or "") for c in category.get("coding") or ()]
    concepts = [(cud.get("warning") or {}).get("code"),
                ((cud.get("contraindication") or {}).get("diseaseSymptomProcedure") or {}).get("concept")]
    words += [str(c.get("display") or "") for concept in concepts if concept for c in concept.get("coding") or ()]
    return " ".join(words)


def cud_body(cud: Mapping[str, Any]) -> list[Block]:
    if cud.get("type") == "warning":
        description = (cud.get("warning") or {}).get("description") or ""
        return markdown_blocks(re.sub(r"^\s*\*\*[^*\n]{1,80}\*\*\s*", "", description)) if description else []
    contraindication = cud.get("contraindication") or {}
    blocks: list[Block] = []
    for comorbidity in contraindication.get("comorbidity") or ():
        blocks.append(Paragraph(concept_text(comorbidity), label="With"))
    for other in contraindication.get("otherTherapy") or ():
        blocks.append(Paragraph(concept_text((other.get("treatment") or {}).get("concept")), label="With"))
    return blocks


def statement_text(element: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    """What the knowledge states where a label difference sits."""
    if element is resource and resource.get("resourceType") == "ClinicalUseDefinition":
        kind = resource.get("type")
        if kind == "warning" and (resource.get("warning") or {}).get("description"):
            return plain_text(resource["warning"]["description"])
        if kind == "indication":
            effect = concept_text(((resource.get("indication") or {}).get("intendedEffect") or {}).get("concept"))
            return "; ".join(filter(None, [indication_name(resource), effect]))
        if kind == "interaction":
            interaction = resource.get("interaction") or {}
            effect = concept_text((interaction.get("effect") or {}).get("concept"))
            management = [concept_text(m) for m in interaction.get("management") or ()]
            return " ".join(filter(None, [effect and f"{effect}.", *management]))
        return cud_title(resource)
    for key in ("valueString", "valueMarkdown", "text", "description", "name", "title"):
        if isinstance(element.get(key), str):
            return plain_text(element[key])
    return value_text(element) or concept_text(element.get("type"))


def statement_topic(element: Mapping[str, Any]) -> str:
    return concept_text(element.get("type")) or str(element.get("id") or element.get("title") or "")


def label_note(ext: Mapping[str, Any], topic: str, monograph: str, source: SourceRef) -> LabelNote:
    parts = {sub.get("url"): sub for sub in ext.get("extension") or ()}
    text = parts.get("text") or {}
    label = plain_text(str(text.get("valueMarkdown") or text.get("valueString") or ""))
    date = (parts.get("date") or {}).get("valueDate")
    url = (parts.get("source") or {}).get("valueUri") or (parts.get("source") or {}).get("valueUrl")
    safe = url if isinstance(url, str) and re.match(r"https?://", url) else None
    return LabelNote(topic, monograph, label, date, safe, source)


def all_label_notes(resource: Mapping[str, Any], mk_ref: str) -> Iterator[LabelNote]:
    """Every label difference anywhere in a resource."""
    for element in _walk(resource):
        for ext in element.get("extension") or ():
            if ext.get("url") == EXT_LABEL_DIFFERENCE:
                if element is not resource:
                    topic = statement_topic(element)
                elif resource.get("resourceType") == "ClinicalUseDefinition":
                    topic = cud_title(resource)
                else:
                    topic = str(resource.get("title") or resource["id"])
                yield label_note(ext, topic or resource["id"], statement_text(element, resource), source_ref(resource))


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for key, item in value.items():
            if key != "extension":
                yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


def topic_of(text: str, topics: Sequence[tuple[str, re.Pattern[str]]]) -> str | None:
    return next((anchor for anchor, pattern in topics if pattern.search(text)), None)
