# Veritrain — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
VT := $(VENV)/bin/veritrain
export APE_DATA_FOLDER := $(CURDIR)/.veritrain/ape
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup chromium explorer test demo demo-remote lint artifacts check-artifacts gas bench bench-scale clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed node_modules/.installed chromium  ## install everything (idempotent)
	@$(PY) -m veritrain.dev.solc install

# The explorer's browser tests drive Debian's Chromium (browser downloads by Playwright's or
# Selenium's own installers are blocked here). Installed with apt-get where missing: as root, or
# through passwordless sudo; otherwise say so (those tests then skip, naming the reason).
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "warning: no chromium/chromedriver and no apt-get: the explorer's browser tests will be skipped"; \
	else \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "installing Debian's chromium and chromium-driver (the explorer's browser tests)"; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      chromium chromium-driver >/dev/null ) || \
	  echo "warning: could not install chromium with apt-get: the explorer's browser tests will be skipped"; \
	fi

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

demo: setup  ## a whole job on a fresh stack: 3 honest workers, 1 cheater caught and slashed, watched in the explorer (DEMO_ARGS=--quick, --keep)
	$(PY) -m demo $(DEMO_ARGS)

demo-remote: setup  ## the demo on a remote-like chain: 429s, log-range caps, stuck txs, a reorg, a provider killed
	$(PY) -m demo --network remote-sim $(DEMO_ARGS)
explorer: setup  ## the market explorer in the browser, on the network of VERITRAIN_* / --network (EXPLORER_ARGS=--port N)
	$(VT) explorer $(EXPLORER_ARGS)

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

GPU_PYTHON ?= python3
GPU_OUT ?= $(if $(OUT),$(OUT),.veritrain/gpu-check)
GPU_WHEELS := .build/gpu-wheels
#: what the engine imports beyond torch and numpy, as wheels for the accelerator's Python 3.12
GPU_WHEEL_PINS := pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 typing-extensions==4.16.0 rfc8785==0.1.4

.PHONY: gpu-check gpu-wheels
gpu-check:  ## the CUDA path on this machine's GPU in < 8 min: one JSON + checkpoints in GPU_OUT; skips cleanly without CUDA
	$(GPU_PYTHON) scripts/gpu_check.py --out $(GPU_OUT) --wheels $(GPU_WHEELS)

gpu-wheels:  ## download the wheels gpu-check needs on a machine with no registry (Python 3.12, x86_64)
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d $(GPU_WHEELS) $(GPU_WHEEL_PINS)
