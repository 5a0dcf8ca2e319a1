# Two commands on a fresh machine: `make run` (server with embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := app
export STATESMAN_ENV ?= development

.PHONY: install run migrate test test-fast lint bench clean sync-org

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

migrate: install
	$(BIN)/flask db upgrade

# Development: data under ./data, generated keys, authentication off, reachable from this machine only; remote runs
# on, with one agent beside the server.
run: migrate
	RUNS_ENABLED=$${RUNS_ENABLED:-true} $(BIN)/statesman -listen 127.0.0.1:$${PORT:-8080} -auth-disable -agent

# Sync one organization and user from the identity provider (see scripts/sync-org.sh for the variables).
sync-org:
	./scripts/sync-org.sh

# The whole suite, as CI runs it, on TEST_WORKERS pytest-xdist workers: most of the time goes to waiting on Terraform,
# server processes and the databases, so more workers than cores pay. PYTEST_ARGS="-n 0" runs it in one process.
TEST_WORKERS ?= 4
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)

# While developing: SQLite as the only metadata database, no end-to-end and no slow tests; under two minutes.
test-fast: install
	STATESMAN_TEST_DATABASES=sqlite $(BIN)/python -m pytest -n auto -m "not e2e and not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app config

# nginx and wrk are the reference points of the performance targets; without them those rows are skipped.
# BENCH passes modules and options on: BENCH="state_transfer --save after.json --baseline before.json" runs one
# module, saves its rows as JSON and prints them beside the saved ones (python -m bench --help).
bench: install
	@command -v nginx >/dev/null && command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null; } || \
		echo "bench: nginx/wrk not installed; their reference rows will be skipped"
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
