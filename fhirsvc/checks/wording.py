"""How cards are worded: the one place that turns a check's facts into the text a prescriber reads.

The style (docs/card-style.md): the card speaks to the prescriber about the patient, in clinical language.
A summary (< 140 characters) says what was found and why it matters and stands alone. The detail says what
was found (values, units, dates, named as the chart names them), why it matters in one clause, and what to
do; the monograph is quoted only as a marked quotation (a ``>`` line) with its section. No ``Type/id``
reference, no second person outside a quotation, no patient name.

``TEMPLATES`` holds the wording per check family; ``words(key, **facts)`` fills one. The helpers below name
things from the chart (an order's display shortened, an allergy's substance, a condition's name, a date)
and from the knowledge (a value set's member name and member labels, a warning's sentences). Nothing here
names a drug: group names and labels come from the knowledge's value sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from fhirsvc.canonical import EXT_MEMBER_NAME
from fhirsvc.checks.reading.conditions import allergy_concepts
from fhirsvc.escaping import markdown_text, plain_text
from fhirsvc.fhirtypes import concept_text
from fhirsvc.knowledge.store import Knowledge
from fhirsvc.terminology import code_key, codings, normalize_name

Resource = Mapping[str, Any]
NAME_MAX = 44  # an order's display longer than this is shortened
SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|you're|you'll|you've|you'd)\b", re.IGNORECASE)
_BRAND = re.compile(r"^(?P<core>.*?)\s*(?P<brand>\[[^\[\]]+\])\s*$")
# where the strength of an RxNorm-style display begins: a number followed by a unit ("100 MG", "0.67 ML")
_STRENGTH = re.compile(r"\s\d[\d.,/]*\s*(?:MG|ML|MCG|UNT|UNITS?|IU|G|L|%|mg|mL|ml|mcg|g|units?)\b.*$")
# where the dose form of a display begins (RxNorm dose form words), dropped when the name is still too long
_DOSE_FORM = re.compile(r"\s(?:Oral|Injectable|Injection|Prefilled|Auto-Injector|Pen|Solution|Suspension|Capsule|"
                        r"Tablet|Syringe|Powder|Kit|Nasal|Topical|Subcutaneous|Intramuscular)\b.*$", re.IGNORECASE)

# --- the templates, per check family ------------------------------------------------------------------
# Each key: (summary, detail). Fields in braces are facts the check gives; ``{quote}`` is a quotation line
# (``quote()``) or empty. A detail's lines are joined with newlines; empty lines are dropped.

TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    # allergy (#1, #2)
    "allergy.contraindicated": (
        "{Drug} is contraindicated: allergy to {allergen} recorded",
        ("Active allergy on the allergy list: **{allergen}**{recorded}.",
         "{Drug} is contraindicated: {reason}. Cancel the {order} order.",
         "{quote}")),
    "allergy.unable": (
        "Unable to check allergies for {drug}: allergy list unavailable",
        ("The allergy list could not be retrieved.",
         "{Drug} is contraindicated in case of {reasons}: confirm the patient has neither before signing.",
         "{quote}")),
    "latex.found": (
        "Latex allergy recorded: {drug} latex warning applies",
        ("{List}: **{what}**{recorded}.",
         "Review the latex warning with the patient before the first dose.",
         "{quote}")),
    "latex.unable": (
        "Unable to check latex allergy for {drug}: allergy list unavailable",
        ("The allergy list could not be retrieved: ask about a latex allergy before signing.", "{quote}")),
    # interactions, forward (#3, #4) and reverse (#19-#21)
    "interaction.forward": (
        "{Group_one} {state} with this {drug} order: {other}",
        ("**{other}** ({where}) is {a_member}.",
         "{relation} {todo}",
         "{quote}")),
    "interaction.current": (
        "{Group_one} {state} with this {drug} order: {other}",
        ("**{other}** is current therapy ({where}): {a_member}.",
         "{relation} {todo}",
         "{quote}")),
    "interaction.reverse": (
        "{Group_one} ordered during {drug} therapy: {order}",
        ("**{order}** is {a_member}. {Drug} on record: **{record}** ({where}).",
         "{relation} {todo}",
         "{quote}")),
    "interaction.unable": (
        "Unable to check {drug} with {group}: medication list unavailable",
        ("The medication list could not be retrieved, so current {group} could not be looked for.",
         "Check the medication list for {group} before signing.",
         "{quote}")),
    "interaction.reverse_unable": (
        "Unable to check {order} against {drug}: medication list unavailable",
        ("The medication list could not be retrieved, so whether the patient takes {drug} is unknown.",
         "Confirm that the patient takes no {drug} before signing this {group_one}.",
         "{quote}")),
    "interaction.washout": (
        "{Group_one} {ago} days after {drug} stopped ({ended}): wait {span}",
        ("**{order}** is {a_member}. {Drug} on record: **{record}**, ended on **{ended}**, {ago} days ago.",
         "{Group} are not advised until {span} after {drug} stops ({span}: {days} days from the last day of "
         "treatment). Defer this order to {after} or later, or cancel it.",
         "{quote}")),
    "interaction.washout_unknown": (
        "Unable to check {order}: {drug} stopped, end date unknown",
        ("{Drug} on record: **{record}**, {status} with no end date, so the {span} after stopping cannot be "
         "counted.",
         "Confirm when {drug} was last given before signing this {group_one}.",
         "{quote}")),
    # duplicate therapy (#5)
    "duplicate.found": (
        "{Drug} already ordered: {other} ({where})",
        ("Another {drug} order exists: **{other}** ({where}).",
         "Two current orders risk a double dose. Cancel one of them.",
         "{quote}")),
    "duplicate.unable": (
        "Unable to check for duplicate {drug} orders: medication list unavailable",
        ("The medication list could not be retrieved, so a current {drug} order could not be looked for.",
         "Check the medication list for {drug} before signing.")),
    # dose (#6-#8, unreadable dose)
    "dose.unreadable": (
        "Unable to check dose of {drug}: {problem}",
        ("The daily dose could not be computed: {problem} (ordered dose: {dose}).",
         "Doses are read in {accepted} with a structured frequency (a repeat or a timing code such as QD, "
         "BID, QOD). Check the dose against the monograph.")),
    "dose.high": (
        "{Drug} {daily} mg/day exceeds the recommended {limit} mg/day",
        ("This order gives **{daily} mg per day**{ranged} ({dose}, {frequency}: {each} mg \u00d7 {times} per day).",
         "The recommended dose is **{limit} mg per day**. Reduce the dose or the frequency.",
         "{quote}")),
    "dose.weight_unable": (
        "Unable to check {drug} dose for weight: {problem}",
        ("The {indication} dose is based on body weight (at most {limit} mg/kg per day); {reason}.",
         "Weigh the patient and check the dose.")),
    "dose.weight_observations_unable": (
        "Unable to check {drug} dose for weight: observations unavailable",
        ("The {indication} dose is based on body weight (at most {limit} mg/kg per day), but the "
         "observations could not be retrieved.", "Check the dose against a current body weight.")),
    "dose.weight_high": (
        "{Drug} {per_kg} mg/kg/day exceeds the maximum {limit} mg/kg/day ({weight} kg, {weighed})",
        ("This order gives **{daily} mg per day**{ranged} ({dose}, {frequency}) for a body weight of "
         "**{weight} kg** ({weighed}): **{per_kg} mg/kg per day**.",
         "The maximum is {limit} mg/kg per day. Reduce the dose to at most {ceiling} mg per day.",
         "{quote}")),
    "dose.weight_low": (
        "{Drug} {per_kg} mg/kg/day is below the {low}-{high} mg/kg/day starting dose ({weight} kg)",
        ("This order gives **{least} mg per day**{ranged} for a body weight of **{weight} kg** ({weighed}): "
         "**{per_kg} mg/kg per day**.",
         "The starting dose is {low}-{high} mg/kg per day ({start_low}-{start_high} mg per day at this "
         "weight). Confirm the dose is intended.",
         "{quote}")),
    # kidney function (#9)
    "renal.found": (
        "Severe kidney disease ({why}): {drug} {every} is advised",
        ("{found} This order is {ordered}.",
         "In severe kidney disease {drug} is given {every} instead of every day. Change the frequency to {every} "
         "(same dose).",
         "{quote}")),
    "renal.unable": (
        "Unable to check {drug} dose for kidney function: {brief}",
        ("{Why}.",
         "In severe kidney disease{threshold} {drug} is given {every}. {todo}")),
    # route (#18)
    "route.found": (
        "Route {ordered} ordered; {drug} route: {intended}",
        ("This order's route is **{ordered}**. The intended route of {drug}: {intended}.",
         "Correct the route before signing.")),
    # age (#10, #11)
    "age.unable": (
        "Unable to check age for {drug}: {why}",
        ("The patient's age could not be determined ({why}). {Rule}", "{quote}")),
    "age.child": (
        "Patient is {age} years old: {drug} dosing is for ages {bound}{exempt}",
        ("The patient is **{age} years** old{born}; the fixed {drug} dose applies to ages {bound}.",
         "{Statement}Confirm the indication before signing.",
         "{quote}")),
    "age.senior": (
        "Patient is {age} years old: {risk}",
        ("The patient is **{age} years** old ({threshold} or older): {risk}.",
         "Monitor for infection and check kidney function.",
         "{quote}")),
    # warnings about the patient's conditions and results (#12, #13, #15, #16)
    "warning.found": (
        "{Found}: {drug} warning on {warning}",
        ("{Evidence}",
         "{Drug} carries a warning on {warning_full}. {todo}",
         "{quote}")),
    "warning.unable": (
        "Unable to check {what} for {drug}: {problem}",
        ("{Reason}", "{todo}", "{quote}")),
    # monitoring (#14)
    "monitoring.due": (
        "{Label} due for {drug} ({stage}; {last})",
        ("{Title}: a result within **{window} days** is due ({stage_full}; {rule}); {last}.{also}",
         "Schedule: {schedule}.")),
    "monitoring.unable": (
        "Unable to check blood count schedule for {drug}: start of therapy unknown",
        ("A current {drug} order exists (**{record}**) but its start date is not recorded, so the monitoring "
         "schedule could not be applied.", "Schedule: {schedule}.")),
    # patient-view reminders (monitoring.py): the same schedule, read between orders
    "monitoring.overdue": (
        "{Label} overdue for {drug} ({last}; {interval} in this phase)",
        ("{Title}: this course of {drug} started on {started} ({months} months ago), so a result is due {interval} "
         "(within **{window} days**); {last}.{also}",
         "Schedule: {schedule}.")),
    "monitoring.baseline": (
        "{Label} never measured for a patient on {drug}",
        ("{Title}: no result is recorded at any date, and {drug} is current.",
         "Order the test.",
         "{quote}")),
    "monitoring.therapy_unknown": (
        "Unable to check {drug} monitoring: medication list unavailable, therapy unknown",
        ("The medication list could not be retrieved, so whether the patient is on {drug} could not be "
         "determined: {checks} were not checked.",
         "Review the medication list in the chart.")),
    "monitoring.start_unknown": (
        "Unable to check the monitoring schedule for {drug}: start of therapy unknown",
        ("A current {drug} order exists (**{record}**) but its start date is not recorded, so the monitoring "
         "schedule could not be applied.", "Schedule: {schedule}.")),
    # indication (#17)
    "indication.none": (
        "No indication for {drug} recorded (used for {short})",
        ("Neither the problem list nor the order's reason records an indication of {drug}.",
         "{Drug} is used for: {names}. Record the indication with the order.")),
    "indication.prior": (
        "{indication} recorded, but no earlier {prior} in the medication list",
        ("Recorded indication: **{found}**. No {prior_full} in the medication list (any status).",
         "{Drug} is {relation}. Confirm earlier therapy before signing.")),
    # missing data, any family
    "unavailable": (
        "Unable to check {what} for {drug}: {data} unavailable",
        ("The {data} could not be retrieved, so {what} could not be checked.", "{advice}")),
    "unavailable.key": (
        "Unable to check {count} {drug} checks: {data} unavailable",
        ("The {data} could not be retrieved: {checks} {were} not checked.",
         "Review them in the chart.")),
    "unavailable.key_one": (
        "Unable to check {checks} for {drug}: {data} unavailable",
        ("The {data} could not be retrieved: {checks} {were} not checked.",
         "Review it in the chart.")),
    "failed": (
        "Unable to check {what} for {drug}: the check failed",
        ("The {what} check could not be completed for this order because of an internal error.",
         "Review the order against the monograph.")),
}

# What to do when kidney function is unknown (#9), by therapy state: a new course, or a patient already on the drug.
KIDNEY_TEST = {
    "new": "Order a kidney function test before starting {drug}.",
    "current": "{Drug} is already being given ({where}): order a kidney function test and review the frequency.",
}

# What to do, per warning family (the ``todo`` of ``warning.found``).
ADVICE: dict[str, str] = {
    "infection": "Assess the infection before starting or continuing, and monitor for signs of infection.",
    "neutropenia": "Review the neutrophil count before starting or continuing, and monitor for infection.",
    "pregnancy": "Weigh benefit and risk with the patient and document the decision.",
    "breastfeeding": "Discuss breastfeeding with the patient before starting.",
}


class Markdown(str):
    """A fact that is Markdown already (a quotation line, a sentence with bold values): put into a detail as it
    is. Whatever it holds from the chart was escaped where it was built (``markdown_text``)."""


def markdown(template: str, **parts: Any) -> Markdown:
    """A fact in Markdown: ``template`` (the service's own markup, e.g. ``**{name}**``) filled with the parts,
    each text part escaped as literal Markdown."""
    return Markdown(template.format(**{k: markdown_text(v) if isinstance(v, str) else v for k, v in parts.items()}))


def words(key: str, **facts: Any) -> tuple[str, str]:
    """The (summary, detail) of a template filled with the facts. A fact ``x`` is also given as ``X``
    (first letter upper-cased), for the start of a sentence.

    This is where text from the chart (an order's or a condition's name, a status, a date) enters a card, so
    every text fact is escaped here: as plain text for the summary, as literal Markdown for the detail
    (``fhirsvc/escaping.py``), unless it is ``Markdown`` already."""
    summary, detail = TEMPLATES[key]
    detail_facts = _Facts(facts, markdown_text)
    lines = [line.format_map(detail_facts) for line in detail]
    return summary.format_map(_Facts(facts, plain_text)), "\n".join(line for line in lines if line.strip())


class _Facts(dict):
    """The facts as a template reads them, each escaped when it is read (only the ones a template names):
    ``X`` is fact ``x`` with its first letter upper-cased; a text through ``escape``, except a ``Markdown``
    fact in the detail, put as it is."""

    def __init__(self, facts: Mapping[str, Any], escape: Any):
        super().__init__()
        self.facts, self.escape = facts, escape

    def __missing__(self, key: str) -> Any:
        if key in self.facts:
            value = self.facts[key]
        else:
            value = self.facts.get(key[:1].lower() + key[1:])
            if not isinstance(value, str):
                raise KeyError(key)
            value = (Markdown if isinstance(value, Markdown) else str)(sentence(value))
        if isinstance(value, str) and not (isinstance(value, Markdown) and self.escape is markdown_text):
            value = self.escape(value)
        self[key] = value
        return value


def sentence(text: str) -> str:
    """The text with its first letter upper-cased."""
    return text[:1].upper() + text[1:]


def lower_first(text: str) -> str:
    """``Live vaccines`` -> ``live vaccines`` (an acronym such as ``TNF inhibitors`` stays)."""
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def joined(names: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def article(noun: str) -> str:
    """``a live vaccine``, ``an oral vaccine`` (by the first letter of the noun)."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


# --- quotations ---------------------------------------------------------------------------------------

QUOTED_TEXTS = 1024  # monograph texts whose quotable sentences are remembered

def _sentences(text: str) -> list[str]:
    """The prose sentences of a monograph text: its bold heading, list items and lead-ins ending in ':' left
    out."""
    text = re.sub(r"\*\*[^*]+\*\*", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or re.match(r"^(?:[-*]|\d+\.)\s", line):
            continue
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
    return [s for s in out if not s.endswith(":")]


@lru_cache(maxsize=QUOTED_TEXTS)
def quote_sentences(text: str, most: int = 2) -> str:
    """The sentences of a monograph text worth quoting to a prescriber: those that do not address the
    patient (at most ``most``), else the first one. Only the knowledge's texts are quoted, the same ones in every
    call: answers are remembered (the most recent ``QUOTED_TEXTS``)."""
    found = _sentences(text)
    impersonal = [s for s in found if not SECOND_PERSON.search(s)]
    return " ".join(impersonal[:most] or found[:1])


def quote(text: str, section: str) -> Markdown:
    """A marked quotation of the monograph: one ``>`` line with the text in quotation marks and its section."""
    text = " ".join(str(text).split())
    if not text:
        return Markdown("")
    return Markdown(f"> \u201c{text}\u201d \u2014 monograph, {section}" if section
                    else f"> \u201c{text}\u201d \u2014 monograph")


def impersonal(text: str) -> str:
    """The ``;``-separated clauses of a knowledge statement that do not address the patient
    ("Allergy to ...; ask your healthcare provider ..." -> "Allergy to ...")."""
    clauses = [c.strip() for c in str(text).split(";") if c.strip()]
    kept = [c for c in clauses if not SECOND_PERSON.search(c)]
    return "; ".join(kept or clauses[:1])


def brief(text: str) -> str:
    """A statement without its bracketed explanation ("Serious infections (inability ...)" -> "serious
    infections")."""
    return lower_first(str(text).split(" (")[0].strip())


# --- names from the chart -----------------------------------------------------------------------------

def shorten(name: str, limit: int = NAME_MAX) -> str:
    """A medication display shortened for a card: kept whole up to ``limit`` characters; else the strength
    and dose form dropped, the brand in brackets kept ("Typhoid Vaccine Live Ty21a 2 billion UNT Oral Capsule
    [Vivotif]" -> "Typhoid Vaccine Live Ty21a [Vivotif]"), then the dose form if still too long; else cut at a
    word with an ellipsis."""
    name = " ".join(str(name).split())
    if len(name) <= limit:
        return name
    match = _BRAND.match(name)
    core, brand = (match["core"], match["brand"]) if match else (name, "")
    core = _STRENGTH.sub("", core).strip() or core
    room = limit - (len(brand) + 1 if brand else 0)
    if len(core) > room:
        core = _DOSE_FORM.sub("", core).strip() or core
    if len(core) > room:
        core = core[: max(room - 1, 12)].rsplit(" ", 1)[0].rstrip(" ,;:-") + "\u2026"
    return f"{core} {brand}".strip()


def medication_name(concepts: Iterable[Mapping[str, Any]], fallback: str = "") -> str:
    """What the chart calls a medication: the text of its concept, else its first display, shortened."""
    for concept in concepts:
        text = concept_text(concept) if (concept.get("text") or any(c.get("display") for c in codings(concept))) \
            else ""
        if text:
            return shorten(text)
    return fallback


def record_name(record: Resource) -> str:
    """What the chart calls an allergy (its substance), a condition (its name) or an observation."""
    if record.get("resourceType") == "AllergyIntolerance":
        return next((concept_text(c) for c in allergy_concepts(record) if concept_text(c)), "recorded allergy")
    return concept_text(record.get("code")) or "recorded"


def recorded_on(record: Resource) -> str:
    """``, recorded 2026-03-01`` (or onset), from the record's own dates; empty if it has none."""
    for key, word in (("onsetDateTime", "onset"), ("recordedDate", "recorded"), ("authoredOn", "ordered")):
        value = record.get(key)
        if isinstance(value, str) and value[:4].isdigit():
            return f", {word} {value[:10]}"
    return ""


def where(record: Resource, draft: bool) -> str:
    """How a medication record stands: ``also being ordered now`` for a draft; ``active since 2026-04-20``,
    ``on hold``, ``stopped`` for the medication list."""
    if draft:
        return "also being ordered now"
    status = str(record.get("status") or "recorded").replace("-", " ")
    since = record.get("authoredOn")
    return f"{status} since {since[:10]}" if isinstance(since, str) and since[:4].isdigit() else status


# --- names from the knowledge -------------------------------------------------------------------------

def member_name(knowledge: Knowledge, url: str | None, plural: bool = False) -> str:
    """What one member of a value set is called (its ``member-name`` extension: "live vaccine"), else the
    value set's title before any bracket; ``plural``: the title ("live vaccines")."""
    value_set = knowledge.resolve(url) if url else None
    title = lower_first(str((value_set or {}).get("title") or "interacting drugs").split(" (")[0].strip())
    if plural:
        return title
    names = [e.get("valueString") for e in (value_set or {}).get("extension") or ()
             if e.get("url") == EXT_MEMBER_NAME and e.get("valueString")]
    return str(names[0]) if names else title


def member_label(knowledge: Knowledge, url: str | None, concepts: Iterable[Mapping[str, Any]],
                 found_names: Iterable[str] = ()) -> str:
    """Which member of a value set a medication is, as the value set labels it: the display of the member
    whose code the medication has, else of the member named most specifically among ``found_names`` (the
    member names found in its text): the name fewest members share wins ("FluMist Quadrivalent", one
    member's brand, over "influenza vaccine live intranasal", every live nasal vaccine's), then the longest.
    Empty if neither."""
    value_set = knowledge.resolve(url) if url else None
    members = [(include.get("system"), member) for include in ((value_set or {}).get("compose") or {}).get("include")
               or () for member in include.get("concept") or () if member.get("display")]
    keys = {code_key(c.get("system"), c.get("code")) for concept in concepts for c in codings(concept)}
    for system, member in members:
        if code_key(system, member.get("code")) in keys:
            return str(member["display"])
    wanted = {normalize_name(name) for name in found_names if name}
    named: dict[str, list[Mapping[str, Any]]] = {}  # a found name -> the members it names, in order
    for _, member in members:
        names = [member["display"], *(d.get("value") for d in member.get("designation") or () if d.get("value"))]
        for name in dict.fromkeys(normalize_name(str(n)) for n in names) if wanted else ():
            if name in wanted:
                named.setdefault(name, []).append(member)
    if not named:
        return ""
    best = min(named, key=lambda name: (len(named[name]), -len(name)))
    return str(named[best][0]["display"])


def group_with_member(group: str, label: str) -> str:
    """``a live vaccine (typhoid, oral)``; the bare group when the label is empty or repeats it."""
    if not label or normalize_name(label) == normalize_name(group):
        return article(group)
    return f"{article(group)} ({label})"


def interaction_relation(group: str, indicator: str, effect: str, span: str | None, drug: str,
                         reverse: bool = False, current: bool = False) -> tuple[str, str]:
    """What an interaction means and what to do, for the ``interaction.*`` templates: a sentence (with the
    knowledge's effect when it is said without addressing the patient) and the action (``reverse``: the
    judged order is the group member, the drug is on record; ``current``: the other party is current therapy,
    not an order of this call, so it is stopped in the medication list, not cancelled by the card)."""
    effect = "" if not effect or SECOND_PERSON.search(effect) else f": {lower_first(effect.rstrip('.'))}"
    if indicator == "critical":
        during = f"during {drug} therapy and for {span} after it" if span else f"with {drug}"
        todo = ((f"Cancel this order, or defer it until {span} after {drug} is stopped." if span
                 else "Cancel this order.") if reverse else "Cancel one of the orders.")
        return f"{sentence(group)} are contraindicated {during}{effect}.", todo
    return (f"{sentence(group)} and {drug} are not advised together{effect}.",
            f"Review whether both are needed before signing; to switch to {drug}, stop the current one in the "
            "medication list." if current else "Review whether both are needed before signing.")


# --- suggestions --------------------------------------------------------------------------------------

SUGGESTIONS: dict[str, tuple[str, str]] = {
    "cancel": ("Cancel the {name} order", "Cancel the unsigned order for {name}"),
    "cancel-all": ("Cancel the {count} {group} orders", "Cancel the {count} unsigned {group} orders"),
    "reschedule": ("Change to {every} (same dose)", "Give the same dose {every} ({why})"),
    "order-test": ("Order {test}", "Order {test} ({purpose} monitoring)"),
}


def suggestion_words(key: str, **facts: Any) -> tuple[str, str]:
    """The (label, action description) of a suggestion: plain text, its text facts as ``plain_text``."""
    label, description = SUGGESTIONS[key]
    facts = {k: plain_text(v) if isinstance(v, str) else v for k, v in facts.items()}
    return label.format(**facts), description.format(**facts)


def indication_short(text: str) -> str:
    """An indication's short name: its abbreviation in brackets ("(ABC)") if it has one, else the text before
    any bracket or ``;``."""
    match = re.search(r"\(([A-Z][A-Z0-9-]{1,9})\)", text)
    return match[1] if match else text.split(";")[0].split(" (")[0]
