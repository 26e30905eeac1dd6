"""Progress lines from the driver while Spark works, and the same figures in the run log."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time

from jobs.common.progress import Progress, clock, watch
from jobs.common.runs import run_job


def slow(batches):
    for batch in batches:
        time.sleep(1.0)
        yield batch


def test_the_estimate_is_the_pace_so_far_applied_to_the_tasks_left():
    seen = Progress("evaluate", started=time.monotonic() - 60, done=1, total=4, stages=2)
    assert seen.line() == ("evaluate: 1 of 4 Spark tasks done (2 stages), 1m00s elapsed, "
                           "about 3m00s left for the stages started")
    assert clock(3700) == "1h01m" and clock(59.6) == "1m00s"


def test_lines_while_spark_works_and_none_for_a_short_block(spark, caplog):
    caplog.set_level(logging.INFO, logger="lakecast.progress")
    with watch(spark, "slowjob", interval=1) as seen:
        spark.range(0, 16, numPartitions=8).mapInPandas(slow, "id long").collect()
    lines = [r.getMessage() for r in caplog.records if r.name == "lakecast.progress"]
    assert len(lines) >= 2, lines  # 8 one-second tasks on 2 cores: about 4 s
    assert all(line.startswith("slowjob: ") and "of 8 Spark tasks done (1 stages)" in line for line in lines)
    assert seen.summary()["tasks_done"] == seen.summary()["tasks_total"] == 8
    assert seen.summary()["progress_lines"] == len(lines)

    caplog.clear()
    with watch(spark, "quick", interval=30) as seen:
        spark.range(4).count()
    assert not [r for r in caplog.records if r.name == "lakecast.progress"]
    assert seen.summary()["progress_lines"] == 0 and seen.summary()["tasks_done"] >= 1


def test_the_run_log_records_the_progress_figures(spark, make_cfg, monkeypatch, caplog):
    cfg = make_cfg()
    monkeypatch.setenv("LAKECAST_PROGRESS_SECONDS", "1")
    caplog.set_level(logging.INFO, logger="lakecast.progress")

    def body(spark, cfg, args, run_id):
        spark.range(0, 8, numPartitions=4).mapInPandas(slow, "id long").collect()

    args = argparse.Namespace(config=str(cfg.path), run_id="progress-run", run_date=dt.date(2011, 12, 9))
    assert run_job("demo_job", body, args) == 0
    row = spark.table("gold.pipeline_runs").filter("run_id = 'progress-run' AND status = 'success'").first()
    progress = json.loads(row.detail)["progress"]
    assert progress["tasks_done"] == progress["tasks_total"] == 4
    lines = [r.getMessage() for r in caplog.records if r.name == "lakecast.progress"]
    assert progress["progress_lines"] == len(lines) >= 1 and lines[-1].startswith("demo_job: ")


def test_a_job_that_plans_its_work_reports_it_done_and_estimates_the_whole_job(spark, caplog):
    from jobs.common.progress import plan

    seen = Progress("evaluate", started=time.monotonic() - 60, done=3, total=4, stages=1, units=400, unit="segments",
                    units_done=100)
    assert seen.line() == ("evaluate: 100 of 400 segments done, 1m00s elapsed, about 3m00s left for the job "
                           "(3 of 4 Spark tasks done (1 stages))")
    caplog.set_level(logging.INFO, logger="lakecast.progress")
    with watch(spark, "planned", interval=1) as seen:
        done = plan(spark, 16, "segments")

        def work(batches):
            for batch in slow(batches):
                done.add(len(batch))
                yield batch

        spark.range(0, 16, numPartitions=8).mapInPandas(work, "id long").collect()
    lines = [r.getMessage() for r in caplog.records if r.name == "lakecast.progress"]
    assert lines and all(" of 16 segments done" in line for line in lines), lines
    assert seen.summary()["units_done"] == seen.summary()["units"] == 16
