# One entry point for newcomers and CI. Needs only python3 (3.11+), pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-smoke bench-bridges docs docs-check docs-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py
	$(BIN)/python examples/middlewares_demo.py

lint: $(STAMP)
	$(BIN)/ruff check bubus_anyio tests examples benchmarks docs/_gen
	$(BIN)/ruff format --check bubus_anyio tests examples benchmarks docs/_gen

typecheck: $(STAMP)
	$(BIN)/pyright bubus_anyio tests/typing

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/run.py --smoke

# The documentation site, built into site/ with --strict: a warning (broken link, unresolved API reference,
# docstring the parser cannot read) fails the build. mermaid.js comes from the npm registry when npm is
# there, so the diagrams render without a CDN (docs/_gen/hooks.py ships it).
DOCS_STAMP      := $(VENV)/.installed-docs
MERMAID_VERSION := 11.12.0
MERMAID         := build/docs-vendor/mermaid-$(MERMAID_VERSION).min.js

$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $(DOCS_STAMP)

$(MERMAID):
	@mkdir -p build/docs-vendor
	@if command -v npm >/dev/null; then \
		cd build/docs-vendor && npm pack --silent mermaid@$(MERMAID_VERSION) >/dev/null \
		&& tar -xzf mermaid-$(MERMAID_VERSION).tgz package/dist/mermaid.min.js \
		&& mv package/dist/mermaid.min.js mermaid-$(MERMAID_VERSION).min.js \
		&& rm -rf package mermaid-$(MERMAID_VERSION).tgz; \
	else echo "npm not found: the site will load mermaid from its CDN"; fi

docs: $(DOCS_STAMP) $(MERMAID)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Builds the site, then renders it in headless Chromium (Debian's package) and checks the home page, the API
# reference and search; screenshots land in site/_screenshots/. Fails, instead of skipping, without chromium.
docs-check: docs
	BUBUS_DOCS_SITE_REQUIRED=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_docs_site.py

docs-serve: docs
	$(BIN)/python -m http.server --directory site --bind 127.0.0.1 8000

# Every bridge between two processes on asyncio and trio (ARGS=--smoke for a quick pass); the server
# bridges use the servers `.ci/servers.sh start` runs, or start their own.
bench-bridges: $(STAMP)
	$(BIN)/python benchmarks/bridges.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist site *.egg-info
