# nudgelab — the two commands: `make demo` and `make test`. Each sets itself up on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-stamp
# gbstats, the statistics tests' independent reference, pins numpy < 2 and pandas < 2: its own
# environment, inside .venv, exactly its own lock
GBSTATS      := $(VENV)/references/gbstats
GBSTATS_LOCK := tests/references/gbstats.lock
# Apache Spark for `make test-spark` (dbt-spark's session method, pyspark): its own environment
# inside .venv, so the main one stays exactly the lock; pyspark comes as a 435 MB source archive
# that takes ~20 s to build: installed once here, the stamp keeps it
SPARK_ENV  := $(VENV)/references/spark
SPARK_LOCK := tests/references/spark.lock
export NUDGELAB_HOME ?= $(CURDIR)/.nudgelab
# the generated inputs hold raw phone numbers and e-mails: they stay outside NUDGELAB_HOME
DEMO_DATA ?= $(CURDIR)/demo-data
DEMO_USERS ?= 20000
DEMO_DAYS ?= 28
# How `make lock` resolves: one version of every package for every Python >= 3.11 and platform,
# with the hashes of every file of that version, from PyPI.
LOCK_FLAGS := --extra dev --generate-hashes --universal --fork-strategy fewest --python-version 3.11 \
              --index-url https://pypi.org/simple --no-header

APP_PORT ?= 8501
STREAMLIT_FLAGS := --server.address 127.0.0.1 --server.headless true --browser.gatherUsageStats false \
                   --client.toolbarMode minimal
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup references spark java browser kannel demo app test test-spark bench nab lock upgrade-lock clean help

help:
	@echo "make demo          generate, ingest, build, publish and score a scenario, then serve the app on :$(APP_PORT)"
	@echo "make app           serve the app on the current snapshot (http://127.0.0.1:$(APP_PORT))"
	@echo "make test          set up and run the test suite (the Spark equivalence tests included)"
	@echo "make test-spark    the same project on Apache Spark: builds and equivalence with DuckDB"
	@echo "make bench         benchmarks with ratios against baselines measured in the same run"
	@echo "make nab           score the anomaly detector on the Numenta Anomaly Benchmark v1.1 (fetched once)"
	@echo "make lock          recompile $(LOCK) after a change to pyproject.toml (keeps every pin it can)"
	@echo "make upgrade-lock  move every pin to the newest release pyproject.toml allows"

# The environment is exactly the lock: pip (which every Python has) installs the locked uv by
# hash, uv installs the lock by hash and removes whatever the lock does not name, then the
# project itself goes in without its dependencies (they are the lock's).
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/{p=1} p{print; if ($$0 !~ /\\$$/) exit}' $(LOCK) > $(VENV)/uv-requirement.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(VENV)/uv-requirement.txt
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

$(GBSTATS)/.installed-stamp: $(GBSTATS_LOCK) | $(STAMP)
	@test -x $(GBSTATS)/bin/python || $(BIN)/uv venv --quiet --python $(BIN)/python $(GBSTATS)
	$(BIN)/uv pip sync --quiet --python $(GBSTATS)/bin/python --require-hashes $(GBSTATS_LOCK)
	touch $@

references: $(GBSTATS)/.installed-stamp

$(SPARK_ENV)/.installed-stamp: $(SPARK_LOCK) | $(STAMP)
	@test -x $(SPARK_ENV)/bin/python || $(BIN)/uv venv --quiet --python $(BIN)/python $(SPARK_ENV)
	$(BIN)/uv pip sync --quiet --python $(SPARK_ENV)/bin/python --require-hashes $(SPARK_LOCK)
	touch $@

spark: $(SPARK_ENV)/.installed-stamp java

# Spark needs a Java runtime (17 is what pyspark 4 supports): install one when missing.
java:
	@command -v java >/dev/null || \
		( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openjdk-17-jre-headless )

# The browser test drives Debian's Chromium through chromedriver: install both when missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver )

# The SMS tests and the benchmark run a real Kannel (bearerbox, smsbox, and the fake SMSC from
# kannel-extras) on 127.0.0.1: install it when missing. The packages' own services stay stopped.
kannel:
	@test -x /usr/sbin/bearerbox && test -x /usr/sbin/smsbox && test -x /usr/lib/kannel/test/fakesmsc || \
		( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq kannel kannel-extras && \
		  ( $(SUDO) service kannel stop >/dev/null 2>&1 || true ) )

demo: setup
	$(BIN)/nudgelab generate --out $(DEMO_DATA) --users $(DEMO_USERS) --days $(DEMO_DAYS) --seed 7
	$(BIN)/nudgelab ingest $(DEMO_DATA)
	$(BIN)/nudgelab build
	$(BIN)/nudgelab anomalies
	@echo "— a demo send: the winter promotion (with its experiment) through the file provider —"
	$(BIN)/nudgelab dispatch contacts import $(DEMO_DATA)/users.csv
	@# exit 3: everyone was already reached by an earlier demo (a campaign never reaches a person twice)
	$(BIN)/nudgelab dispatch send examples/campaigns/winter_promo.yml || [ $$? -eq 3 ]
	$(BIN)/nudgelab dispatch run --once
	$(BIN)/nudgelab ingest --spool
	@echo "sent messages: $(NUDGELAB_HOME)/outbox/ (the next nudgelab build publishes them)"
	@$(MAKE) --no-print-directory app

app: setup
	@echo "nudgelab app: http://127.0.0.1:$(APP_PORT)  (Ctrl-C stops it)"
	$(BIN)/streamlit run app.py --server.port $(APP_PORT) $(STREAMLIT_FLAGS)

# The anomaly detector on the Numenta Anomaly Benchmark (NAB v1.1, fetched once from GitHub into
# .cache/nab): per-file and per-folder standard-profile scores, causal, default parameters.
NAB_DIR := .cache/nab
nab: setup
	@test -d $(NAB_DIR)/data || git clone -q --depth 1 --branch v1.1 https://github.com/numenta/NAB.git $(NAB_DIR)
	$(BIN)/python -m experiments.anomalies.nab --data $(NAB_DIR)/data --labels $(NAB_DIR)/labels/combined_windows.json

test: setup references browser kannel spark
	$(BIN)/python -m pytest -q -m "not spark" --durations=15
	$(MAKE) --no-print-directory test-spark

# Spark binds its driver to 127.0.0.1 only (SPARK_LOCAL_IP and the profile's driver host).
test-spark: setup spark
	SPARK_LOCAL_IP=127.0.0.1 NUDGELAB_SPARK_DBT=$(CURDIR)/$(SPARK_ENV)/bin/dbt $(BIN)/python -m pytest -q -m spark

bench: setup references kannel spark
	$(BIN)/python -m bench

lock: setup
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o $(LOCK)
	$(BIN)/uv pip compile tests/references/gbstats.in $(filter-out --extra dev,$(LOCK_FLAGS)) -o $(GBSTATS_LOCK)
	$(BIN)/uv pip compile tests/references/spark.in -c $(LOCK) $(filter-out --extra dev,$(LOCK_FLAGS)) -o $(SPARK_LOCK)

upgrade-lock: setup
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) --upgrade -o $(LOCK)
	$(BIN)/uv pip compile tests/references/gbstats.in $(filter-out --extra dev,$(LOCK_FLAGS)) --upgrade -o $(GBSTATS_LOCK)
	$(BIN)/uv pip compile tests/references/spark.in -c $(LOCK) $(filter-out --extra dev,$(LOCK_FLAGS)) --upgrade -o $(SPARK_LOCK)

clean:
	rm -rf $(VENV) .nudgelab demo-data .pytest_cache
