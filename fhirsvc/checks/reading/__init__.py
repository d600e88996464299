"""Reading the patient's record and the orders: which records count and what they say, no findings.

Nothing here knows about a particular drug or rule: the rules (``fhirsvc.checks.rules``) ask these modules
for the age, the active conditions, the newest usable measurement, the medications' status and dates and
the daily dose of an order. ``docs/reading-patient-data.md`` is the contract of what is read and how.
"""
