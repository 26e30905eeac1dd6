"""Where a night's time goes, job by job and stage by stage, read from the run log of one or more
lakes side by side (the same run date run by two versions of the code, or a cold night beside a
night that reused an earlier one's backtests).

For each job of the nightly chain (ingest, features, accuracy, monitor, evaluate, train, score),
the latest successful run of the run date in ``gold.pipeline_runs``: its wall time, and what it
spent around its own work (``detail.edges``: the Spark session with the JVM and the metastore,
reading the lake's table versions, the run log's first row, the job's own work, MLflow
tracking); for evaluate also its stages (``detail.stages``) and how many window fits it made and
reused (``detail.fits``). A run that predates a figure shows ``-``. Reads the lake with delta-rs:
no Spark.

    .venv/bin/python benchmarks/night_profile.py --run-date 2011-12-09 [--config PATH]
        [--lakes cold=/tmp/lake_a warm=/tmp/lake_b]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import record  # noqa: E402
from jobs.common.config import load_config  # noqa: E402
from jobs.common.reader import read_table  # noqa: E402

JOBS = ("ingest", "features", "accuracy", "monitor", "evaluate", "train", "score")
EDGES = ("session", "input_versions", "run_log_start", "work", "tracking")


def runs_of(config: str | None, lake: str | None, day) -> dict[str, dict]:
    """Job -> its latest successful run of ``day``: wall seconds and detail."""
    if lake:
        os.environ["LAKECAST_LAKE"] = lake
    runs = read_table("pipeline_runs", load_config(config))
    runs = runs[(runs["status"] == "success") & (pd.to_datetime(runs["run_date"]).dt.date == day)]
    out = {}
    for job, rows in runs.sort_values("finished_at").groupby("job"):
        last = rows.iloc[-1]
        out[job] = {"wall": float(last["duration_s"]), "detail": json.loads(last["detail"] or "{}")}
    return out


def airflow_tasks(database: str) -> dict[str, float]:
    """Task -> wall seconds of the latest DAG run in an Airflow SQLite metadata database, and the
    run's own wall seconds under ``"dag run"``."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        run_id, start, end = db.execute(
            "SELECT run_id, MIN(ti.start_date), MAX(ti.end_date) FROM task_instance ti "
            "WHERE ti.run_id = (SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1)").fetchone()
        tasks = dict(db.execute("SELECT task_id, duration FROM task_instance WHERE run_id = ? AND duration IS NOT NULL",
                                (run_id,)).fetchall())
    tasks["dag run"] = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--lakes", nargs="*", default=[], metavar="NAME=LAKE", help="default: the config's lake")
    parser.add_argument("--airflow", nargs="*", default=[], metavar="[NAME=]DB",
                        help="an Airflow SQLite metadata database whose latest DAG run is that night, per lake")
    parser.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.jsonl")
    args = parser.parse_args()
    day = pd.Timestamp(args.run_date).date()
    lakes = dict(item.split("=", 1) for item in args.lakes) or {"lake": None}
    runs = {name: runs_of(args.config, lake, day) for name, lake in lakes.items()}
    width = max(12, *(len(n) + 2 for n in lakes))
    databases = dict(item.split("=", 1) if "=" in item else (next(iter(lakes)), item) for item in args.airflow)
    tasks = {n: airflow_tasks(databases[n]) if n in databases else {} for n in lakes}

    def line(label: str, values: list[str]) -> None:
        print(f"  {label:<34}" + "".join(f"{v:>{width}}" for v in values))

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    print(f"night of {day}, wall seconds:")
    line("", list(lakes))
    total = {n: 0.0 for n in lakes}
    for job in JOBS:
        if not any(job in r for r in runs.values()):
            continue
        line(job, [fmt(r[job]["wall"]) if job in r else "-" for r in runs.values()])
        if tasks and any(job in t for t in tasks.values()):
            line("  outside the job (Airflow task - job)", [fmt(t[job] - r[job]["wall"]) if job in t and job in r else "-"
                                                  for t, r in zip(tasks.values(), runs.values())])
        for n, r in runs.items():
            total[n] += r[job]["wall"] if job in r else 0.0
        for edge in EDGES:
            values = [r[job]["detail"].get("edges", {}).get(edge) if job in r else None for r in runs.values()]
            if any(v is not None for v in values):
                line(f"  {edge}", [fmt(v) for v in values])
        if job == "evaluate":
            stages = list(dict.fromkeys(s for r in runs.values() for s in r.get(job, {}).get("detail", {})
                                        .get("stages", {})))
            for stage in stages:
                line(f"    stage {stage}", [fmt(r[job]["detail"].get("stages", {}).get(stage)) if job in r else "-"
                                            for r in runs.values()])
            for kind in ("fitted", "reused"):
                values = [r[job]["detail"].get("fits", {}).get(kind) if job in r else None for r in runs.values()]
                line(f"    window fits {kind}", ["-" if v is None else f"{v:,}" for v in values])
    line("all jobs", [fmt(t) for t in total.values()])
    if any(tasks.values()):
        line("Airflow DAG run, first task to last", [fmt(t.get("dag run")) for t in tasks.values()])
    if not args.no_record:
        record("night_profile", {n: {job: {"wall_s": r[job]["wall"], "edges": r[job]["detail"].get("edges"),
                                          "stages": r[job]["detail"].get("stages"), "fits": r[job]["detail"].get("fits"),
                                          "airflow_task_s": tasks[n].get(job)}
                                     for job in JOBS if job in r} | {"dag_run_s": tasks[n].get("dag run")}
                                for n, r in runs.items()},
               {"run_date": args.run_date, "lakes": list(lakes)})


if __name__ == "__main__":
    main()
