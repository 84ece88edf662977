# The README's quick start: `make run` and `make test`. Both create .venv when it is missing
# and (re)install the project into it when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench-events clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/srhub run

# Tests are isolated (own PostgreSQL database, RabbitMQ vhost and ports per worker process), so
# they run in parallel on every core.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

# The gates CI runs before the tests: lint, format (no file may change), types (pyproject's
# [tool.mypy]: strict for standards, mappings, registry_core, hub/broker, connectors/base).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
