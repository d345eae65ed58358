# flchain: the two commands of the README are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo localnet down status test bench

setup:
	VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(VENV)/bin/flchain demo

localnet: setup
	$(VENV)/bin/flchain localnet up

down:
	$(VENV)/bin/flchain localnet down

status:
	$(VENV)/bin/flchain localnet status

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_chain.py
	$(PY) benchmarks/bench_simulator.py
	$(PY) benchmarks/bench_round_latency.py
