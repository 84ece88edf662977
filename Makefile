# The README's quick start: `make run` and `make test`. Both create .venv when it is missing
# and (re)install the project into it when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint assets bench-events clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/srhub run

# Tests are isolated (own PostgreSQL database, RabbitMQ vhost and ports per worker process), so
# they run in parallel on every core. Work stealing: the default scheduler handed one worker
# the whole tail of the collection (every scenario story, ~6 min of waiting on feeds) while the
# other finished early and sat idle; an idle worker now takes tests from a busy one's queue
# (12:22 -> 9:35 on 2 cores).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

# The gates CI runs before the tests: lint, format (no file may change), types (pyproject's
# [tool.mypy]: strict for standards, mappings, registry_core, hub/broker, connectors/base).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The offline intake page's built assets (hub/collect/static: enketo-core bundle, its compiled
# theme, the service worker). They are committed and shipped in the package, so `pip install`
# serves them without Node; rebuild after changing hub/collect/web (needs node and npm).
COLLECT_WEB := hub/collect/web
assets:
	cd $(COLLECT_WEB) && npm ci --ignore-scripts --no-audit --no-fund && node build.mjs

clean:
	rm -rf $(VENV) var .pytest_cache
