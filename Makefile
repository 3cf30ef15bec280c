# NEXUS — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: run test install install-test lint check services bench clean web

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(VENV)/bin/activate
	$(PIP) install --quiet -e .

install-test: $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[test]"

## Install everything and run NEXUS on the embedded default (SQLite + ./var).
run: install web
	$(VENV)/bin/nexus serve $(ARGS)

web:
	bash scripts/web.sh build

## Install what the tests need, start the services they use, lint, and run the whole suite:
## web component tests, browser end-to-end tests, then every API/service test on SQLite and PostgreSQL.
test: install-test services lint web
	bash scripts/web.sh test
	bash scripts/chromium.sh
	bash scripts/xmlsec1.sh
	bash scripts/slapd.sh
	NEXUS_E2E=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/e2e $(PYTEST_ARGS)
	NEXUS_TEST_DATABASES=sqlite,postgresql $(VENV)/bin/pytest -q $(PYTEST_ARGS)

services:
	bash scripts/services.sh

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) scripts/check_boundaries.py
	$(VENV)/bin/mypy

bench: install-test services
	$(PY) benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
