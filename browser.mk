# make browser: Debian's Chromium and chromedriver for the end-to-end tests (tests/monograph/test_e2e_browser.py).
# Installed with apt only when /usr/bin/chromium or /usr/bin/chromedriver is missing; sudo only when not root.
# Without them the end-to-end tests are skipped (with a message naming this target), never passed.
.PHONY: browser

BROWSER_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser: ## install Debian's chromium and chromedriver for the end-to-end tests
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "browser: /usr/bin/chromium and /usr/bin/chromedriver are installed"; \
	else \
		$(BROWSER_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(BROWSER_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver; \
	fi
