# fhirsvc: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
VENV_EHR := .venv-ehr
HOST   ?= 127.0.0.1
PORT   ?= 8080

.DEFAULT_GOAL := help
.PHONY: help install run test clone-test wheel-check validate lint clean ehr-server demo-governance

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed ## create .venv and install fhirsvc (editable) with its test extras

-include tools/validator/INSTALL.mk
-include tools/bindings/BINDINGS.mk
-include bench/bench.mk
-include scenarios.mk
-include browser.mk
-include postgres.mk
-include quality.mk
-include packages.mk

run: install ## serve on 127.0.0.1:8080 with gunicorn, fhirsvc/gunicorn_conf.py (HOST=, PORT= override; CDS auth off: see README)
	FHIRSVC_AUTH=$${FHIRSVC_AUTH:-off} $(VENV)/bin/fhirsvc serve --host $(HOST) --port $(PORT)

demo-governance: install ## serve the governance view over a generated history in a temporary store (HOST=, PORT=)
	$(PY) bench/demo_governance.py --host $(HOST) --port $(PORT)

$(VENV_EHR)/.installed:
	$(PYTHON) -m venv $(VENV_EHR)
	$(VENV_EHR)/bin/pip install --quiet 'sekmet-fhir==0.1.1'
	touch $@

ehr-server: $(VENV_EHR)/.installed ## install the stand-in EHR FHIR server (sekmet-fhir) the integration tests start

test: install validator ehr-server package-loader openapi-check ## run every test
	$(PY) -m pytest

# A clone of HEAD with nothing beside it, then `make test` in it (CI runs this): what the repository needs, it holds.
clone-test: ## clone HEAD into an empty temporary directory and run `make test` there
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	git clone --quiet "$(CURDIR)" "$$dir/fhirsvc" && echo "clone-test: HEAD cloned into $$dir/fhirsvc" && \
	$(MAKE) -C "$$dir/fhirsvc" test

# The wheel alone (CI runs this): built, installed without extras in a fresh virtualenv outside the checkout, run there.
wheel-check: ## build the wheel, install it in a fresh virtualenv outside the checkout, run `fhirsvc check` and serve there
	PYTHON=$(PYTHON) tools/wheel_smoke.sh

validate: install validator ## validate the knowledge (fhir.resources R5, ids, references, independent validator) and its packages
	packages=$$($(PY) -m fhirsvc.fhir.packages build --out dist | cut -d' ' -f1) && \
	$(VENV)/bin/fhirsvc validate $$(printf -- '--package %s ' $$packages)

lint: install ## ruff over the code and tests, mypy over the package (setup.cfg), and the text rules (tools/lint_text.py)
	$(VENV)/bin/ruff check fhirsvc tests
	$(VENV)/bin/mypy
	$(PY) tools/lint_text.py

clean: ## remove .venv, the validator's install and caches
	rm -rf $(VENV) $(VENV_EHR) .validator .package-loader dist .pytest_cache .ruff_cache .mypy_cache test-output *.egg-info
