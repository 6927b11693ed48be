# Every target sets up what it needs: a fresh machine only needs make, git and a Python 3.13 interpreter
# (found on PATH or under pyenv). The SAM CLI lives in its own virtual environment because it pins pydantic.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY313 ?= $(shell for p in "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 "$$(command -v python3.13)" /usr/local/bin/python3.13 /usr/bin/python3.13; do \
	[ -n "$$p" ] && [ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
# checkov pins boto3/packaging versions that conflict with ours: it gets its own environment too.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
PY := $(VENV)/bin/python
SAM := $(abspath $(SAM_VENV))/bin/sam
SAM_CLI_VERSION := 1.170.0
# sam build (without containers) needs the runtime's interpreter as `python3.13` on PATH.
export PATH := $(dir $(PY313)):$(PATH)
export SAM_CLI_TELEMETRY := 0
export SAM_CLI = $(SAM)
export CHECKOV = $(abspath $(CHECKOV_VENV))/bin/checkov

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: check-python
check-python:
	@[ -n "$(PY313)" ] || { echo "Python 3.13 not found: install it (e.g. 'pyenv install 3.13') or pass PY313=/path/to/python3.13" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml | check-python
	$(PY313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed: | check-python
	$(PY313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(CHECKOV_VENV)/.installed: | check-python
	$(PY313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

.PHONY: install
install: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## create the virtual environments

.PHONY: lint
lint: $(VENV)/.installed ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format
format: $(VENV)/.installed ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: typecheck
typecheck: $(VENV)/.installed ## mypy (strict) on the domain package
	$(VENV)/bin/mypy

.PHONY: validate
validate: $(SAM_VENV)/.installed ## sam validate --lint (offline), ours and the subscriber example's
	$(SAM) validate --lint
	cd examples/subscriber && $(SAM) validate --lint

.PHONY: build
build: $(SAM_VENV)/.installed ## sam build (arm64 layer, no container needed)
	$(SAM) build

.PHONY: test
test: install lint typecheck ## everything CI runs: lint, types, unit, integration and template tests
	$(VENV)/bin/pytest

.PHONY: test-unit
test-unit: $(VENV)/.installed ## fast tests only (no server, no SAM)
	$(VENV)/bin/pytest tests/unit

.PHONY: clean
clean: ## remove build output and virtual environments
	rm -rf .aws-sam $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .local

DEV_OUTPUTS ?= .local/outputs.json
export DEV_OUTPUTS

.PHONY: dev
dev: $(VENV)/.installed ## run the product locally: emulator + real handler on http://127.0.0.1:$${DEV_PORT:-3000}/webhooks/stack
	$(PY) tools/dev.py

.PHONY: dev-subscriber
dev-subscriber: $(VENV)/.installed ## with make dev running: the example subscriber's handler consumes its topics (one processed line per event)
	$(PY) tools/dev_subscriber.py

.PHONY: send
send: $(VENV)/.installed ## sign and post one sample event: make send TYPE=user.created [URL=... SECRET=...]
	@[ -n "$(TYPE)" ] || { echo "usage: make send TYPE=<event type> [URL=<webhook url> SECRET=<whsec_...>]" >&2; exit 2; }
	@$(PY) tools/send_event.py --type '$(TYPE)'

.PHONY: send-all
send-all: $(VENV)/.installed ## sign and post one sample of every type [URL=... SECRET=...]
	@$(PY) tools/send_event.py --all

.PHONY: replay
replay: $(VENV)/.installed ## re-publish stored events (dry run unless ARGS has --execute): make replay ARGS='--stack-name X --type user.created'
	$(PY) tools/replay.py $(ARGS)

.PHONY: schemas
schemas: $(VENV)/.installed ## regenerate schemas/ (JSON Schema of every event type) and the data models' core schemas
	$(PY) tools/generate_schemas.py
	$(PY) tools/generate_data_schemas.py

.PHONY: bench
bench: $(VENV)/.installed $(SAM_VENV)/.installed ## benchmark side by side, as ratios: cold start, warm path, end to end, AWS calls, layer size
	$(PY) tools/bench/run.py $(BENCH_ARGS)

.PHONY: cost
cost: $(VENV)/.installed ## AWS cost per million webhooks, from price inputs and the last make bench
	$(PY) tools/cost.py $(COST_ARGS)
