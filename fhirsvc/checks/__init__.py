"""The clinical rules: pure functions (patient context, knowledge) -> findings; no I/O, no Flask.

Entry points: ``engine.run_checks(context, knowledge)`` (the order hooks) and
``monitoring.run_patient_view(context, knowledge)`` (patient-view). The contract is ``docs/cds-checks.md``.

- ``context.py``, ``findings.py``: what the checks see (``PatientContext``) and report (``Finding``).
- ``config.py``: the contract-level constants that are not drug facts (topics, data windows, thresholds,
  the clinical-concept value sets each rule reads, interaction-class severities).
- the drug model they read is ``fhirsvc.drugmodel`` (``DrugProfile``, per-day timing arithmetic, units, the
  monitoring schedule).
- ``recognition.py``, ``index.py``: which drug an order or a record is for (codes first, then whole-word names).
- ``reading/``: the patient's record and the orders as the rules read them, no findings: ``resources.py``
  (a CodeableConcept's codes, ``Type/id``; its text is ``fhirtypes.concept_text``), ``windows.py`` (dates and
  time windows), ``age.py``, ``conditions.py`` (conditions and allergies), ``observations.py`` (readable
  results, the newest measurement), ``medications.py`` (status, start and end), ``daily_dose.py`` (the daily
  dose of an order in mg).
- ``base.py``: the per-call ``Run``, the per-order ``Job`` and the check registry (``@check``).
- ``rules/``: the checks, one module per family: ``allergy.py`` (#1, #2), ``interactions.py`` (#3-#5,
  #19-#21), ``dose.py`` (#6-#8, #18, unreadable dose), ``kidney.py`` (#9), ``age.py`` (#10, #11),
  ``infection.py`` (#12, #13), ``monitoring_due.py`` (#14), ``pregnancy.py`` (#15, #16), ``indication.py``
  (#17); ``warning.py`` words what they say of a drug's warning.
- ``monitoring.py``: the patient-view reminders; ``unavailable.py``: one "Unable to check" finding per data
  key that could not be had (run by the evaluation layer on both pipelines); ``wording.py``: every card's words.
"""
