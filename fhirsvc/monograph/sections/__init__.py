"""The sections of a monograph page, one module per kind: each function adds its section's blocks and the
resources they come from to the section's draft (``sources.Draft``)."""
