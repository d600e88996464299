# make bench: fhirsvc against a bare Flask endpoint in the same run (bench/README.md). Included by the Makefile.
# wrk drives the HTTP part; it is installed with apt-get when missing and this runs as root, otherwise
# bench/run.py falls back to its Python load generator. BENCH_ARGS=--quick for a ~1 minute smoke run.

BENCH_ARGS ?=

.PHONY: bench
bench: install ## run the benchmarks (results in bench/results/)
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
		|| echo "wrk could not be installed: using the Python load generator"; \
	fi
	$(PY) bench/run.py $(BENCH_ARGS)
