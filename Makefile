# custseg: `make run` sets up .venv from the lock file and runs the main job;
# `make test` sets up .venv and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: install install-spark run sweep test test-fast lint format lock ui server server-stop bench bench-micro clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# --compile-bytecode: uv writes no .pyc by default, and with PYTHONDONTWRITEBYTECODE set
	@# Python never does, so every stage would compile scikit-learn and MLflow from source
	@# (measured: 9 s instead of 3.5 s to start a stage)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

# pyspark (the `spark` extra, for engine=spark) on top of the base set: its own lock with the
# same pins plus pyspark and py4j, so `make run` stays without it (MLflow imports pyspark
# whenever it is installed: half a second more to start every stage that tracks)
SPARK_STAMP := $(VENV)/.installed-spark

install-spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP) requirements-spark.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps \
		-r requirements-spark.lock
	@touch $@

data/customers.csv: | $(STAMP)
	$(BIN)/custseg generate --out $@

# The RFM pipeline's example log (versioned by transactions/data.dvc): 5,000 customers.
transactions/data/transactions.csv: | $(STAMP)
	$(BIN)/custseg generate --kind transactions --rows 5000 --out $@

# DATA=transactions: the RFM pipeline of transactions/ (its own DVC project) on its log.
DATA ?=
ifeq ($(filter-out transactions,$(DATA)),)
PROJECT := $(if $(DATA),transactions,.)
else
$(error DATA=$(DATA): leave DATA out for the Mall pipeline, or use DATA=transactions)
endif
INPUT := $(if $(DATA),transactions/data/transactions.csv,data/customers.csv)

# ENGINE=spark|sklearn: where the sweep's fits run. The engine is a DVC param (the defaults
# list of conf/config.yaml, which the sweep and select stages track), so `make run
# ENGINE=...` sets it there first: DVC refits what it changes, and git diff shows it.
ENGINE ?=
ifneq ($(filter-out sklearn spark,$(ENGINE)),)
$(error ENGINE=$(ENGINE): use ENGINE=spark or ENGINE=sklearn (the default))
endif
ifneq ($(and $(DATA),$(filter spark,$(ENGINE))),)
$(error ENGINE=spark: the RFM feature sets of DATA=transactions are transformed, which Spark does not fit yet)
endif
ENGINE_LINE := ^  - engine: [a-z]*$$

# The whole pipeline (validate -> sweeps -> select + register -> report) through DVC;
# stages call the custseg entry points, so .venv/bin goes first on PATH.
# `make run TRACKING=server`: against the team server of $$MLFLOW_TRACKING_URI (make server).
# Where runs go is not a DVC param, so a workspace already built against another store is
# up to date for DVC: publish is then run again (idempotent) to register its model there.
# `make run DATA=transactions`: the RFM pipeline (transactions/dvc.yaml), run in transactions/.
# `make run ENGINE=spark`: the sweep on Spark MLlib (installs pyspark; Java 17 needed).
TRACKING ?=
run: install $(INPUT) $(if $(filter spark,$(ENGINE)),install-spark)
	$(if $(filter spark,$(ENGINE)),@command -v java >/dev/null || { echo "ENGINE=spark needs Java 17 or later on PATH (Debian: apt-get install openjdk-17-jre-headless)" >&2; exit 1; })
	$(if $(ENGINE),@grep -q '$(ENGINE_LINE)' conf/config.yaml || { echo "conf/config.yaml: no '  - engine: <name>' line in its defaults list to set" >&2; exit 1; })
	$(if $(ENGINE),sed -i 's/$(ENGINE_LINE)/  - engine: $(ENGINE)/' conf/config.yaml)
	cd $(PROJECT) && $(if $(TRACKING),CUSTSEG_TRACKING=$(TRACKING)) PATH="$(CURDIR)/$(BIN):$$PATH" $(CURDIR)/$(BIN)/dvc repro
	$(if $(TRACKING),cd $(PROJECT) && CUSTSEG_TRACKING=$(TRACKING) PATH="$(CURDIR)/$(BIN):$$PATH" $(CURDIR)/$(BIN)/dvc repro --force --single-item publish)

# Just the sweep (36 runs by default), without DVC.
sweep: install $(INPUT)
	cd $(PROJECT) && $(CURDIR)/$(BIN)/custseg-sweep $(if $(DATA),pipeline=transactions)

# One pytest worker per logical core (pytest-xdist), a test file per worker: the files that start a
# server, a PostgreSQL or a Spark session (session fixtures) start it once. On this 2-core
# machine: 812 s instead of 1168 s for the whole suite.
PYTEST := $(BIN)/pytest -n logical --dist loadfile --durations=15

test: install-spark
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(PYTEST)

test-fast: install-spark
	$(PYTEST) -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# Re-resolve the locked dependency set after editing pyproject.toml.
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal \
		--generate-hashes --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 \
		--universal --generate-hashes --quiet -c requirements.lock -o requirements-spark.lock

# The pipeline's speed and memory against its targets: the tutorial loop vs dvc repro on
# the seed table, the Mall table, then 10k..10M generated customers (about 40 minutes;
# BENCH_SIZES=10000,100000 for a short run, bench/pipeline.py --seed-only for the seed
# table alone, about 7 minutes). Prints a table, writes bench/results.json.
bench: install
	$(BIN)/python bench/pipeline.py

# Side-by-side figures behind two design choices (model logging, silhouette sampling).
bench-micro: install
	$(BIN)/python bench/benchmarks.py

# `make ui DATA=transactions`: the RFM pipeline's store (transactions/mlflow.db)
# (its port: tracking.ui_port, 5000 and 5002 for DATA=transactions; a port in use fails)
ui: install
	@cd $(PROJECT) && port=$$($(CURDIR)/$(BIN)/python -m custseg.tracking.ui --free-port $(if $(DATA),pipeline=transactions) tracking.tracking_uri=sqlite:///mlflow.db) && \
	echo "MLflow UI starting; open $$($(CURDIR)/$(BIN)/python -m custseg.tracking.ui $(if $(DATA),pipeline=transactions) tracking.tracking_uri=sqlite:///mlflow.db)" && \
	exec $(CURDIR)/$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $$port

# A team's tracking server on this machine, in the background: PostgreSQL + mlflow server
# with basic auth on 127.0.0.1 (data, logs and secrets in .server/); prints the lines to paste.
server: install
	$(BIN)/custseg server start

server-stop: install
	$(BIN)/custseg server stop

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
