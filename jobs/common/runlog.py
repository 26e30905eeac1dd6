"""The run log, ``gold.pipeline_runs``: every job run appends a ``running`` row when it starts and
a ``success`` or ``failed`` row when it ends. Blind appends, so jobs running side by side never
conflict on the log; a run with only its ``running`` row never finished (killed, machine lost)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.contracts import contract_for
from jobs.common.lake import ensure_table

log = logging.getLogger(__name__)


@dataclass
class JobMetrics:
    """What a job reports about its run; every field is optional."""

    rows_in: int | None = None
    rows_out: int | None = None
    segments_ok: int | None = None
    segments_fallback: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def record_run(
    spark: SparkSession,
    cfg: Config,
    *,
    run_id: str,
    job: str,
    run_date: dt.date,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    status: str,
    metrics: JobMetrics,
    error: str | None,
) -> None:
    """Append one row to the run log (append-only: reruns add rows, by design)."""
    ref = ensure_table(spark, cfg, "pipeline_runs")
    row = {
        "run_id": run_id,
        "job": job,
        "run_date": run_date,
        "started_at": started_at.replace(tzinfo=None),
        "finished_at": finished_at.replace(tzinfo=None),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "status": status,
        "rows_in": metrics.rows_in,
        "rows_out": metrics.rows_out,
        "segments_ok": metrics.segments_ok,
        "segments_fallback": metrics.segments_fallback,
        "error": error[:4000] if error else None,
        "detail": json.dumps(metrics.detail, sort_keys=True, default=str),
    }
    spark.createDataFrame([row], contract_for(cfg, "pipeline_runs").schema).write.format("delta").mode("append").save(ref.path)


def begin_run(spark: SparkSession, cfg: Config, *, run_id: str, job: str, run_date: dt.date,
              started_at: dt.datetime, detail: dict[str, Any] | None = None) -> None:
    """The run's ``running`` row, appended before the job touches any table."""
    record_run(spark, cfg, run_id=run_id, job=job, run_date=run_date, started_at=started_at,
               finished_at=started_at, status="running", metrics=JobMetrics(detail=detail or {}), error=None)


def completed_dates(spark: SparkSession, cfg: Config, jobs: list[str]) -> set[dt.date]:
    """Run dates whose latest run of every job in ``jobs`` succeeded (a later attempt that is
    still running or was killed makes the date incomplete again)."""
    ref = ensure_table(spark, cfg, "pipeline_runs")
    latest = (
        spark.table(ref.name)
        .filter(F.col("job").isin(jobs))
        .groupBy("run_date", "job")
        .agg(F.max_by("status", "finished_at").alias("status"))
        .filter("status = 'success'")
        .groupBy("run_date")
        .agg(F.count_distinct("job").alias("n"))
        .filter(F.col("n") == len(jobs))
    )
    return {r.run_date for r in latest.collect()}
