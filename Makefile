# The two set-up commands of the README: `make bench` (the default benchmark on the best
# backend present) and `make test` (lint, the test suite, and the XLA:CPU lane). Each
# creates the virtual environments it needs first.
# PYTHON empty: scripts/setup.sh picks (the TorchNeuron DLAMI's venv, else python3)
PYTHON ?=
VENV ?= .venv
VENV_XLA ?= .venv-xla
BIN := $(VENV)/bin

.PHONY: bench test test-fast test-main test-docs test-xla lint setup
bench: $(VENV)/.installed
	$(BIN)/trnbench run

test: lint test-main test-docs test-xla

# tests/integration, tests/unit and tests/benchmarks (pyproject's testpaths); the browser
# test needs chromium
test-main: $(VENV)/.installed
	scripts/setup-browser.sh
	$(BIN)/python -m pytest

# the edit loop: the unit tests, which start no process (tests/integration has the
# subprocesses, torchrun runs, sweeps, scaling series, Slurm and the browser); not a
# substitute for `make test`
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest tests/unit -x -q

# the doc-test: every shell example of README.md and docs/ checked, the runnable ones run
# small (tests/doc_examples.py); its pages spread over the workers (--dist load)
test-docs: $(VENV)/.installed
	$(BIN)/python -m pytest tests/docs --dist load

# the Neuron XLA code path on XLA:CPU, in its own environment (torch 2.9 + torch-xla 2.9)
test-xla: $(VENV_XLA)/.installed
	PJRT_DEVICE=CPU $(VENV_XLA)/bin/python -m pytest tests/xla

lint: $(VENV)/.installed
	$(BIN)/ruff check .

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup.sh
	touch $@

$(VENV_XLA)/.installed: pyproject.toml scripts/setup-xla.sh
	PYTHON=$(PYTHON) VENV_XLA=$(VENV_XLA) scripts/setup-xla.sh
	touch $@
