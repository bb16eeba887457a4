# nudgelab — the two commands: `make demo` and `make test`. Each sets itself up on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export NUDGELAB_HOME ?= $(CURDIR)/.nudgelab
DEMO_DATA := $(NUDGELAB_HOME)/demo-data
DEMO_USERS ?= 20000
DEMO_DAYS ?= 28

.PHONY: setup demo test bench clean help

help:
	@echo "make demo   generate, ingest, build and publish the marts and experiment reports, list anomaly alerts"
	@echo "make test   set up and run the test suite"
	@echo "make bench  benchmarks with ratios against baselines measured in the same run"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/nudgelab generate --out $(DEMO_DATA) --users $(DEMO_USERS) --days $(DEMO_DAYS) --seed 7
	$(BIN)/nudgelab ingest $(DEMO_DATA)
	$(BIN)/nudgelab build
	$(BIN)/nudgelab anomalies --min-severity major

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .nudgelab .pytest_cache
