# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
APP     = $(VENV)/.cspine-app
DEV     = $(VENV)/.cspine-dev
export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test lint bench bundle setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the app alone (no TensorFlow): enough to analyse studies with the bundled model
$(APP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# app + training + test tools
$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $@ $(APP)

setup: $(DEV)

## analyse the bundled demo study with the bundled demo model
demo: $(APP)
	$(BIN)/cspine demo

## the test suite (lint + import contracts are tests too)
test: $(DEV)
	$(BIN)/python -m pytest

lint: $(DEV)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

## benchmarks: results are written to docs/benchmarks.md by hand from their output
bench: $(DEV)
	$(BIN)/python -m pytest -m perf -s tests/perf

## the one-folder desktop bundle (PyInstaller) + its offline first-start checks
bundle: $(DEV)
	$(BIN)/python -m pip install --quiet -e '.[installer]'
	$(BIN)/python installer/build.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
