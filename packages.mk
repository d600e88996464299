# The knowledge as FHIR NPM packages (docs/packages.md): `make package` writes the R5 and the R4 package into dist/,
# `make release VERSION=x.y.z` checks the version was bumped where the content changed since the last release in
# releases/ (the knowledge and its R4 view), builds the packages, records both there and writes the change list.
# `make package-loader`: npm's fhir-package-loader (SUSHI's package loader), installed into .package-loader/, the
# independent reader the package tests load both packages with (tests/fhir/test_packages.py); `make test` installs it.
.PHONY: package release package-loader

PACKAGE_LOADER         := .package-loader
PACKAGE_LOADER_VERSION := 2.2.4

package: install ## write the R5 and the R4 FHIR package of the knowledge into dist/
	$(PY) -m fhirsvc.fhir.packages build --out dist

release: install ## check, build and record release VERSION=x.y.z of the knowledge (releases/, with its change list)
	@test -n "$(VERSION)" || { echo "make release: give the version, e.g. make release VERSION=1.0.1" >&2; exit 2; }
	$(PY) -m fhirsvc.fhir.packages release --version "$(VERSION)" --out dist --releases releases

package-loader: $(PACKAGE_LOADER)/.installed ## install npm fhir-package-loader into .package-loader/ for the package tests

$(PACKAGE_LOADER)/.installed: packages.mk
	rm -rf $(PACKAGE_LOADER) && mkdir -p $(PACKAGE_LOADER)
	npm install --silent --no-audit --no-fund --prefix $(PACKAGE_LOADER) fhir-package-loader@$(PACKAGE_LOADER_VERSION)
	touch $@
