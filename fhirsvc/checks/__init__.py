"""The clinical rules: pure functions (patient context, knowledge) -> findings; no I/O, no Flask."""
