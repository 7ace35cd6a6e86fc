# betrokken — the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint drill protos clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "betrokken needs Python 3.11 or newer; set PYTHON=python3.11 (or newer) and try again")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e '.[test]'
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/betrokken demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check betrokken crypto node coordinator keyservice config identity audit requester portal migrations tests tools
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/importcheck.py

# Store drills on real processes (docs/operator.md, "Recovery"): a database read-only, a full disk,
# PostgreSQL read-only and restarted. Needs root; RESTARTS the local PostgreSQL, so not in `test`.
drill: $(VENV)/.installed-test
	$(BIN)/python tools/drill.py

# Regenerate the committed gRPC code from protos/ (tests/test_protos_fresh.py checks it is current).
protos: $(VENV)/.installed-test
	$(BIN)/python -m betrokken.v1.generate

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
