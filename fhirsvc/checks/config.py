"""The rules' configuration: the contract-level constants that are not facts about one drug.

Everything a rule knows about a *drug* (its codes and names, doses and limits, the renal threshold, the
age limits of its dosing guidelines, its interactions and washout periods, its warnings, its monitoring
schedule) is read from the FHIR knowledge (``fhirsvc/knowledge/data/``). What stays here is what the service
contract (``docs/cds-checks.md``, "the contract" below) fixes for every drug: the card topics,
the freshness windows of patient data, and which clinical-concept value sets of the knowledge each rule reads.
The clinical thresholds the monograph does not give as numbers are knowledge too (the rule registry's
``rule-threshold`` extensions, read through ``Job.threshold``). Each constant names its contract source.

The value sets named here are the knowledge's *clinical concept* groups (latex allergy, infections,
neutropenia, pregnancy, ...), shared by every drug: a rule that reads one of them runs for a drug only if
that drug's own knowledge points to it (a warning ClinicalUseDefinition whose ``warning.code`` carries
the ``value-set`` extension with that URL, an interaction whose interactant carries it, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from fhirsvc.canonical import value_set_url
from fhirsvc.checks.reading.windows import Window

# --- Card topics -------------------------------------------------------------------------------------
# Contract "Service contract": source.topic is a Coding from v3-ActCode (the FHIR DetectedIssue codes).
# Codes and displays: HL7 v3-ActCode (terminology.hl7.org), the code system of the FHIR
# DetectedIssueCategory value set http://hl7.org/fhir/ValueSet/detectedissue-category (defined in HL7/fhir
# source/detectedissue/valueset-detectedissue-category.xml), as listed in the hl7.fhir.r4b.core 4.3.0 package
# (the value set's expansion and its v3-ActCode code table).
TOPICS: dict[str, str] = {
    "ALGY": "Allergy Alert",
    "DRG": "Drug Interaction Alert",
    "DUPTHPY": "Duplicate Therapy Alert",
    "DOSE": "Dosage problem",
    "DOSEH": "High Dose Alert",
    "DOSEHINDW": "High Dose for Weight Alert",
    "DOSELINDW": "Low Dose for Weight Alert",
    "DOSECOND": "dosage-condition alert",
    "AGE": "Age Alert",
    "GEALRT": "geriatric alert",
    "COND": "Condition Alert",
    "LAB": "Lab Alert",
    "PREG": "Pregnancy Alert",
    "LACT": "Lactation Alert",
}

# --- Freshness windows of patient data (contract "Dose arithmetic", checks #12, #14) ------------------
# Measured one way (fhirsvc/checks/reading/windows.py, docs/reading-patient-data.md "Time windows"): whole
# calendar days, inclusive ("within 90 days": a result 90 days old is used, 91 days old is not); the
# 72-hour fever window in exact hours. Each card states the rule it applied.
WEIGHT_MAX_AGE = Window(90, "day", "results")  # "newest body weight ... taken within 90 days"
# Two windows a site may adjust (docs/configuration.md) live in the knowledge, as adjustable settings of their rule in
# the rule registry (``site-setting``: default and allowed range), read through ``Job.window``: #9 "newest of
# creatinine clearance or eGFR within 180 days" and #12 "body temperature >= 38.0 °C in the last 72 h".
KIDNEY_RESULTS = ("kidney-result-max-age-days", "day", "results")  # setting code, window unit, what it selects
FEVER_TEMPERATURES = ("fever-window-hours", "hour", "temperatures")
# #15 reads "the newest pregnancy status": a status older than the knowledge's fixed threshold
# ``pregnancy-status-max-age`` (the longest pregnancy; this service's reading, not the contract's) is not read,
# through ``Job.threshold_window`` (threshold code, what it selects).
PREGNANCY_STATUSES = ("pregnancy-status-max-age", "pregnancy statuses")

# --- Fixed thresholds ------------------------------------------------------------------------------------------
# #11's age, #12's fever and #13's neutrophil count are the knowledge's: fixed thresholds of their rules in the rule
# registry (``rule-threshold``: comparator, UCUM quantity, source), read through ``Job.threshold``; no site
# configuration changes them.

# --- Monograph headings ----------------------------------------------------------------------------------------
# #11 applies to a drug whose monograph has a seniors warning: a warning ClinicalUseDefinition whose
# source-section ends with this heading of the monograph template ("SECTION 3 of 4 > For Seniors").
SENIORS_HEADING = "For Seniors"
CHILDREN_HEADING = "For Children"  # #10: the children warning's text goes into the detail

# --- Clinical-concept value sets each rule reads (see the module docstring) ---------------------------
VS_LATEX_ALLERGY = value_set_url("latex-allergy")  # #2
VS_SERIOUS_INFECTIONS = value_set_url("serious-infections")  # #12
VS_BODY_TEMPERATURE = value_set_url("body-temperature")  # #12 (observation codes)
VS_NEUTROPENIA = value_set_url("neutropenia")  # #13 (conditions)
VS_NEUTROPHIL_COUNT = value_set_url("neutrophil-count")  # #13, #14 (observation codes)
VS_PREGNANCY = value_set_url("pregnancy")  # #15 (conditions)
VS_PREGNANCY_STATUS = value_set_url("pregnancy-status")  # #15 (observation code: pregnancy status)
VS_PREGNANCY_STATUS_PREGNANT = value_set_url("pregnancy-status-pregnant")  # #15 (answer: pregnant)
VS_BREASTFEEDING = value_set_url("breastfeeding")  # #16 (conditions and answers)
VS_BREASTFEEDING_STATUS = value_set_url("breastfeeding-status")  # #16 (observation code)
VS_TNF_INHIBITORS = value_set_url("tnf-inhibitors")  # #3, #21
VS_LIVE_VACCINES = value_set_url("live-vaccines")  # #4, #19, #20
# Codes that are never an active condition whatever their text (personal and family history, screening,
# exposure): every condition check (#9, #12, #13, #15-#17) reads conditions through it.
VS_NOT_ACTIVE_CONDITION = value_set_url("not-an-active-condition")


@dataclass(frozen=True)
class InteractionRule:
    """How an interaction class of the knowledge becomes findings (contract #3, #4, #19-21).

    ``rule``: the drug is ordered and the other one is current (or another draft order);
    ``reverse_rule``: the other one is ordered and the drug is current; ``washout_rule``: the other one
    is ordered and the drug was stopped within the interaction's ``washout-period``.
    ``current_medications``: whether the forward rule also looks at the medication list (#3 does; #4
    looks at the draft orders only). ``reverse_drafts``: whether the reverse rule also counts the drug
    in the same draft Bundle (#19 does; #21 needs it active/on-hold, and a drafted pair is #3's card).
    The three rules are registry keys (``knowledge.rules``: the contract numbers)."""

    rule: str
    indicator: str
    reverse_rule: str
    reverse_indicator: str
    washout_rule: str
    washout_indicator: str
    anchor: str
    current_medications: bool = True
    reverse_drafts: bool = False


INTERACTION_RULES: dict[str, InteractionRule] = {
    VS_TNF_INHIBITORS: InteractionRule(  # #3 warning, #21 warning
        "3", "warning", "21", "warning", "tnf-inhibitor-washout", "warning",
        "interactions"),
    VS_LIVE_VACCINES: InteractionRule(  # #4 critical, #19 critical, #20 warning
        "4", "critical", "19", "critical", "20", "warning",
        "live-vaccines", current_medications=False, reverse_drafts=True),
}


# patient-view (#19 on the medication list): the interaction classes whose members, recorded as due or ordered
# (a MedicationRequest that still stands), get a reminder while the drug is current. Live vaccines: the
# monograph's Vaccines warning applies throughout therapy, and a vaccination is planned between orders.
PATIENT_VIEW_INTERACTION_CLASSES = frozenset({VS_LIVE_VACCINES})


def interaction_rule(value_set: str, cud_id: str) -> InteractionRule:
    """The rule of an interaction class; a class the contract does not name gets warnings (a second
    drug's interactions work without configuration), with rule ids made unique by the CUD id."""
    if value_set in INTERACTION_RULES:
        return INTERACTION_RULES[value_set]
    return InteractionRule(f"interaction:{cud_id}", "warning", f"interaction-reverse:{cud_id}", "warning",
                           f"interaction-washout:{cud_id}", "warning", "interactions")


# --- Monograph page anchors (cards link to /monographs/<drug id>#<anchor>) -----------------------------
# Fixed anchors used by the rules: summary, kidney-disease, interactions, live-vaccines, warnings, pregnancy,
# breastfeeding, seniors, children, allergies, monitoring; dosing sections get dosing_anchor().


def dosing_anchor(guideline_id: str | None) -> str:
    """The anchor of a dosing guideline's section: ``dosing-`` + the first segment of its id, which names
    the indication (``<indication>-adult`` -> ``dosing-<indication>``); a convention shared with the page."""
    if not guideline_id:
        return "summary"
    return "dosing-" + guideline_id.split("-", 1)[0]
