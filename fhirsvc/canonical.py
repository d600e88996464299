"""Every URL that names a thing: the service's canonical base and what is defined under it (extensions, code
systems, the search parameter, the operation), and the code systems of others the service reads or writes.

Written once, here; every module reads them from this one (``fhirsvc.terminology`` re-exports the code
systems for the modules that read codings). This module imports nothing of the package.
"""

from __future__ import annotations

# --- The service's own canonical base (fhirsvc/knowledge/data: every url starts with it) ---------------------------
CANONICAL = "https://fhirsvc.org/fhir/"
STRUCTURE_DEFINITION = CANONICAL + "StructureDefinition/"

# The knowledge's extensions (fhirsvc/knowledge/data/StructureDefinition-*.json)
EXT_VALUE_SET = STRUCTURE_DEFINITION + "value-set"  # what an action's or a characteristic's code stands for
EXT_SOURCE_SECTION = STRUCTURE_DEFINITION + "source-section"  # the monograph section a statement comes from
EXT_WASHOUT = STRUCTURE_DEFINITION + "washout-period"
EXT_LABEL_DIFFERENCE = STRUCTURE_DEFINITION + "label-difference"
EXT_MEMBER_NAME = STRUCTURE_DEFINITION + "member-name"  # what one member of a value set is called
EXT_SITE_SETTING = STRUCTURE_DEFINITION + "site-setting"  # a rule's number a site configuration may adjust
EXT_RULE_THRESHOLD = STRUCTURE_DEFINITION + "rule-threshold"  # a rule's fixed threshold (no site may change it)
EXT_NEVER_WEAKEN = STRUCTURE_DEFINITION + "never-weaken"  # a rule a site may weaken only with a reason
EXT_RULE = STRUCTURE_DEFINITION + "rule"  # on a DetectedIssue: the registry id of the rule that raised it
EXT_CDS_INDICATOR = STRUCTURE_DEFINITION + "cds-indicator"  # the default card indicator of a registry rule
EXT_RENEWAL_GAP = STRUCTURE_DEFINITION + "course-renewal-gap"  # a monitoring plan's renewal that continues a course
EXT_SOURCE_ATTRIBUTES = STRUCTURE_DEFINITION + "source-attributes"  # a registry rule's HTI-1 source attributes

# What the service defines for its answers
OVERRIDE_REASONS = CANONICAL + "CodeSystem/cds-override-reasons"
OFFERED_OVERRIDE_REASONS = CANONICAL + "ValueSet/cds-override-reasons"  # ours and HL7's, as the cards offer them
OVERRIDE_REASON_FAMILIES = CANONICAL + "ConceptMap/override-reason-families"  # each reason -> its HL7 category
CHECK_OUTCOME = CANONICAL + "CodeSystem/check-outcome"
DSI_DATA_ELEMENTS = CANONICAL + "CodeSystem/dsi-source-data-elements"  # the nine HTI-1 patient data elements
PROPOSED_CHANGE = STRUCTURE_DEFINITION + "proposed-change"
CHECK_ORDERS_OPERATION = CANONICAL + "OperationDefinition/check-orders"
INDICATION_SEARCH_PARAMETER = CANONICAL + "SearchParameter/medicationknowledge-indication"


def value_set_url(name: str) -> str:
    """Canonical URL of one of the knowledge's value sets."""
    return f"{CANONICAL}ValueSet/{name}"


# --- Code systems of others ---------------------------------------------------------------------------------
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"
# HL7's non-adherence (override) reasons, CDS Hooks 3.0 ballot (HL7/cds-hooks input/vocabulary/); the earlier draft URL
# is read too
NON_ADHERENCE_REASONS = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
# HL7 v3 ActCode: the code system of the FHIR DetectedIssue categories (a card's topic, an issue's code)
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
