# Veritrain — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
VT := $(VENV)/bin/veritrain
export APE_DATA_FOLDER := $(CURDIR)/.veritrain/ape
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup test demo demo-remote lint artifacts check-artifacts gas bench bench-scale clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed node_modules/.installed  ## install everything (idempotent)
	@$(PY) -m veritrain.dev.solc install

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "error: Python 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

node_modules/.installed: package.json
	@command -v npm >/dev/null || { echo "error: npm is required (Node 20+)"; exit 1; }
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

test: setup  ## run the whole test suite (starts and stops its own Anvil and IPFS)
	$(PY) -m pytest

demo: setup  ## a whole job on a fresh stack: 3 honest workers, 1 cheater caught and slashed (DEMO_ARGS=--quick)
	$(PY) -m demo $(DEMO_ARGS)

demo-remote: setup  ## the demo on a remote-like chain: 429s, log-range caps, stuck txs, a reorg, a provider killed
	$(PY) -m demo --network remote-sim $(DEMO_ARGS)

lint: setup  ## ruff on everything, mypy on veritrain
	$(VENV)/bin/ruff check veritrain worker requester verifier bench demo adversary reference scripts tests
	$(VENV)/bin/mypy veritrain

artifacts: setup  ## recompile contracts/ into the shipped ABIs and bytecode
	$(PY) -m veritrain.dev.solc build

check-artifacts: setup  ## fail when shipped artifacts drift from contracts/
	$(PY) -m veritrain.dev.solc check

gas: setup  ## gas of every contract function on a representative scenario
	$(PY) -m bench.gas

bench: setup  ## every benchmark, side by side: .veritrain/bench/results.json
	$(PY) -m bench

bench-scale: setup  ## cost per task for N = 32, 256, 1,024 tasks, 4 and 8 workers (long)
	$(PY) -m bench.scale --full

clean:  ## remove local state (stack, caches); keeps .venv and node_modules
	-$(VT) dev down
	rm -rf .veritrain .pytest_cache .hypothesis
