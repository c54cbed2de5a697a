# The two commands a newcomer needs: `make run` and `make test` (`make test-fast` while coding).
# Everything else (virtualenv, pinned requirements, annotation data) is set up on the way.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_QUIET := --quiet --disable-pip-version-check --no-input
GENOME_CACHE := .cache/genomes
DATA_DIR := data/anntools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint format audit audit-snapshot data browser npm setup setup-runtime bench bench-annotate bench-pipeline bench-viewer load chaos lock clean

## run: set everything up and start the whole local stack (http://127.0.0.1:8080)
run: setup data
	exec $(PY) -m devstack stack

## test: set everything up, lint, and run the full test suite
test: setup lint data browser npm
	$(PY) -m pytest

## test-fast: lint, then the unit tests and the fast tier (moto in this process): under a minute,
## no emulator, browser, annotation data or network. test_processes.py (the suite's own process
## harness: real processes, a nested pytest, 20 s) runs in `make test` only.
test-fast: setup lint
	$(PY) -m pytest tests/unit tests/fast --ignore=tests/unit/test_processes.py

## lint: ruff lint and format check
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## format: apply ruff's formatting and safe fixes
format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## audit: check every pin of requirements*.txt against the vendored advisories (security/);
## offline, part of `make test` (tests/unit/test_supply_chain.py)
audit: setup
	$(PY) -m devstack.audit

## audit-snapshot: rebuild security/advisories.json from clones of advisory databases, e.g.
## make audit-snapshot SOURCES="pypa/advisory-database=../advisory-database" [ALSO="a package not pinned yet"]
audit-snapshot: setup
	@test -n "$(SOURCES)" || { echo 'give SOURCES="OWNER/NAME=CLONE ..."'; exit 2; }
	$(PY) -m devstack.audit snapshot $(SOURCES) $(if $(ALSO),--also $(ALSO))

# Development (run, test, lint): the runtime and the development requirements.
setup: $(VENV)/.installed-dev

# An AWS host: the runtime requirements only (what web, annotator and daemons import).
setup-runtime: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --require-hashes -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install $(PIP_QUIET) --require-hashes -r requirements.txt -r requirements-dev.txt
	touch $@

## browser: Debian's chromium, which the browser tests drive through Playwright
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

## npm: the JavaScript the browser tests inject (axe-core, pinned in package-lock.json)
npm: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { \
	  echo "installing Debian's npm for the browser tests' accessibility checks"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends npm; }
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

## data: fetch the genome tables and build the engine's on-disk bundle (a no-op when built)
data: setup-runtime
	$(PY) -m ann.anntools build-data --cache $(GENOME_CACHE) --out $(DATA_DIR)

## bench: every benchmark
bench: bench-annotate bench-pipeline bench-viewer

## bench-pipeline: submit->COMPLETED latency and jobs/min through the public API of the local stack
bench-pipeline: setup data
	$(PY) -m tests.bench.pipeline

## bench-viewer: the results viewer on a 1,000,000-variant job (time to first byte, storage)
bench-viewer: setup data
	$(PY) -m tests.bench.viewer

## load: page loads (16 concurrent clients) and a stream of jobs against the local stack
load: setup data
	$(PY) -m tests.bench.load

## chaos: JOBS jobs from USERS users over DURATION s under random kill -9s and network cuts,
## then the invariants as figures (lost, duplicated, stuck); SEED=n replays a run's draws
JOBS ?= 200
USERS ?= 20
DURATION ?= 300
chaos: setup data
	$(PY) -m tests.chaos --jobs $(JOBS) --users $(USERS) --seconds $(DURATION) $(if $(SEED),--seed $(SEED))

## bench-annotate: our engine against vcfanno on a >=1M-record VCF
bench-annotate: setup data
	@command -v vcfanno >/dev/null && command -v tabix >/dev/null && test -x /usr/bin/time || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq vcfanno tabix time; }
	$(PY) -m tests.bench.annotate

## lock: re-pin requirements.txt and requirements-dev.txt (with hashes) from their .in files
# Existing pins are kept unless a .in file asks otherwise; delete a .txt to re-resolve it.
LOCK_VENV := .cache/lockvenv
LOCK := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/pip install $(PIP_QUIET) pip-tools; }
	$(LOCK) --output-file requirements.txt requirements.in
	$(LOCK) --output-file requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules
