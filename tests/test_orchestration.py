"""Orchestration: the nightly DAG, backfills, the run log and a real standalone Spark cluster."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

from jobs import ingest
from jobs.cli import backfill_command
from jobs.common.cadence import due_by_cadence
from jobs.common.spark import DRIVER_JAVA_OPTIONS_ENV
from tests.conftest import LAYERS, QUICK_EVALUATION, write_config

PROJECT = Path(__file__).resolve().parents[1]
DAGS = PROJECT / "dags"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    # as Airflow parses a bundle: its folder is importable (the DAG imports lakecast_alerts)
    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "lakecast_nightly" in dagbag.dags


def test_nightly_dag_structure(dagbag):
    dag = dagbag.dags["lakecast_nightly"]
    assert {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} == {
        "ingest": ["features"],
        "features": ["accuracy"],
        "accuracy": ["monitor"],
        "monitor": ["choose_training", "drift_alert"],
        "drift_alert": [],
        "choose_training": ["evaluate", "keep_models"],
        "evaluate": ["train"],
        "train": ["score"],
        "keep_models": ["score"],
        "score": ["maintenance_due"],
        "maintenance_due": ["maintain"],
        "maintain": [],
    }
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.get_task("score").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("train").retries == 2
    # the drivers' extra JVM options (the tests set them, conftest) follow lakecast's log settings
    java = dag.get_task("features").conf["spark.driver.extraJavaOptions"]
    assert java.startswith("-Dlog4j2.configurationFile=file:") and java.endswith(" " + os.environ[DRIVER_JAVA_OPTIONS_ENV])


def test_run_date_is_rendered_from_the_data_interval(dagbag):
    dag = dagbag.dags["lakecast_nightly"]
    task = dag.get_task("features")
    context = {"data_interval_start": pendulum.datetime(2011, 12, 9, tz="UTC"), "run_id": "scheduled__x"}
    rendered = task.render_template(task.application_args, context, jinja_env=dag.get_template_env())
    assert rendered == ["--run-date", "2011-12-09", "--run-id", "scheduled__x:features"]
    assert task.application.endswith("jobs/features.py")
    # evaluate and train get the scope the branch decided (all, or only the drifting segments)
    assert dag.get_task("evaluate").application_args[-3:] == ["--scope", dag_module().SCOPE,
                                                              "--reason=" + dag_module().REASON]
    assert "xcom_pull(task_ids='choose_training', key='scope')" in dag_module().SCOPE


def dag_module():
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))
    import lakecast_nightly

    return lakecast_nightly


def test_dag_files_import_no_heavy_libraries():
    code = (
        "import sys; sys.path.insert(0, 'dags'); import lakecast_nightly; "
        "heavy = [m for m in ('pyspark', 'pandas', 'prophet') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "day, cadence, expected",
    [
        (dt.date(2011, 12, 5), "weekly", True),  # a Monday
        (dt.date(2011, 12, 6), "weekly", False),
        (dt.date(2011, 12, 1), "monthly", True),
        (dt.date(2011, 12, 2), "monthly", False),
        (dt.date(2011, 12, 2), "daily", True),
    ],
)
def test_retrain_cadence(day, cadence, expected):
    assert due_by_cadence(day, cadence) is expected


def contents(spark, table, drop=("run_id",)):
    df = spark.table(table)
    return sorted(tuple(r) for r in df.select(*[c for c in df.columns if c not in drop]).collect())


@pytest.mark.slow
def test_backfill_is_resumable_and_a_forced_rerun_is_idempotent(spark, slice_csv, tmp_path, capsys):
    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    cfg = write_config(tmp_path / "bf", {"dataset": {**write_config(tmp_path / "base").raw["dataset"],
                                                     "source": str(slice_csv)}, "evaluation": QUICK_EVALUATION})
    args = ["--start", "2011-12-08", "--end", "2011-12-09", "--config", str(cfg.path)]
    assert backfill_command(args) == 0
    tables = ("silver.demand", "gold.model_selection", "gold.models", "gold.forecasts", "gold.forecast_accuracy")
    first = {t: contents(spark, t) for t in tables}
    dates = {r.run_date for r in spark.table("gold.forecasts").select("run_date").distinct().collect()}
    assert dates == {dt.date(2011, 12, 8), dt.date(2011, 12, 9)}
    # 12-08 has no model yet: trained; 12-09 (weekly on Monday, no drift judged yet) keeps it
    assert {r.run_date for r in spark.table("gold.models").select("run_date").distinct().collect()} == {
        dt.date(2011, 12, 8)
    }
    capsys.readouterr()
    assert backfill_command(args) == 0  # resumed: everything complete, nothing rerun
    assert capsys.readouterr().out.count("already complete, skipped") == 2
    # forced: the last date runs again and every table is as it was
    assert backfill_command(["--start", "2011-12-09", "--end", "2011-12-09", "--config", str(cfg.path), "--force"]) == 0
    assert "already complete" not in capsys.readouterr().out
    assert {t: contents(spark, t) for t in tables} == first
    runs = spark.table("gold.pipeline_runs").filter("status <> 'running'")
    assert runs.filter("status = 'failed'").count() == 0
    assert runs.filter("job = 'score'").count() == 3


def test_a_failing_job_exits_non_zero_and_leaves_a_failed_row(spark, make_cfg):
    cfg = make_cfg()
    bad = make_cfg({"dataset": {**cfg.raw["dataset"],
                                "columns": {**cfg.raw["dataset"]["columns"], "quantity": "Qty"}}},
                   name="bad")
    code = ingest.main(["--run-date", "2011-12-09", "--config", str(bad.path), "--run-id", "bad-run"])
    assert code == 2
    rows = spark.table("gold.pipeline_runs").filter("run_id = 'bad-run'").orderBy("finished_at").collect()
    assert [r.status for r in rows] == ["running", "failed"]  # the start, then the outcome
    row = rows[-1]
    assert (row.job, row.status, row.run_date) == ("ingest", "failed", dt.date(2011, 12, 9))
    assert "lacks the configured columns {'quantity': 'Qty'}" in row.error
    assert row.finished_at >= row.started_at


def airflow_env(home: Path, config: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[2]"}',
        "LAKECAST_CONFIG": str(config),
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
    }


@pytest.mark.slow
def test_airflow_dags_test_runs_the_nightly_dag_end_to_end(slice_csv, tmp_path):
    base = write_config(tmp_path / "base")
    cfg = write_config(tmp_path / "af", {"dataset": {**base.raw["dataset"], "source": str(slice_csv)},
                                         "evaluation": QUICK_EVALUATION})
    env = airflow_env(tmp_path / "airflow_home", cfg.path)
    airflow = str(VENV_BIN / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    run = subprocess.run(
        # triggered at midnight after 2011-12-09: data interval [12-09, 12-10), run date 12-09
        [airflow, "dags", "test", "lakecast_nightly", "2011-12-10"], env=env, capture_output=True, text=True,
        timeout=2400,  # 7 spark-submit jobs; the suite shares 2 cores between two workers
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    assert "training: yes (no model trained on or before the run date yet)" in log

    from deltalake import DeltaTable

    runs = DeltaTable(cfg.table("pipeline_runs").path).to_pandas()
    runs = runs[runs["status"] != "running"]
    assert sorted(runs["job"]) == ["accuracy", "evaluate", "features", "ingest", "monitor", "score", "train"]
    assert set(runs["status"]) == {"success"}
    # the branch's decision reached the training jobs' run-log rows
    import json

    trained = json.loads(runs.loc[runs["job"] == "train", "detail"].iloc[0])
    assert (trained["scope"], trained["training_reason"]) == ("all", "no model trained on or before the run date yet")
    assert set(runs["run_date"].astype(str)) == {"2011-12-09"}
    assert all(r.startswith("manual__") or ":" in r for r in runs["run_id"])
    forecasts = DeltaTable(cfg.table("forecasts").path).to_pandas()
    assert forecasts["segment_id"].nunique() >= 10
