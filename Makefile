# One entry point for people and CI. `make demo` and `make test` work on a fresh clone
# with only Python >= 3.11 and make: they create .venv and install what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 3000

.PHONY: demo test lint types imports pytest install clean bench

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Switchboard needs Python >= 3.11 (found: $$($(PYTHON) --version)); set PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# make demo RESET=1 starts from an empty database; WORKFLOWS=dir demos your own workflows.
demo: $(STAMP)
	$(BIN)/switchboard demo --port $(PORT) $(if $(RESET),--reset) $(if $(WORKFLOWS),--workflows $(WORKFLOWS))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# Two phases: every test in parallel, one process per core (the slow proofs, worker kills
# and replicas, mostly wait on their subprocesses); then, alone on the machine, the browser
# tests and every test that asserts a time bound, so a busy neighbour cannot make them
# flaky. PYTEST_WORKERS=0 runs the first phase serially too.
PYTEST_WORKERS ?= 2
SERIAL := timing or browser

pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not ($(SERIAL))"
	$(BIN)/pytest -q -m "$(SERIAL)"

test: lint types imports pytest

bench: $(STAMP)
	$(BIN)/python -m bench.engine_throughput

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
