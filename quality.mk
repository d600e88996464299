# Contract, fuzzing and soak targets (included by the Makefile; `make test` depends on openapi-check).
# FUZZ_EXAMPLES: fuzzed cases per operation of `make fuzz`; FUZZ_SEED: its seed (default: the clock).
# SOAK_SECONDS: duration of `make soak` (default 300); it needs wrk (apt-get install wrk).

FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?=
SOAK_SECONDS ?= 300

.PHONY: openapi-check fuzz soak

openapi-check: install ## validate openapi.yaml with openapi-spec-validator (part of make test)
	$(VENV)/bin/openapi-spec-validator openapi.yaml

fuzz: install ## long schemathesis run (all phases, thousands of cases) against gunicorn on loopback; prints a summary
	$(PY) -m tests.test_fuzz_api --examples $(FUZZ_EXAMPLES) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

soak: install ## 5-minute soak (SOAK_SECONDS= to change): gunicorn + wrk, FHIR and CDS mix; exit 1 on any error
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) bench/soak.py
