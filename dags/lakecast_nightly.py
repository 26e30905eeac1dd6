"""Nightly lakecast: ingest -> features -> accuracy -> monitor -> (evaluate -> train when due) ->
score (-> maintain once a week), one spark-submit each.

Retraining is due on the cadence's days, when no model exists, when forced, or when the monitor
flags drift (then only the drifting segments, or all above monitor.retrain_all_share): the
branch ``choose_training`` decides, prints why and passes the scope to evaluate and train.
Accuracy runs before scoring: it scores past forecasts, and the monitor needs its errors.

The run date is the start of the DAG run's data interval (the day whose sales are complete when
the run starts), never ``now()``. Master and deploy mode come from the ``spark_default``
connection: moving to a cluster means changing that connection only. This file only wires
operators; the jobs and the retraining decision run inside the tasks.
"""

from __future__ import annotations

import glob
import os
import sys
from datetime import timedelta

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable
from lakecast_alerts import WebhookNotifier

PROJECT = os.environ.get("LAKECAST_HOME", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JARS = os.environ.get("LAKECAST_SPARK_JARS") or ",".join(sorted(glob.glob(f"{PROJECT}/.cache/jars/*.jar")))
PYSPARK_PYTHON = os.environ.get("LAKECAST_PYSPARK_PYTHON", sys.executable)
LOG4J = f"{PROJECT}/jobs/common/log4j2.properties"
# extra JVM options for the jobs' drivers (see jobs/common/spark.py, DRIVER_JAVA_OPTIONS_ENV)
DRIVER_JAVA_OPTIONS = os.environ.get("LAKECAST_DRIVER_JAVA_OPTIONS", "")
RUN_DATE = "{{ data_interval_start | ds }}"
# all segments, or only the drifting ones, and why: what choose_training decided
SCOPE = "{{ ti.xcom_pull(task_ids='choose_training', key='scope') or 'all' }}"
REASON = "{{ ti.xcom_pull(task_ids='choose_training', key='why') }}"

default_args = {
    "owner": "lakecast",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    # a task that fails for good (retries spent) posts to the webhook of the lakecast_alerts
    # connection, if there is one (see lakecast_alerts.py)
    "on_failure_callback": WebhookNotifier(),
}


def spark_job(job: str, args: tuple[str, ...] = (), **kwargs: object) -> SparkSubmitOperator:
    """One lakecast job as a spark-submit task; the job's own run id ties it to this DAG run."""
    return SparkSubmitOperator(
        task_id=job,
        application=f"{PROJECT}/jobs/{job}.py",
        application_args=["--run-date", RUN_DATE, "--run-id", f"{{{{ run_id }}}}:{job}", *args],
        conn_id="spark_default",
        jars=JARS or None,
        conf={
            "spark.pyspark.python": PYSPARK_PYTHON,
            "spark.pyspark.driver.python": PYSPARK_PYTHON,
            # lakecast's log settings: warnings and errors from Spark, not every INFO line
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J} {DRIVER_JAVA_OPTIONS}".strip(),
        },
        name=f"lakecast-{job}",
        **kwargs,
    )


with DAG(
    dag_id="lakecast_nightly",
    description="Ingest the day's drop, rebuild features, backtest and retrain on cadence, score",
    # The interval [D 00:00, D+1 00:00) runs just after midnight; its run date is D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2011, 12, 1, tz="UTC"),
    # Missed nights are caught up on purpose with `airflow backfill create` or
    # `lakecast backfill`, not silently on unpause.
    catchup=False,
    # Runs share one lake (and, embedded, one Derby metastore): one at a time, in date order.
    max_active_runs=1,
    default_args=default_args,
    params={"force_train": False},
    tags=["lakecast"],
) as dag:

    @task.branch(task_id="choose_training")
    def choose_training(data_interval_start=None, params=None, ti=None) -> str:
        """Backtest and train on retrain days, when no model exists yet, when forced, or for the
        segments the monitor flags; else keep the models. The scope goes to evaluate and train."""
        from jobs.common.cadence import TrainingDecision, training_decision
        from jobs.common.config import load_config

        if params and params.get("force_train"):
            decision = TrainingDecision(True, "all", "forced by the force_train param")
        else:
            decision = training_decision(load_config(), data_interval_start.date())
        print(decision)
        ti.xcom_push(key="scope", value=decision.scope)
        ti.xcom_push(key="why", value=decision.why)
        return "evaluate" if decision.train else "keep_models"

    @task(task_id="drift_alert")
    def drift_alert(data_interval_start=None) -> bool:
        """Alert (lakecast_alerts webhook) when the share of drifting segments passes
        monitor.alert_share."""
        from lakecast_alerts import alert_on_drift

        from jobs.common.cadence import drift_counts
        from jobs.common.config import load_config

        cfg, day = load_config(), data_interval_start.date()
        counts = drift_counts(cfg, day)
        if counts is None:
            print(f"drift: no figures for {day}")
            return False
        return alert_on_drift(day.isoformat(), *counts, threshold=cfg.monitor.alert_share)

    @task.short_circuit(task_id="maintenance_due")
    def maintenance_due(data_interval_start=None) -> bool:
        """OPTIMIZE and VACUUM the lake once a week (maintenance.weekday), after the night's work."""
        from jobs.common.cadence import maintenance_due as due
        from jobs.common.config import load_config

        cfg = load_config()
        print(f"maintenance: {'yes' if due(cfg, data_interval_start.date()) else 'no'} "
              f"(weekly on {cfg.maintenance.weekday})")
        return due(cfg, data_interval_start.date())

    ingest = spark_job("ingest")
    features = spark_job("features")
    accuracy = spark_job("accuracy")
    monitor = spark_job("monitor")
    evaluate = spark_job("evaluate", args=("--scope", SCOPE, "--reason=" + REASON))
    train = spark_job("train", args=("--scope", SCOPE, "--reason=" + REASON))
    keep_models = EmptyOperator(task_id="keep_models")
    score = spark_job("score", trigger_rule="none_failed_min_one_success")

    branch = choose_training()
    ingest >> features >> accuracy >> monitor >> [drift_alert(), branch]
    branch >> [evaluate, keep_models]
    evaluate >> train
    [train, keep_models] >> score >> maintenance_due() >> spark_job("maintain")
