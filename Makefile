# Every target works on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
# make demo PORT=8001 ISSUER_PORT=8766 when 8000 or 8765 is taken.
PORT ?= 8000
ISSUER_PORT ?= 8765

.PHONY: help venv chromium wrk lint typecheck unit docs docs-serve dist dist-check test test-matrix demo bench clean

help:
	@echo "make demo   run the example API against a local issuer (no Auth0 tenant needed);"
	@echo "            make demo PORT=8001 ISSUER_PORT=8766 if 8000 or 8765 is taken"
	@echo "make test   lint, type-check, run every test and build the docs"
	@echo "make dist   build an sdist and a wheel into dist/"
	@echo "make test-matrix  the tests on Python 3.10-3.13 and on the lowest dependencies"
	@echo "make bench  run the benchmarks, in-process and on a real server (not part of make test)"
	@echo "make docs   build the documentation site (mkdocs --strict)"
	@echo "make docs-serve  serve it on http://127.0.0.1:8001 while you edit"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The demo needs the library and an ASGI server only; make test installs the rest.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $(STAMP)

venv: $(STAMP)

# The browser test drives a system chromium (Playwright's own browser download is not used).
# Installed only where that needs no password: as root with apt-get. Anywhere else the test
# is skipped with one line saying how to get it (and fails under CI=true).
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| [ -n "$$CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium: apt-get could not install it; the browser test is skipped"; \
	else \
		echo "chromium: not installed; the browser test is skipped (a failure under CI=true)"; \
	fi

# The real-server load test (and make bench) drive Debian's wrk, installed the same way.
wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| echo "wrk: apt-get could not install it; the real-server load test is skipped"; \
	else \
		echo "wrk: not installed; the real-server load test is skipped (a failure under CI=true)"; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv chromium wrk
	$(BIN)/pytest

# The site must work offline: no page may load a stylesheet or script from elsewhere.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@! grep -rlE '<(link|script)[^>]*(href|src)="(https?:)?//' site --include='*.html' \
		|| { echo "docs: the pages above load files from the internet"; exit 1; }

# The site on http://127.0.0.1:8001, rebuilt on every change (8000 is the demo's).
docs-serve: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

test: lint typecheck unit docs dist-check

# An sdist and a wheel in dist/, the wheel built from the sdist (which proves it complete).
dist: venv
	rm -rf dist
	$(BIN)/python -m build --quiet --outdir dist .
	@ls dist

# The sdist and the wheel work once installed in a clean venv (import, CLI, dev issuer).
# The clean venv gets no pip of its own (the project venv's pip installs into it): seconds saved.
CHECK_VENV := build/dist-check
dist-check: dist
	rm -rf $(CHECK_VENV)
	$(PYTHON) -m venv --without-pip $(CHECK_VENV)
	$(BIN)/python -m pip --python $(CHECK_VENV)/bin/python install -q "$$(ls dist/*.whl)[dev-issuer]"
	cd $(CHECK_VENV) && bin/python -I $(CURDIR)/tests/support/smoke_installed.py

# nox and uv join the venv only for the matrix; each session builds its own venv with uv.
MATRIX_STAMP := $(VENV)/.matrix-installed
$(MATRIX_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[matrix]'
	touch $(MATRIX_STAMP)

test-matrix: $(MATRIX_STAMP)
	$(BIN)/nox

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py --app-port $(PORT) --issuer-port $(ISSUER_PORT)

bench: venv wrk
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/bench.py --mode both

clean:
	rm -rf $(VENV) site dist build .pytest_cache .mypy_cache .ruff_cache
