"""The clinical rules: pure functions (patient context, knowledge) -> findings; no I/O, no Flask.

Entry point: ``engine.run_checks(context, knowledge)``. The contract is ``docs/cds-checks.md``.

- ``context.py``, ``findings.py``: what the checks see (``PatientContext``) and report (``Finding``).
- ``config.py``: the contract-level constants that are not drug facts (topics, data windows, thresholds,
  the clinical-concept value sets each rule reads, interaction-class severities).
- the drug model they read is ``fhirsvc.drugmodel`` (``DrugProfile``, per-day timing arithmetic, units, the
  monitoring schedule).
- ``recognition.py``: which drug an order or a record is for (codes first, then whole-word names).
- ``dose.py``: the daily dose of an order in mg.
- ``patient.py``: patient data selection (age, active records, newest measurement, medication dates).
- ``base.py``: the per-call ``Run``, the per-order ``Job`` and the check registry.
- ``allergy.py`` (#1, #2), ``interactions.py`` (#3-#5, #19-#21), ``dosing.py`` (#6-#9, #18, unreadable
  dose), ``patient_rules.py`` (#10-#17): the checks; ``monitoring.py``: the patient-view reminders.
"""
