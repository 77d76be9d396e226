# Every target works on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
# make demo PORT=8001 ISSUER_PORT=8766 when 8000 or 8765 is taken.
PORT ?= 8000
ISSUER_PORT ?= 8765

.PHONY: help venv components chromium wrk node-jose lint typecheck unit docs docs-serve dist dist-check test test-matrix demo bench clean

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

# Real programs the suite starts: a browser (Debian's chromium, never Playwright's download),
# a Redis server (shared DPoP replay stores) and wrk (the real-server load test). Installed
# only where that needs no password: as root with apt-get. Anywhere else their tests are
# skipped with one line saying how to get them (and fail under CI=true). Entries: command:package.
COMPONENTS := chromium:chromium redis-server:redis-server wrk:wrk
components:
	@missing=""; for entry in $(COMPONENTS); do \
		command -v "$${entry%%:*}" >/dev/null 2>&1 || missing="$$missing $${entry##*:}"; \
	done; \
	if [ -n "$$CHROMIUM" ]; then missing=$$(echo "$$missing" | sed 's/ chromium//'); fi; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "components: apt-get could not install$$missing; their tests are skipped"; \
	else \
		echo "components: not installed:$$missing; their tests are skipped (a failure under CI=true)"; \
	fi

# The former name of the step above.
chromium: components

# Node's jose, for the interop tests: installed here so that the tests reach no network.
NODE_JOSE := $(VENV)/node-jose
node-jose:
	@if [ -f $(NODE_JOSE)/node_modules/jose/package.json ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(NODE_JOSE) --no-audit --no-fund --loglevel=error jose >/dev/null \
		|| echo "node-jose: npm could not install jose; its interop tests are skipped"; \
	else \
		echo "node-jose: npm not installed; the jose interop tests are skipped"; \
	fi

# The former name of wrk's part of the step above.
wrk: components

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv components node-jose
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

test-matrix: $(MATRIX_STAMP) components node-jose
	$(BIN)/nox

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py --app-port $(PORT) --issuer-port $(ISSUER_PORT)

bench: venv wrk
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/bench.py --mode both
	$(BIN)/python benchmarks/feature_costs.py

clean:
	rm -rf $(VENV) site dist build .pytest_cache .mypy_cache .ruff_cache
