"""What every job shares at its edges: arguments, run date and run id checks, the job runner."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobs.common.config import Config, load_config
from jobs.core.errors import LakecastError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.common.runlog import JobMetrics

log = logging.getLogger(__name__)

# A job body: (spark, config, parsed arguments, run id) -> what it did.
JobBody = Callable[["SparkSession", Config, argparse.Namespace, str], "JobMetrics | None"]


def parse_run_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` -> date, with an error that says what is expected."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"run date must be YYYY-MM-DD, got {value!r}") from None


def new_run_id(job: str, run_date: dt.date) -> str:
    """A fresh id for one run of one job: ``<job>-<date>-<8 hex>`` (or ``LAKECAST_RUN_ID``)."""
    return os.environ.get("LAKECAST_RUN_ID") or f"{job}-{run_date.isoformat()}-{uuid.uuid4().hex[:8]}"


def add_common_args(parser: argparse.ArgumentParser, dated: bool = True) -> argparse.ArgumentParser:
    """``--run-date``, ``--config`` and ``--run-id`` for every job. A job that is not about a
    run date (``dated=False``: erasure, upkeep) records today's date unless given one."""
    if dated:
        parser.add_argument("--run-date", required=True, type=parse_run_date, help="YYYY-MM-DD")
    else:
        parser.add_argument("--run-date", default=dt.date.today(), type=parse_run_date,
                            help="YYYY-MM-DD recorded in the run log (default: today)")
    parser.add_argument("--config", default=None, help="config file (default: LAKECAST_CONFIG or conf/lakecast.yaml)")
    parser.add_argument("--run-id", default=None, help="id recorded with the output (default: generated)")
    return parser


def run_job(name: str, body: JobBody, args: argparse.Namespace) -> int:
    """Run one job: config, session, ``body``, then a row in the run log whatever happened.

    Returns the exit code: 0 on success, 2 for failures the user can act on (bad config, missing
    input), 1 for anything else. Only a config that cannot be read leaves no run-log row, since
    the log's location comes from the config.
    """
    from jobs.common.logs import setup_logging
    from jobs.common.progress import watch
    from jobs.common.runlog import JobMetrics, begin_run, record_run
    from jobs.common.spark import get_spark

    setup_logging()
    try:
        cfg = load_config(args.config)
    except LakecastError as exc:  # a config that cannot be read: no lake to log the run in
        log.error("%s failed: %s", name, exc)
        return 2
    run_id = args.run_id or new_run_id(name, args.run_date)
    started = dt.datetime.now(dt.timezone.utc)
    metrics, error, code, spark, seen, inputs = JobMetrics(), None, 0, None, None, {}
    edges = Edges()  # what the job spends around its own work
    try:
        spark = get_spark(cfg, f"lakecast-{name}")
        edges.done("session")
        inputs = input_versions(cfg)
        edges.done("input_versions")
        begin_run(spark, cfg, run_id=run_id, job=name, run_date=args.run_date, started_at=started,
                  detail={"input_versions": inputs})
        edges.done("run_log_start")
        with watch(spark, name) as seen:
            metrics = body(spark, cfg, args, run_id) or JobMetrics()
        edges.done("work")
    except (LakecastError, FileNotFoundError) as exc:
        log.error("%s failed: %s", name, exc)
        error, code = str(exc), 2
    except Exception as exc:
        from jobs.common.lake import explain_failure

        explained = explain_failure(exc)
        if explained is None:
            log.exception("%s failed", name)
            error, code = f"{type(exc).__name__}: {exc}", 1
        else:
            log.error("%s failed: %s", name, explained)
            error, code = str(explained), 2
    finished = dt.datetime.now(dt.timezone.utc)
    if seen is not None:  # how far the Spark work got, failed runs included
        metrics.detail["progress"] = seen.summary()
    metrics.detail["input_versions"] = inputs
    if spark is not None:
        from jobs.common.tracking import track_run

        edges.done("work")
        tracked = track_run(cfg, job=name, run_id=run_id, run_date=args.run_date, started=started, finished=finished,
                            succeeded=code == 0, metrics=metrics, inputs=inputs, scope=getattr(args, "scope", None))
        if tracked:
            metrics.detail["mlflow_run_id"] = tracked
        edges.done("tracking")
        metrics.detail["edges"] = edges.seconds
    if spark is not None:
        try:
            record_run(
                spark, cfg, run_id=run_id, job=name, run_date=args.run_date, started_at=started,
                finished_at=finished, status="success" if code == 0 else "failed",
                metrics=metrics, error=error,
            )
        except Exception:  # the run log must never hide the job's own outcome
            log.exception("%s: could not write the run log", name)
            code = code or 1
    log.info("%s %s %s in %.1f s", name, args.run_date, "succeeded" if code == 0 else "failed",
             (finished - started).total_seconds())
    return code


class Edges:
    """Seconds of each step of a job run, in order: the session (JVM, metastore), reading the
    lake's versions, the run log's first row, the job's own work, tracking."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def done(self, step: str) -> None:
        now = time.monotonic()
        if step not in self.seconds:
            self.seconds[step] = round(now - self._last, 2)
        self._last = now


def input_versions(cfg: Config) -> dict[str, int]:
    """The Delta version of every lake table as the job starts (what it reads), for the run log;
    empty, with a warning, when the versions cannot be read (never a reason to fail the job)."""
    from jobs.common.reader import table_versions

    try:
        return table_versions(cfg)
    except Exception as exc:
        log.warning("could not read the lake's table versions for the run log: %s", exc)
        return {}


def job_parser(name: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for one job, with the common arguments."""
    parser = argparse.ArgumentParser(prog=f"lakecast {name}", description=description)
    return add_common_args(parser)
