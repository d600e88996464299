"""The evaluation layer, between the faces and the checks: a validated request (a CDS Hooks call, a saved request,
a FHIR Bundle) in, findings and cards out, the same for every face.

``services`` declares the services (hook, context schema, pipeline) and dispatches through them; ``environment``
holds what an evaluation reads besides the request; ``pipeline`` reads the draft orders, assembles the patient
context (``relevance``, ``prefetch``), runs the checks and builds the cards (``cards``); ``bundles`` turns a FHIR
Bundle into a request and findings into DetectedIssues; ``offline`` evaluates a document with nothing fetched.
No module here imports a face (``tests/test_layers.py``).
"""
