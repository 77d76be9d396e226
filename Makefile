# Every target works on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv chromium lint typecheck unit docs test test-matrix demo bench clean

help:
	@echo "make demo   run the example API against a local issuer (no Auth0 tenant needed)"
	@echo "make test   lint, type-check, run every test and build the docs"
	@echo "make test-matrix  the tests on Python 3.10-3.13 and on the lowest dependencies"
	@echo "make bench  run the benchmarks (not part of make test)"
	@echo "make docs   build the documentation site (mkdocs --strict)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $(STAMP)

venv: $(STAMP)

# Browser tests drive Debian's chromium; Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv chromium
	$(BIN)/pytest

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck unit docs

# nox and uv join the venv only for the matrix; each session builds its own venv with uv.
MATRIX_STAMP := $(VENV)/.matrix-installed
$(MATRIX_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[matrix]'
	touch $(MATRIX_STAMP)

test-matrix: $(MATRIX_STAMP)
	$(BIN)/nox

demo: venv
	$(BIN)/python examples/demo.py

bench: venv
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
