# Everything runs from a project virtualenv that `make` builds from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)

.PHONY: demo demo-shell migrate test test-fast lint format clean constraints bench bench-resume

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@echo "Building the virtualenv $(VENV) from the pinned requirements (first time: about a minute; pip lists each package)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements-dev.txt -c constraints.txt
	touch $@
	@echo "Virtualenv $(VENV) ready."

## demo: the whole migration on the demo legacy database, rebuilt each time in an embedded PostgreSQL kept in .demo/
demo: $(BIN)/.installed
	$(BIN)/python -m devtools.demo

## demo-shell: psql on the demo's database, starting its kept server if needed; SQL="select ..." runs just that
demo-shell: $(BIN)/.installed
	@$(BIN)/python -m devtools.demo shell

## migrate: one run of the DAG against PG_URI=postgresql://<user>:<password>@<host>:5432/<database>, CONF='{"dry_run": true}' optional
migrate: $(BIN)/.installed
	$(BIN)/python -m devtools.migrate

## bench: full DAG vs. the guide's hand-run SQL on ROWS call logs of SHAPE (clean: the demo's; shared: most
## calls use another organization's agent or lead), on the embedded PostgreSQL or on the server PG_URI names
## (an admin URI: the bench creates and drops its databases there); appends to docs/benchmarks-history.md.
## PG_URI reaches devtools/bench.py (its --pg-uri) through the environment, so make never echoes a password.
ROWS ?= 100000
SHAPE ?= clean
bench: $(BIN)/.installed
	$(BIN)/python -m devtools.bench --rows $(ROWS) --shape $(SHAPE)

## bench-resume: the call step killed (SIGKILL) at KILL_AT of its chunks on ROWS call logs of SHAPE (on the
## server PG_URI names, as bench), then retried: the retry does only the chunks not committed
bench-resume: $(BIN)/.installed
	$(BIN)/python -m devtools.bench_resume --rows $(ROWS) --shape $(SHAPE) --kill-at $(or $(KILL_AT),0.7)

## lint: ruff (with Airflow rules) on Python, sqlfluff on the migration SQL
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql

## test: lint, then the test suite against a real PostgreSQL (embedded unless VOICE_AGENT_PG_URI is set)
test: lint /usr/bin/chromium
	$(BIN)/pytest

## test-fast: the SQL and plugin tests except those marked slow (about four minutes on two cores); no lint
test-fast: $(BIN)/.installed
	$(BIN)/pytest -m "not slow" tests/sql tests/plugins

# The trigger-form test drives Debian's Chromium with Playwright (`playwright install` downloads a browser
# and cannot work here): installed with apt when missing, which needs root.
/usr/bin/chromium:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix sql

## constraints: re-pin every transitive dependency after changing requirements*.txt
constraints:
	rm -rf $(VENV)-pin && $(PYTHON) -m venv $(VENV)-pin
	$(VENV)-pin/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)-pin/bin/pip freeze > constraints.txt && rm -rf $(VENV)-pin

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .demo .airflow
