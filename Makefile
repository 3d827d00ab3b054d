# dagstream — the two commands: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test test-sqlite test-postgres lint bench screenshots clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Set up everything, then serve the example project with the demo engine inside.
# DEMO_ARGS passes options on, e.g. DEMO_ARGS="--speed 4 --loop 20" or "--no-engine".
demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py dagstream_demo_server --port $(PORT) $(DEMO_ARGS)

# Lint and type-check, then the whole suite on SQLite and again on PostgreSQL.
test: $(STAMP) lint test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy dagstream_app project

test-sqlite: $(STAMP)
	DATABASE_URL= $(BIN)/pytest

test-postgres: $(STAMP)
	DATABASE_URL=$${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/dagstream} $(BIN)/pytest

# Refresh the dashboard pictures in docs/img from the browser tests.
screenshots: $(STAMP)
	DATABASE_URL= DAGSTREAM_SCREENSHOTS=docs/img $(BIN)/pytest tests/test_dashboard_browser.py -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3* .test-db.sqlite3* staticfiles .pytest_cache .mypy_cache .ruff_cache
