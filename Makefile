# lakecast: the two commands a newcomer needs are `make demo` and `make test`.
# Both do the whole set-up first (idempotent; a second run takes seconds).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JARS_STAMP := .cache/jars/.resolved
PIP_VERSION := 26.3
RUN_DATE ?= 2011-12-09
# The nightly run that processes day D is triggered at midnight after it: its data interval is
# [D, D+1), so `airflow dags test` takes D+1.
DAG_DATE = $(shell date -u -d "$(RUN_DATE) + 1 day" +%F)

# Embedded Airflow: home inside the project (git-ignored), SQLite, no examples, our dags/.
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/airflow_home \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__UNIT_TEST_MODE=False \
	AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[2]"}' \
	PATH=$(CURDIR)/$(BIN):$$PATH

.PHONY: setup lock demo nightly run-chain test test-fast airflow-init airflow-ui sql-server beeline mlflow-ui clean-lake clean

setup: $(STAMP) $(JARS_STAMP)

# Every distribution comes from the lock file (exact versions, transitive ones included); the
# project itself is installed on top without resolving anything.
$(STAMP): setup.cfg pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION) setuptools==84.2.1 wheel==0.48.0
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

# Regenerate the lock files from setup.cfg's pins (needs the network; commit the result).
UV_VERSION := 0.13.9
lock: $(STAMP)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile setup.cfg --universal --python-version 3.11 --annotation-style line \
		--custom-compile-command "make lock" -o requirements.lock
	$(BIN)/uv pip compile setup.cfg --extra dev --universal --python-version 3.11 --annotation-style line \
		--custom-compile-command "make lock" -o requirements-dev.lock

# Delta Lake's JVM jars, resolved once from Maven Central into .cache/jars.
$(JARS_STAMP): $(STAMP) jobs/common/jars.py
	$(BIN)/python -m jobs.common.jars
	touch $@

# The main job end to end: the nightly DAG for the bundled data's last date, through Airflow.
demo: airflow-init
	$(AIRFLOW_ENV) $(BIN)/airflow dags test lakecast_nightly $(DAG_DATE)
	$(BIN)/lakecast summary --run-date $(RUN_DATE)
	$(BIN)/lakecast report --run-date $(RUN_DATE)

# The nightly DAG on your own data: make nightly CONFIG=conf/sales.yaml RUN_DATE=2023-12-31
# (the DAG reads its config from LAKECAST_CONFIG; a lake of its own comes from the config).
nightly: airflow-init
	@test -n "$(CONFIG)" || (echo "usage: make nightly CONFIG=path/to/config.yaml RUN_DATE=YYYY-MM-DD" >&2; exit 2)
	$(BIN)/lakecast check --config $(CONFIG)
	$(AIRFLOW_ENV) LAKECAST_CONFIG=$(abspath $(CONFIG)) $(BIN)/airflow dags test lakecast_nightly $(DAG_DATE)
	$(BIN)/lakecast summary --run-date $(RUN_DATE) --config $(CONFIG)

# The same chain in one process, without Airflow.
run-chain: setup
	$(BIN)/lakecast run --run-date $(RUN_DATE)
	$(BIN)/lakecast report --run-date $(RUN_DATE)

airflow-init: setup
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate > /dev/null

# The Airflow UI on http://localhost:8080 (login printed at start).
airflow-ui: airflow-init
	$(AIRFLOW_ENV) $(BIN)/airflow standalone

# SQL endpoint over the lake: Spark's Thrift JDBC/ODBC server on localhost:$(SQL_PORT).
SQL_PORT ?= 10000
sql-server: setup
	$(BIN)/lakecast sql-server --port $(SQL_PORT)

# Spark's bundled JDBC client, connected to `make sql-server`.
beeline: setup
	$$($(BIN)/python -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent / "bin" / "beeline")') \
		-u jdbc:hive2://localhost:$(SQL_PORT) -n $$USER

# The MLflow UI over the lake's tracked runs (evaluate, train) on http://127.0.0.1:$(MLFLOW_PORT).
# The UI server comes with the full mlflow distribution, whose pins clash with the project's
# (pyarrow): it gets its own venv, .venv-mlflow; the project itself only needs mlflow-skinny.
MLFLOW_VERSION := 3.17.2
MLFLOW_PORT ?= 5000
LAKE ?= $(CURDIR)/lake
mlflow-ui:
	test -x .venv-mlflow/bin/mlflow || ($(PYTHON) -m venv .venv-mlflow && \
		.venv-mlflow/bin/pip install --quiet mlflow==$(MLFLOW_VERSION))
	.venv-mlflow/bin/mlflow ui --backend-store-uri sqlite:///$(LAKE)/_mlflow/mlflow.db \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

# Two worker processes (pytest-xdist), each with its own Spark session, metastore and Airflow
# home; a test file's tests stay on one worker so its module fixtures are built once.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

clean-lake:
	rm -rf lake

clean: clean-lake
	rm -rf $(VENV) .venv-mlflow .cache build *.egg-info airflow_home
