# One entry point for newcomers and CI. Needs only python3 (3.11+), pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-smoke bench-bridges clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check bubus_anyio tests examples benchmarks
	$(BIN)/ruff format --check bubus_anyio tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/pyright bubus_anyio tests/typing

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/run.py --smoke

# Every bridge between two processes on asyncio and trio (ARGS=--smoke for a quick pass); the server
# bridges use the servers `.ci/servers.sh start` runs, or start their own.
bench-bridges: $(STAMP)
	$(BIN)/python benchmarks/bridges.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
