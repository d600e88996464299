"""A made-up second drug, as knowledge files only: its page must render with no code change.

Its texts carry markup (``<script>``, ``<img onerror>``) and a ``javascript:`` label source, to show that
the page escapes everything and links only to http(s) sources.
"""

from __future__ import annotations

from typing import Any

BASE = "https://example.org/fhir/"
EXT = "https://fhirsvc.org/fhir/StructureDefinition/"
LOCAL = "urn:example:codes"
UCUM = "http://unitsofmeasure.org"
SCRIPT = "<script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'


def _qty(value: float, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


def _section(text: str) -> list[dict[str, Any]]:
    return [{"url": EXT + "source-section", "valueString": text}]


def resources() -> list[dict[str, Any]]:
    label_difference = {"url": EXT + "label-difference", "extension": [
        {"url": "text", "valueMarkdown": f"The label says **twice** as much {IMG}."},
        {"url": "date", "valueDate": "2024-01"},
        {"url": "source", "valueUri": "javascript:alert(1)"}]}
    return [
        {"resourceType": "ValueSet", "id": "examplumab-products", "url": f"{BASE}ValueSet/examplumab-products",
         "status": "active", "title": "Examplumab products",
         "compose": {"include": [{"system": LOCAL, "concept": [{"code": "EX-1", "display": "examplumab"}]}]}},
        {"resourceType": "ValueSet", "id": "examplumab-live", "url": f"{BASE}ValueSet/examplumab-live",
         "status": "active", "title": "Live vaccines (made-up list)",
         "compose": {"include": [{"system": "http://hl7.org/fhir/sid/cvx", "concept": [
             {"code": "03", "display": "measles, mumps and rubella virus vaccine", "designation": [{"value": "MMR"}]},
             {"code": "21", "display": "varicella"}]}]}},
        {"resourceType": "ClinicalUseDefinition", "id": "examplumab-indication-gout", "type": "indication",
         "extension": _section("Uses"),
         "indication": {"diseaseSymptomProcedure": {"concept": {"text": "Gout flares"}},
                        "intendedEffect": {"concept": {"text": "Fewer flares"}}}},
        {"resourceType": "ClinicalUseDefinition", "id": "examplumab-warning-renal", "type": "warning",
         "extension": [*_section("Kidneys"), label_difference],
         "warning": {"description": "**Kidneys.** Halve the dose in renal failure.",
                     "code": {"text": "Renal failure"}}},
        {"resourceType": "ClinicalUseDefinition", "id": "examplumab-warning-markup", "type": "warning",
         "extension": _section("Warnings"),
         "warning": {"description": f"Markup is text: {IMG}", "code": {"text": f"Dizziness {SCRIPT}"}}},
        {"resourceType": "ClinicalUseDefinition", "id": "examplumab-interaction-live", "type": "interaction",
         "extension": _section("Vaccines"),
         "interaction": {
             "extension": [{"url": EXT + "washout-period", "valueDuration": _qty(6, "wk", "weeks")}],
             "interactant": [{"itemCodeableConcept": {
                 "extension": [{"url": EXT + "value-set", "valueCanonical": f"{BASE}ValueSet/examplumab-live"}],
                 "text": "Live vaccines"}}],
             "management": [{"text": "No live vaccines."}]}},
        {"resourceType": "MedicationKnowledge", "id": "examplumab", "extension": _section("Examplumab monograph"),
         "code": {"extension": [{"url": EXT + "value-set", "valueCanonical": f"{BASE}ValueSet/examplumab-products"}],
                  "coding": [{"system": LOCAL, "code": "EX-1", "display": "examplumab"}],
                  "text": "examplumab 20 mg/mL solution"},
         "status": "active", "name": ["examplumab", "Exampla"],
         "clinicalUseIssue": [{"reference": f"ClinicalUseDefinition/{cid}"} for cid in (
             "examplumab-indication-gout", "examplumab-warning-renal", "examplumab-warning-markup",
             "examplumab-interaction-live")],
         "indicationGuideline": [
             {"indication": [{"reference": {"reference": "ClinicalUseDefinition/examplumab-indication-gout"}}],
              "dosingGuideline": [{
                  "id": "podagra-weight",
                  "dosage": [{"type": {"text": "starting"}, "dosage": [{
                      "text": "0.5 mg/kg twice a day.",
                      "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                      "doseAndRate": [{"doseQuantity": _qty(0.5, "mg/kg")}],
                      "maxDosePerPeriod": [{"numerator": _qty(3, "mg/kg"), "denominator": _qty(1, "d", "day")}]}]}],
                  "patientCharacteristic": [{"type": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                                                                  "display": "Body weight"}]}}]}]},
             {"dosingGuideline": [{
                 "id": "daily-standard",
                 "dosage": [{"type": {"text": "standard"}, "dosage": [{
                     "text": "40 mg once a day.",
                     "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                     "doseAndRate": [{"doseQuantity": _qty(40, "mg")}]}]}]}]}],
         "definitional": {
             "ingredient": [{"item": {"concept": {"text": "examplumab"}},
                             "strengthRatio": {"numerator": _qty(20, "mg"), "denominator": _qty(1, "mL")}}],
             "drugCharacteristic": [{"type": {"text": "mechanism of action"},
                                     "valueString": f"Blocks an enzyme {SCRIPT}"}]}},
    ]
