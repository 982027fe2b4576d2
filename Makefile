# Newcomer commands: `make setup` once, then `make run` (the whole stack, no Docker) or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test models test-containers constraints

setup:  ## create .venv and install the project with every service's dependencies and the test tools
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'

constraints:  ## re-pin constraints.txt from this .venv (after changing pyproject.toml's dependencies)
	@{ sed -n '/^#/p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^aml[-_]miner' | LC_ALL=C sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

run:  ## the whole stack as local processes from compose.yaml (sample SOT by default); Ctrl-C stops it
	@test -f .env || cp .env.example .env
	$(BIN)/aml-miner stack

test:  ## the full test suite (starts a redis-server if none answers)
	$(BIN)/python -m tests.run

models:  ## rebuild the shipped models in trained_models/ (byte-identical to the committed ones)
	$(BIN)/aml-miner train-shipped --models-dir trained_models

test-containers:  ## the real `docker compose up --build --wait` on Podman + system checks (root, minutes; not in `make test`)
	$(BIN)/python tests/containers/run_containers.py
