# The two commands: `make run` (set up, then serve development.ini) and `make test` (everything).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[postgresql,mysql]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,postgresql,mysql]'
	touch $@

run: $(VENV)/.installed
	mkdir -p var
	$(BIN)/initialize_db development.ini
	$(BIN)/pserve development.ini

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests alembic bench
	$(BIN)/ruff format --check src tests alembic bench

# Two workers by default (the CI machine has two cores); PYTEST_JOBS=0 runs in one process.
PYTEST_JOBS ?= 2

test: lint
	$(BIN)/pytest -n $(PYTEST_JOBS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
