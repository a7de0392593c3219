# Two commands for a fresh machine (README quick start):
#   make demo   set up, then plan and check the dev and prod stacks offline
#   make test   set up, then run the test suite (make test-slow, make test-engine: the rest; CI runs all three)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-engine lint setup bench clean

$(STAMP): requirements.txt requirements-dev.txt policies/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# make demo needs only what plan and check import (requirements.txt), with pip's progress shown;
# its own stamp, so a later make test still installs the test tools.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(DEMO_STAMP)

setup: $(STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m bulkhead plan --stack dev
	$(PY) -m bulkhead plan --stack prod
	$(PY) -m bulkhead check .bulkhead/plan-dev.json
	$(PY) -m bulkhead check .bulkhead/plan-prod.json

# Lint first (seconds): pyflakes + bugbear (ruff.toml), then dead code (tools/vulture_whitelist.py lists
# the names frameworks use by name, each with its reason; a check registered by the pack's decorators is used).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vulture . tools/vulture_whitelist.py --exclude .venv,.bulkhead,node_modules --ignore-decorators "@resource_rule,@stack_rule"

# make test: lint, then every test but the slow suites and the real-engine ones (pytest -m "not docker
# and not slow"), under 5 minutes of wall time on an idle 2-core machine. make test-slow: the slow
# suites. make test-engine: the real Docker engine tests
# (tests/docker/, pytest -m docker: the client matrix and the engine checks), which need the engine,
# the test images and the client libraries. CI (.ci/run) runs all three, so every test runs in CI.
# --dist loadfile: a test file runs on one worker, so its module fixtures (PostgreSQL servers,
# planned stacks) are built once; tests/support/balance.py orders the files longest first and
# splits the few longest by test function, so the two workers finish together.
# PYTHONDONTWRITEBYTECODE emptied (an environment may set it): otherwise both workers and every
# `python -m bulkhead` subprocess recompile the program and pytest re-rewrites every test module
# (about a third of collection time, measured with cProfile); the caches are .gitignored.
test: lint
	scripts/ensure-postgres
	scripts/fetch-postgres-servers
	scripts/ensure-clients
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n 2 --dist loadfile -q -m "not docker and not slow"

# The slow suites (marker slow, tests/support/balance.py SLOW), split test by test over both workers.
test-slow: $(STAMP)
	scripts/ensure-postgres
	scripts/fetch-postgres-servers
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n 2 --dist loadfile -q -m "slow and not docker"

test-engine: $(STAMP)
	scripts/ensure-docker
	scripts/ensure-clients
	scripts/build-test-images
	PYTHONDONTWRITEBYTECODE= scripts/run-docker-tests $(PY)

# Both benchmarks run; the target fails if either misses a goal (bench/README.md).
bench: $(STAMP)
	$(PY) bench/run.py; rc=$$?; $(PY) bench/peer.py || rc=1; exit $$rc

clean:
	rm -rf $(VENV) .bulkhead
