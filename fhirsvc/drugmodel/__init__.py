"""The drug model: what the knowledge says about each drug, read once, in one place, for every face.

The checks (``fhirsvc.checks``), the monograph pages (``fhirsvc.monograph``), ``$check-orders`` and patient-view all
read a drug through this layer: names, codes, strength and the content of one prefilled syringe, dosing guidelines
with their per-day arithmetic and limits, warnings, interactions, and the monitoring schedule.

- ``profile.py``: a ``DrugProfile`` per MedicationKnowledge (``profile_of`` / ``drug_profiles``, built once per
  knowledge and kept with it).
- ``timing.py``: administrations per day of a Timing (dosages of the knowledge and of orders alike).
- ``units.py``: unit conversion (time spans, weight, kidney function, neutrophil counts, temperature).
- ``schedule.py``: the monitoring schedule of a drug's PlanDefinition.

Imports point one way: faces -> checks -> drug model -> knowledge. Nothing here imports the checks, Flask or
requests, and nothing here names a drug (the ``drug-facts`` rule of ``tools/lint_text.py`` scans this layer too).
"""
