# Kaggle digit-recognizer job. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/default.yaml
RUNS ?= runs
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv train download submit test test-all tensorboard runs

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP) ## create .venv from the pinned requirements (done by the targets that need it)

train: $(STAMP) ## train all models with CONFIG (default configs/default.yaml) into runs/
	$(PY) -m job train --config $(CONFIG)

download: $(STAMP) ## download the competition data (CONFIG's data.dir); FORCE=1 refreshes it
	$(PY) -m job download --config $(CONFIG) $(if $(FORCE),--force)

submit: $(STAMP) ## submit RUN (default runs/latest) to Kaggle; ARGS="--dry-run|--wait|--force|--message M"
	$(PY) -m job submit --runs-dir $(RUNS) $(if $(RUN),--run $(RUN)) $(ARGS)

test: $(STAMP) ## run the test suite CI runs (slow tests excluded)
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP) ## run every test, slow ones included
	$(PY) -m pytest -q

tensorboard: $(STAMP) ## show training curves of every run: tensorboard --logdir runs
	$(VENV)/bin/tensorboard --logdir $(RUNS)

runs: $(STAMP) ## list runs with their data source, best model and val accuracy
	$(PY) -m job runs --runs-dir $(RUNS)
