"""Nightly lakecast: ingest -> features -> (evaluate -> train on retrain days) -> score -> accuracy
(-> maintain once a week), one spark-submit each.

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
RUN_DATE = "{{ data_interval_start | ds }}"

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


def spark_job(job: str, **kwargs: object) -> SparkSubmitOperator:
    """One lakecast job as a spark-submit task; the job's own run id ties it to this DAG run."""
    return SparkSubmitOperator(
        task_id=job,
        application=f"{PROJECT}/jobs/{job}.py",
        application_args=["--run-date", RUN_DATE, "--run-id", f"{{{{ run_id }}}}:{job}"],
        conn_id="spark_default",
        jars=JARS or None,
        conf={
            "spark.pyspark.python": PYSPARK_PYTHON,
            "spark.pyspark.driver.python": PYSPARK_PYTHON,
            # lakecast's log settings: warnings and errors from Spark, not every INFO line
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J}",
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
    def choose_training(data_interval_start=None, params=None) -> str:
        """Backtest and train on retrain days, when no model exists yet, or when forced; else keep
        the models."""
        from jobs.common.cadence import training_decision
        from jobs.common.config import load_config

        if params and params.get("force_train"):
            print("training: forced by the force_train param")
            return "evaluate"
        train, why = training_decision(load_config(), data_interval_start.date())
        print(f"training: {'yes' if train else 'no'} ({why})")
        return "evaluate" if train else "keep_models"

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
    evaluate = spark_job("evaluate")
    train = spark_job("train")
    keep_models = EmptyOperator(task_id="keep_models")
    score = spark_job("score", trigger_rule="none_failed_min_one_success")
    accuracy = spark_job("accuracy")

    ingest >> features >> choose_training() >> [evaluate, keep_models]
    evaluate >> train
    [train, keep_models] >> score >> accuracy >> maintenance_due() >> spark_job("maintain")
