# Switchboard developer commands. `make run` and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
# Re-install only when the dependency list changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: help venv tools run test test-fast lint bench clean

help:
	@echo "make run    - install (once) and start the platform on http://127.0.0.1:8000 with the sample tenants"
	@echo "make test   - install (once) and run the whole test suite"
	@echo "make lint   - import-linter layer contracts"
	@echo "make bench  - benchmarks (intent on BANKING77, redaction on Presidio's synthetic set)"

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== installing Switchboard into $(VENV) (first run takes a few minutes)"
	$(PIP) install --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

tools: $(STAMP)
	@if [ -x scripts/install-tools.sh ]; then scripts/install-tools.sh; fi

run: venv
	$(VENV)/bin/switchboard run

test: tools
	$(PY) -m pytest -q -ra
	$(VENV)/bin/lint-imports --no-cache

test-fast: venv
	$(PY) -m pytest -q -ra -m "not ray"

lint: venv
	$(VENV)/bin/lint-imports --no-cache

bench: venv
	$(PY) benchmarks/intent_banking77.py --out results/intent.json
	$(PY) benchmarks/redaction.py --out results/redaction.json

clean:
	rm -rf $(VENV) .tools .pytest_cache results
