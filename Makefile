# Nærvagt — the two commands: `make up` (platform + demo) and `make test` (the whole suite).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The console's charting library (uPlot), installed from the npm registry by the build.
ALERTS_WEB := services/alerts/web
VENDOR     := services/alerts/static/vendor/uPlot.iife.min.js

.PHONY: up test lint system-deps bench clean

up: $(STAMP) system-deps $(VENDOR)
	$(VENV)/bin/naervagt up --demo

test: $(STAMP) system-deps $(VENDOR)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENDOR): $(ALERTS_WEB)/package.json $(ALERTS_WEB)/package-lock.json $(ALERTS_WEB)/build.mjs
	npm --prefix $(ALERTS_WEB) ci --no-audit --no-fund
	npm --prefix $(ALERTS_WEB) run build

# Debian packages the tests drive for real: chromium (browser tests) and coturn (TURN relay).
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v turnserver >/dev/null \
		|| ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium coturn nodejs npm >/dev/null; \
	fi

bench: $(STAMP)
	$(PY) bench/scoring.py

clean:
	rm -rf $(VENV) .naervagt .mypy_cache .ruff_cache .pytest_cache $(ALERTS_WEB)/node_modules
	find services/alerts/static/vendor -type f ! -name .gitignore -delete
