# crimecast: the stable front door. `make run` and `make test` do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project
export DAGSTER_HOME ?= $(CURDIR)/warehouse/dagster_home

.PHONY: help install manifest run pipeline dashboards serve test lint unit test-spark spark-extra dev bench bench-scale clean

help:
	@echo "make run    - install, build the warehouse on the built-in sample, print accuracy"
	@echo "make test   - install, lint (ruff, sqlfluff) and run the whole test suite"
	@echo "make test-spark - the dbt project on local Apache Spark against DuckDB (needs Java 17)"
	@echo "make dev    - the Dagster UI on http://127.0.0.1:3000"
	@echo "make dashboards - publish a read-only copy and build the Evidence site (needs npm)"
	@echo "make serve  - the read-only forecast API on http://127.0.0.1:8000 (docs at /docs)"
	@echo "make bench  - the real-data benchmark (needs ../shared/data or CRIMECAST_DATA)"
	@echo "make bench-scale - the pipeline at 100k, 1M and 10M generated incidents (SIZES=100k,1M; ENGINE=spark)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "crimecast needs Python 3.11, found " + sys.version.split()[0])'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# dbt parse, with the vars the pipeline's dbt steps pass (orchestration/defs/dbt.py); dagster-dbt
# runs the `dbt` it finds on PATH
manifest: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster-dbt project prepare-and-package --file orchestration/defs/dbt.py

# The pipeline, then the dashboards when Node.js/npm are there (skipped with a note if not).
run: pipeline
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory dashboards; \
	else echo "npm not found: dashboards not built (install Node.js 18+ and run 'make dashboards')"; fi

pipeline: manifest
	$(BIN)/crimecast run

dashboards: $(STAMP)
	$(BIN)/python -m serving.publish
	$(BIN)/python -m serving.boundaries
	cd dashboards && { test -d node_modules || npm install --no-audit --no-fund; } && npm run sources && npm run build
	@echo "dashboards built: dashboards/build (preview: python3 -m http.server 3001 --bind 127.0.0.1 --directory dashboards/build)"

serve: $(STAMP)
	$(BIN)/python -m serving.api --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_project --processes 2

# two workers, one test file each at a time (module fixtures built once); the longest files
# (site build, killed runs, Spark) start first, in tests/conftest.py's order (which xdist would
# otherwise replace by the number of tests per file). `pytest -m "not slow"` skips the slowest.
unit: manifest
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The sample built with the dbt `spark` target equals the DuckDB build (tests/test_spark.py),
# alone; installs the [spark] extra first. `make unit` (so `make test`) runs the same test when
# Java and the extra are there (it shares the suite's sample warehouse), and skips it otherwise.
test-spark: manifest spark-extra
	$(BIN)/pytest -q tests/test_spark.py

# the [spark] extra, when Java is there (without Java the Spark test is skipped)
spark-extra: $(STAMP)
	@if command -v java >/dev/null 2>&1; then \
	$(BIN)/python -c 'import pyspark, dbt.adapters.spark' 2>/dev/null || $(BIN)/pip install --quiet -e '.[spark]'; \
	else echo "java not found: the Spark test (tests/test_spark.py) will skip; install a Java 17 runtime"; fi

test: lint spark-extra unit

dev: manifest
	$(BIN)/python -m orchestration.dagster_home "$(DAGSTER_HOME)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster dev -h 127.0.0.1 -p 3000

# the peer forecasters (statsforecast, mlforecast + LightGBM) are an optional extra
bench: manifest
	$(BIN)/python -c 'import statsforecast, mlforecast, lightgbm' 2>/dev/null || $(BIN)/pip install --quiet -e '.[peers]'
	$(BIN)/python bench/run_bench.py

SIZES ?= 100k,1M,10M
# ENGINE=spark: the same sizes with the dbt spark target (bench/scale_results_spark.md)
ENGINE ?= duckdb
bench-scale: manifest $(if $(filter spark,$(ENGINE)),spark-extra)
	$(BIN)/python bench/scale.py --sizes $(SIZES) --engine $(ENGINE)

clean:
	rm -rf warehouse dbt_project/target dbt_project/target-spark dbt_project/logs target logs .pytest_cache
