# The golden CDS scenarios (fixtures/scenarios/) and the offline checker (`fhirsvc check`).
# Included from the Makefile; uses its `install` target and $(VENV).
VENV ?= .venv
SCENARIO_DIR := fixtures/scenarios
SCENARIO_NOW ?= 2026-11-24T12:00:00Z
DEMO_SCENARIOS ?= 001-clean-ra-adult-no-cards 016-live-vaccine-same-bundle 027-renal-crcl-29 \
	043-monitoring-no-count 070-prefetch-observations-outcome 202-pv-monthly-count-32-days-due

.PHONY: check demo

# FILE= the saved CDS Hooks request or FHIR Bundle; optional NOW= (ISO clock), JSON=1, FHIR=R4 or FHIR=R5.
# Exit status: 0 nothing critical, 1 a critical finding, 2 unreadable input.
check: install ## run the checks offline on a saved request or Bundle
	@test -n "$(FILE)" || { echo "usage: make check FILE=path/to/request-or-bundle.json [NOW=2026-11-24T12:00:00Z] [JSON=1]" >&2; exit 2; }
	@$(VENV)/bin/fhirsvc check $(if $(NOW),--now '$(NOW)') $(if $(JSON),--json) $(if $(FHIR),--fhir $(FHIR)) '$(FILE)'

# Each scenario at its own fixed clock; a critical finding (status 1) is part of the demo, status 2 is not.
demo: install ## run the checks on a few golden scenarios
	@for name in $(DEMO_SCENARIOS); do \
	  echo "== $$name: $$($(VENV)/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["description"])' $(SCENARIO_DIR)/$$name.expected.json)"; \
	  $(VENV)/bin/fhirsvc check --now $(SCENARIO_NOW) $(SCENARIO_DIR)/$$name.request.json; status=$$?; \
	  [ $$status -le 1 ] || exit $$status; \
	  echo "(exit status $$status)"; echo; \
	done
