# flchain: the two commands of the README are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo localnet down status test unit lint format bench

setup:
	VENV=$(VENV) bash scripts/setup.sh

demo: setup  # extra options: make demo DEMO_ARGS="--alpha 0.5 --attack label_flip"
	$(VENV)/bin/flchain demo $(DEMO_ARGS)

localnet: setup
	$(VENV)/bin/flchain localnet up

down:
	$(VENV)/bin/flchain localnet down

status:
	$(VENV)/bin/flchain localnet status

# Everything: unit, property and real-CometBFT integration tests.
test: setup
	$(PY) -m pytest -q

# The fast lane: no CometBFT process is started.
unit: setup
	$(PY) -m pytest -q -m "not integration"

# Lint, format check, types, and the one-way import graph between packages.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) scripts/check_layers.py

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) benchmarks/bench_chain.py
	$(PY) benchmarks/bench_simulator.py
	$(PY) benchmarks/bench_round_latency.py
	$(PY) benchmarks/bench_gateway_watchers.py
	$(PY) benchmarks/bench_large_models.py
