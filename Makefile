# The everyday commands. Needs only Python 3.11+ on the PATH.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check schema bench bench-smoke mutation fuzz clean api-key api-key-revoke api-keys

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Serve http://$${HOST:-127.0.0.1}:$${PORT:-8000}/graphql with the walk-through's demo data.
run: $(STAMP)
	$(BIN)/python -m schema.serve

## API keys, in the database `make run` uses (DATABASE_URL, or the embedded one, also while
## `make run` serves it). make api-key NAME=acme-erp SCOPES="orders:read orders:write"
## prints the secret alone on its last line; only a hash of it is kept.
api-key: $(STAMP)
	@$(BIN)/python -m schema.keys create -- "$(NAME)" $(SCOPES)

## make api-key-revoke NAME=acme-erp: the next request with that key is refused.
api-key-revoke: $(STAMP)
	@$(BIN)/python -m schema.keys revoke -- "$(NAME)"

## Names, prefixes, scopes, created, last used and revoked times; never secrets.
api-keys: $(STAMP)
	@$(BIN)/python -m schema.keys list

## The whole suite on a fresh database of its own (embedded, or TEST_DATABASE_URL).
test: $(STAMP)
	$(BIN)/pytest

## Style and types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

check: lint test

## Mutation testing (mutmut) of services/domain/ against tests/unit/, from scratch: prints
## killed / total. Fails below 95% or on a survivor docs/mutation-equivalents.md does not list.
mutation: $(STAMP)
	rm -rf mutants
	$(BIN)/python -m tests.mutation_score

## schemathesis in GraphQL mode (.ci/schemathesis.toml) against a server already running,
## e.g. `make run`: URL=http://127.0.0.1:8000/graphql by default. It changes that server's
## data. Fails on any 5xx or "Unexpected error." (tests/fuzz_checks.py). CI runs it.
fuzz: $(STAMP)
	$(BIN)/schemathesis --config-file .ci/schemathesis.toml run --no-color $(or $(URL),http://127.0.0.1:8000/graphql)

## Write the committed SDL from the live schema.
schema: $(STAMP)
	$(BIN)/python -m schema.export > schema/schema.graphql

## Benchmarks (bench/): about 6 minutes; prints the table and writes docs/benchmarks.md.
## Needs wrk (apt-get install -y wrk). PROFILE=allocate-2 (or another measurement) also
## samples the server with py-spy (.venv/bin/pip install py-spy).
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(PROFILE),--profile $(PROFILE))

## The same at tiny sizes (about a minute), writing nothing: CI runs it so bench/ cannot rot.
bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

.PHONY: soak
## First the model-based test in deep mode (MODEL_DEEP=1: 100 examples of up to 50 steps
## instead of 20 of 30; about 5 minutes). Then tests/load's load run and checker: 64 clients
## making 12,800 calls (20 minutes on 2 busy cores), faults interleaved (backends killed, API
## processes killed, PostgreSQL restarted). SOAK_CALLS, SOAK_CLIENTS, SOAK_SEED and
## SOAK_WORKERS change it. Prints the figures; fails on any violation.
soak: $(STAMP)
	MODEL_DEEP=1 $(BIN)/pytest tests/service/test_model.py
	$(BIN)/python -m tests.load.soak

clean:
	rm -rf $(VENV) .pgdata .pytest_cache .mypy_cache .ruff_cache .ci/node_modules mutants .schemathesis
