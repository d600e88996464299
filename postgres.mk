# make postgres: Debian's PostgreSQL server binaries (initdb, pg_ctl) for the tests that run against a real
# PostgreSQL (tests/storage, the durability and two-instance proofs) and for `make bench`. The tests start a
# throwaway cluster of their own (bench/pgcluster.py: initdb + pg_ctl in a temporary directory, on a free loopback
# port; as root it runs as the package's postgres user). Installed with apt only when no initdb is found; sudo only
# when not root. Without them those tests are skipped with a message naming this target, never passed.
.PHONY: postgres

POSTGRES_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
POSTGRES_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb) $(shell command -v initdb 2>/dev/null))

postgres: ## install Debian's postgresql for the tests against a real PostgreSQL
	@if [ -n "$(POSTGRES_INITDB)" ]; then \
		echo "postgres: $(POSTGRES_INITDB) is installed"; \
	else \
		$(POSTGRES_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(POSTGRES_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi
