"""Tests of the FHIR REST facade and the R4 view."""
