# Two commands for a fresh machine (README quick start):
#   make demo   set up, then plan and check the dev and prod stacks offline
#   make test   set up, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup bench clean

$(STAMP): requirements.txt requirements-dev.txt policies/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m bulkhead plan --stack dev
	$(PY) -m bulkhead plan --stack prod
	$(PY) -m bulkhead check .bulkhead/plan-dev.json
	$(PY) -m bulkhead check .bulkhead/plan-prod.json

test: $(STAMP)
	scripts/ensure-postgres
	scripts/fetch-postgres-servers
	scripts/ensure-docker
	scripts/ensure-clients
	scripts/build-test-images
	$(PY) -m pytest -n 2 -q -m "not docker"
	scripts/run-docker-tests $(PY)

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .bulkhead
