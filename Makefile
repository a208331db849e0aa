# The everyday commands. Needs only Python 3.11+ on the PATH.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check schema clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Serve http://$${HOST:-127.0.0.1}:$${PORT:-8000}/graphql with the walk-through's demo data.
run: $(STAMP)
	$(BIN)/python -m schema.serve

## The whole suite on a fresh database of its own (embedded, or TEST_DATABASE_URL).
test: $(STAMP)
	$(BIN)/pytest

## Style and types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

check: lint test

## Write the committed SDL from the live schema.
schema: $(STAMP)
	$(BIN)/python -m schema.export > schema/schema.graphql

clean:
	rm -rf $(VENV) .pgdata .pytest_cache .mypy_cache .ruff_cache .ci/node_modules
