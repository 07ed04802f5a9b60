# The project's commands. `make run` and `make test` do all the set-up themselves:
# a virtualenv in .venv, the project installed from pyproject.toml, RabbitMQ running.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help run receiver worker tail demo simulators bench test test-cluster test-unit lint fmt config broker postgres chromium wrk clean

help:
	@echo "make run        serve receiver + worker in the foreground (http://127.0.0.1:8080)"
	@echo "make tail       print the CloudEvents passing on the bus"
	@echo "make demo       the LeanIX <-> automation loop once per platform, against the simulators"
	@echo "make simulators serve the vendor simulators on ports 9101-9105"
	@echo "make bench      benchmarks (BENCH_ARGS=--quick for a short run); results in bench-results/"
	@echo "make test       the whole suite (unit + integration over a real RabbitMQ; as root also a 3-node cluster)"
	@echo "make test-unit  unit tests only (no broker needed)"
	@echo "make test-cluster the failover test alone, on a 3-node RabbitMQ cluster (deploy/rabbitmq-cluster.sh; root)"
	@echo "make lint       ruff + mypy"
	@echo "make fmt        ruff format"
	@echo "make config     rewrite config/default.toml from the settings' fields (service/settings.py)"
	@echo "make broker     make sure RabbitMQ is running (start or install it)"
	@echo "make postgres   make sure PostgreSQL is running, with the tests' role"
	@echo "make chromium   make sure Debian's chromium is installed (the console's browser test)"
	@echo "make wrk        make sure wrk is installed (the ingest benchmark's load; optional)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "cannot create a virtualenv: on Debian, apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

broker:
	@bash deploy/ensure-broker.sh

postgres:
	@bash deploy/ensure-postgres.sh

# `make run` uses config/local.toml (development credentials) unless SERVICE_CONFIG is set.
run receiver worker tail: export SERVICE_CONFIG ?= config/local.toml

run: $(STAMP) broker
	$(BIN)/python -m service

tail: $(STAMP) broker
	$(BIN)/python -m service tail

demo: $(STAMP) broker
	$(BIN)/python -m service demo

simulators: $(STAMP)
	$(BIN)/python -m service simulators

bench: $(STAMP) broker wrk
	@$(BIN)/python -c 'import pyinstrument' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m tests.benchmarks $(BENCH_ARGS)

receiver: $(STAMP) broker
	$(BIN)/python -m service receiver

worker: $(STAMP) broker
	$(BIN)/python -m service worker

chromium:
	@bash deploy/ensure-chromium.sh

wrk:
	@bash deploy/ensure-wrk.sh

test: $(STAMP) broker postgres chromium
	$(BIN)/python -m pytest

# The cluster failover test alone, with its output. `make test` runs it too: the session
# starts its own three-node cluster (deploy/rabbitmq-cluster.sh, own names and ports) in the
# background and stops it at the end; it is skipped, saying why, where RabbitMQ cannot start
# several nodes (not root, RabbitMQ missing, a node not up in time). BRIDGE_CLUSTER_TESTS=0
# turns it off.
test-cluster: $(STAMP) broker postgres
	$(BIN)/python -m pytest -s tests/faults/test_cluster_failover.py

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check service tests
	$(BIN)/ruff format --check service tests
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format service tests
	$(BIN)/ruff check --fix service tests

config: $(STAMP)
	$(BIN)/python -m service settings defaults > config/default.toml.new
	mv config/default.toml.new config/default.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
