# betrokken — the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint drill protos clean bench bench-quick

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
	$(BIN)/ruff format --check betrokken crypto node coordinator keyservice config identity audit requester portal migrations tests tools bench
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/importcheck.py

# Store drills on real processes (docs/operator.md, "Recovery"): a database read-only, a full disk,
# PostgreSQL read-only and restarted. Needs root; RESTARTS the local PostgreSQL, so not in `test`.
drill: $(VENV)/.installed-test
	$(BIN)/python tools/drill.py

# Measurements on real processes (docs/performance.md): not part of `test`. `bench` writes
# bench/results/latest.json (+ a dated copy and latest.txt) in about 25 minutes; `bench-quick`
# the same keys at smaller sizes within 3 minutes. openmined-psi (the peer baseline) lives in its
# own environment, .venv-psi: it needs protobuf < 7, betrokken protobuf 7 (docs/adr/0022).
.venv-psi/.installed:
	$(PYTHON) -m venv .venv-psi
	-.venv-psi/bin/python -m pip install -qq 'openmined.psi>=2.0' && touch $@

bench: $(VENV)/.installed-test .venv-psi/.installed
	$(BIN)/python -m bench

bench-quick: $(VENV)/.installed-test .venv-psi/.installed
	$(BIN)/python -m bench --quick

# Regenerate the committed gRPC code from protos/ (tests/test_protos_fresh.py checks it is current).
protos: $(VENV)/.installed-test
	$(BIN)/python -m betrokken.v1.generate

clean:
	rm -rf $(VENV) .venv-psi build *.egg-info .pytest_cache .mypy_cache .ruff_cache
