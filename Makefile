# betrokken — the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test check check-tests lint lock drill protos clean bench bench-quick

# Everything is installed from the hashed locks in requirements/ (docs/adr/0023-locked-installs.md),
# so a new upstream release cannot change what a fresh clone runs; `make lock` writes them anew
# from pyproject.toml's ranges. The project itself goes in last, editable, without a build
# environment of its own (setuptools and wheel come from the lock too).
INSTALL := $(BIN)/python -m pip install -qq --require-hashes --no-deps --only-binary=:all:
SELF    := $(BIN)/python -m pip install -qq --no-deps --no-build-isolation -e .

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "betrokken needs Python 3.11 or newer; set PYTHON=python3.11 (or newer) and try again")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(INSTALL) -r requirements/runtime.txt
	$(SELF)
	@touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(BIN)/python
	$(INSTALL) -r requirements/test.txt
	$(SELF)
	@touch $@ $(VENV)/.installed

$(VENV)/.installed-lint: requirements/lint.txt pyproject.toml | $(BIN)/python
	$(INSTALL) -r requirements/lint.txt
	$(SELF)
	@touch $@ $(VENV)/.installed-test $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/betrokken demo

# The tiers (docs/adr/0025-test-tiers.md). `test` runs every test (what CI runs) on two workers
# (docs/adr/0031-two-test-workers.md): one takes the tests on the run's network and browser, in
# order, the other the rest, and each takes more while the other is busy. `check` is the loop
# while working: lint beside every test that starts no process and no browser (on the two workers
# too), within 90 seconds. Under CI=true no test skips for want of PostgreSQL or Chromium.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

check: $(VENV)/.installed-lint
	@$(MAKE) --no-print-directory --output-sync=target -j2 lint check-tests

check-tests: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not e2e and not browser"

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check betrokken crypto node coordinator keyservice config identity audit requester portal migrations tests tools bench
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/importcheck.py

# Store drills on real processes (docs/operator.md, "Recovery"): a database read-only, a full disk,
# PostgreSQL read-only and restarted; then a case system's feed of 100,000 changes with the node
# killed in the middle (the suite runs the same test with 5,000). Needs root; RESTARTS the local
# PostgreSQL, so not in `test`.
drill: $(VENV)/.installed-test
	$(BIN)/python tools/drill.py
	BETROKKEN_FEED_ROWS=100000 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_feed_api.py

# Measurements on real processes (docs/performance.md): not part of `test`. `bench` writes
# bench/results/latest.json (+ a dated copy and latest.txt) in about 30 minutes on an idle machine
# (BENCH_ARGS="--rounds 3": about 25; the JSON's timings_s says what each scenario took); `bench-quick`
# the same keys at smaller sizes in about 5 minutes on an idle machine (15 at a load of 20).
# A question is measured in CPU per process (docs/adr/0034); `python -m bench.report` writes the
# tables of docs/performance.md from latest.json. openmined-psi (the peer baseline) lives in its
# own environment, .venv-psi: it needs protobuf < 7, betrokken protobuf 7 (docs/adr/0022).
.venv-psi/.installed: requirements/psi.txt
	$(PYTHON) -m venv .venv-psi
	-.venv-psi/bin/python -m pip install -qq --require-hashes --no-deps --only-binary=:all: \
	    -r requirements/psi.txt && touch $@

BENCH_ARGS ?=
bench: $(VENV)/.installed-test .venv-psi/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-test .venv-psi/.installed
	$(BIN)/python -m bench --quick

# Regenerate the committed gRPC code from protos/ (tests/test_protos_fresh.py checks it is current).
protos: $(VENV)/.installed-test
	$(BIN)/python -m betrokken.v1.generate

# Write the locks anew from pyproject.toml and requirements/*.in (newest releases within the ranges),
# for every Python from 3.11 and every platform at once; then `make test` and commit the result.
# One package only: make lock UPGRADE="--upgrade-package sqlalchemy".
LOCK_PYTHON := .venv-lock/bin/python
LOCK_FLAGS  := --universal --python-version 3.11 --generate-hashes --quiet $(UPGRADE)
.venv-lock/.installed: requirements/lock-tool.txt
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -qq --require-hashes --no-deps -r requirements/lock-tool.txt
	@touch $@

lock: .venv-lock/.installed
	cd requirements && ../.venv-lock/bin/uv pip compile ../pyproject.toml build.in $(LOCK_FLAGS) \
	    -o runtime.txt
	cd requirements && ../.venv-lock/bin/uv pip compile ../pyproject.toml build.in --extra test \
	    -c runtime.txt $(LOCK_FLAGS) -o test.txt
	cd requirements && ../.venv-lock/bin/uv pip compile ../pyproject.toml build.in --extra test \
	    --extra lint -c test.txt $(LOCK_FLAGS) -o lint.txt
	cd requirements && ../.venv-lock/bin/uv pip compile psi.in $(LOCK_FLAGS) -o psi.txt
	cd requirements && ../.venv-lock/bin/uv pip compile lock-tool.in $(LOCK_FLAGS) -o lock-tool.txt
	@echo "Locks written in requirements/. Next: make protos (if grpcio-tools moved), make test, commit."

clean:
	rm -rf $(VENV) .venv-psi .venv-lock build *.egg-info .pytest_cache .mypy_cache .ruff_cache
