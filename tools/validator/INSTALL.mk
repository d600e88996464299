# Independent R5 validator (fhirsvc/knowledge/independent.py): the HL7 R5 core package from the npm
# registry, unpacked into .validator/ (jsonschema and fhirpathpy are package dependencies).
# Idempotent: a stamp file. Included by the Makefile.

VALIDATOR_DIR     := .validator
R5_CORE           := hl7.fhir.r5.core-5.0.0
R5_CORE_SHA256    := 09f22107bef64313545a50d2c127d20f81173c499a395672fae089bc23e72fab
R5_CORE_STAMP     := $(VALIDATOR_DIR)/$(R5_CORE).installed

.PHONY: validator
validator: $(R5_CORE_STAMP) ## install the independent R5 validator (offline afterwards)

$(R5_CORE_STAMP): tools/validator/INSTALL.mk
	rm -rf $(VALIDATOR_DIR)/hl7.fhir.r5.core $(VALIDATOR_DIR)/$(R5_CORE).tgz
	mkdir -p $(VALIDATOR_DIR)/hl7.fhir.r5.core
	npm pack --silent --pack-destination $(VALIDATOR_DIR) hl7.fhir.r5.core@5.0.0 >/dev/null
	echo '$(R5_CORE_SHA256)  $(VALIDATOR_DIR)/$(R5_CORE).tgz' | sha256sum --check --quiet
	tar -xzf $(VALIDATOR_DIR)/$(R5_CORE).tgz -C $(VALIDATOR_DIR)/hl7.fhir.r5.core --wildcards \
		'package/package.json' 'package/openapi/fhir.schema.json' \
		'package/StructureDefinition-*.json' 'package/ValueSet-*.json' 'package/CodeSystem-*.json'
	rm -f $(VALIDATOR_DIR)/$(R5_CORE).tgz
	touch $@
