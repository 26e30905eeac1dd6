"""Progress of a running job, from the driver: a silent 30-minute job looks hung.

:func:`watch` tags the Spark jobs started inside it with a job group and, on a daemon thread,
reads Spark's status tracker (no extra Spark work) once a second. Every ``interval`` seconds
(``LAKECAST_PROGRESS_SECONDS``, default 30; 0 turns it off) it logs one line while the job
runs. A job that knows its work up front says so (:func:`plan`: so many segments to fit, say)
and counts it done from the executors (a Spark accumulator each task adds to as it finishes): the
line then says how much of the job's work is done, the elapsed time and an estimate for the whole
job from the pace so far. Without a plan the line counts Spark tasks: those of the stages
started so far, so the estimate is only for the work in sight. The last figures are returned for
the run log.

    with watch(spark, "evaluate") as seen:
        done = plan(spark, 3_083, "segments")   # in the job: what there is to do
        ...                                    # each task: done.add(segments it fitted)
    seen.summary()  # {"tasks_done": 96, "tasks_total": 96, "stages": 14, "seconds": 412.3, ...}
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

log = logging.getLogger("lakecast.progress")


def interval_seconds() -> float:
    return float(os.environ.get("LAKECAST_PROGRESS_SECONDS", "30"))


def clock(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass
class Progress:
    """What the status tracker showed for one job group, last time it was read, and the job's
    planned work (``units`` of ``unit``, ``units_done`` of them counted done)."""

    label: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    stages: int = 0
    lines: int = 0
    units: int = 0
    unit: str = ""
    units_done: int = 0
    counters: list[Any] = field(default_factory=list)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        tasks = f"{self.done:,} of {self.total:,} Spark tasks done ({self.stages} stages)"
        if self.units:
            left = ""
            if 0 < self.units_done < self.units:
                left = f", about {clock(elapsed * (self.units - self.units_done) / self.units_done)} left for the job"
            return (f"{self.label}: {self.units_done:,} of {self.units:,} {self.unit} done, {clock(elapsed)} "
                    f"elapsed{left} ({tasks})")
        left = ""
        if 0 < self.done < self.total:
            left = f", about {clock(elapsed * (self.total - self.done) / self.done)} left for the stages started"
        return f"{self.label}: {tasks}, {clock(elapsed)} elapsed{left}"

    def summary(self) -> dict[str, float | int]:
        out = {"tasks_done": self.done, "tasks_total": self.total, "stages": self.stages,
               "seconds": round(time.monotonic() - self.started, 1), "progress_lines": self.lines}
        if self.units:
            out |= {"units": self.units, "units_done": self.units_done, "unit": self.unit}
        return out


_CURRENT: list[Progress] = []  # the progress of the job running in this driver, while watched


def plan(spark: SparkSession, units: int, unit: str) -> Any:
    """Tell the progress lines that the job has ``units`` more ``unit`` to do; returns an
    accumulator the Spark tasks add what they did to (``counter.add(n)``, counted when a task
    finishes). Outside :func:`watch` nothing is reported, and the accumulator still works."""
    counter = spark.sparkContext.accumulator(0)
    if _CURRENT:
        seen = _CURRENT[-1]
        seen.units, seen.unit = seen.units + units, unit
        seen.counters.append(counter)
    return counter


def read(spark: SparkSession, group: str, seen: Progress) -> None:
    """Tasks done and known of every started stage of the group's Spark jobs, into ``seen``.
    Spark's Java tracker is read because it gives a stage's submission time: a stage never
    submitted is waiting or skipped (its input was cached) and has no tasks to count."""
    tracker = spark.sparkContext._jsc.statusTracker()
    done = total = stages = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds() if job is not None else ():
            stage = tracker.getStageInfo(stage_id)
            if stage is None or stage.submissionTime() <= 0:
                continue
            done += stage.numCompletedTasks()
            total += stage.numTasks()
            stages += 1
    seen.done, seen.total, seen.stages = done, total, stages
    seen.units_done = sum(c.value for c in seen.counters)


@contextmanager
def watch(spark: SparkSession, label: str, interval: float | None = None) -> Iterator[Progress]:
    """Log progress lines for the Spark work done inside the block (see the module docstring)."""
    interval = interval_seconds() if interval is None else interval
    group = f"lakecast-{label}-{uuid.uuid4().hex[:8]}"
    seen = Progress(label)
    context = spark.sparkContext
    context.setJobGroup(group, label, interruptOnCancel=False)
    stop = threading.Event()

    def report() -> None:
        next_line = seen.started + interval
        while not stop.wait(1.0):
            try:
                read(spark, group, seen)
            except Exception:  # the tracker must never fail the job it reports on
                continue
            if time.monotonic() >= next_line and (seen.total or seen.units):
                log.info(seen.line())
                seen.lines += 1
                next_line += interval

    thread = threading.Thread(target=report, name=f"progress-{label}", daemon=True)
    if interval > 0:
        thread.start()
    _CURRENT.append(seen)
    try:
        yield seen
    finally:
        _CURRENT.remove(seen)
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5)
        try:
            read(spark, group, seen)
        except Exception:
            pass
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)
