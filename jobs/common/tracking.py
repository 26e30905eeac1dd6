"""Tracked runs: every evaluate and train run is an MLflow run.

Params are the config's hash and the settings that shape the models; metrics are the job's
figures (for evaluate the held-out table and the value added over seasonal naive); tags are the
code version and the Delta version of every lake table as the job started, so a run can be
traced to the exact input it read. The store is config ``tracking.uri``: by default a SQLite
file in ``<lake>/_mlflow`` for a local lake, any tracking server otherwise. Tracking never fails
a job: a store that cannot be reached is a warning.

    make mlflow-ui     # the MLflow UI over the lake's store, on http://127.0.0.1:5000
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from jobs.common.config import Config, is_uri

log = logging.getLogger(__name__)

TRACKED_JOBS = ("evaluate", "train")
# MLflow accepts at most this many metrics in one batch call
BATCH = 1000


def tracking_uri(cfg: Config) -> str | None:
    """The MLflow store of ``cfg``: ``tracking.uri``, else MLFLOW_TRACKING_URI, else SQLite
    inside a local lake, else None."""
    if cfg.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return cfg.tracking.uri or os.environ["MLFLOW_TRACKING_URI"]
    return _lake_store(cfg)


def _lake_store(cfg: Config) -> str | None:
    if is_uri(cfg.lake_root):
        return None
    folder = Path(cfg.lake_root) / "_mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_location(cfg: Config) -> str | None:
    """Where runs' artifacts go for the default store (beside it, inside the lake)."""
    return None if tracking_uri(cfg) != _lake_store(cfg) else (Path(cfg.lake_root) / "_mlflow" / "artifacts").as_uri()


def code_version() -> str:
    """lakecast's version and, in a git checkout, its commit (``+dirty`` with local changes)."""
    from importlib.metadata import version

    here = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version('lakecast')}" + (f" ({commit})" if commit else "")


def config_hash(cfg: Config) -> str:
    """SHA-256 (first 16 hex) of the config as loaded, keys sorted: equal settings, equal hash."""
    return hashlib.sha256(json.dumps(cfg.raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_params(cfg: Config, job: str, run_date: dt.date, scope: str | None) -> dict[str, str]:
    """The settings that shape the models."""
    d, e = cfg.dataset, cfg.evaluation
    params = {
        "job": job, "run_date": run_date.isoformat(), "config_hash": config_hash(cfg), "dataset": d.name,
        "frequency": d.frequency, "horizon": d.horizon, "segment_keys": ",".join(d.segment_keys),
        "candidates": ",".join(e.candidates), "intermittent_candidates": ",".join(e.intermittent_candidates),
        "rule": e.rule, "metric": e.metric, "windows": e.windows, "step": e.step, "margin": e.margin,
        "promotion_tolerance": e.promotion_tolerance, "interval_width": cfg.model.interval_width,
        "scope": scope or "all",
    }
    return {k: str(v) for k, v in params.items()}


def flat_metrics(detail: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number in the job's run-log detail, as ``a.b.c`` names MLflow accepts."""
    out: dict[str, float] = {}
    for key, value in detail.items():
        name = re.sub(r"[^A-Za-z0-9_\-. /]", "_", f"{prefix}{key}")
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def track_run(cfg: Config, *, job: str, run_id: str, run_date: dt.date, started: dt.datetime,
              finished: dt.datetime, succeeded: bool, metrics: Any, inputs: dict[str, int],
              scope: str | None = None) -> str | None:
    """Record one job run in MLflow; returns the MLflow run id (None when tracking is off or the
    store cannot be reached)."""
    if job not in TRACKED_JOBS or not cfg.tracking.enabled:
        return None
    uri = tracking_uri(cfg)
    if uri is None:
        log.warning("tracking: the lake is not a local folder and tracking.uri is not set: run not tracked")
        return None
    try:
        return _track(uri, cfg, job=job, run_id=run_id, run_date=run_date, started=started, finished=finished,
                      succeeded=succeeded, metrics=metrics, inputs=inputs, scope=scope)
    except Exception as exc:  # tracking must never fail the job it records
        log.warning("tracking: could not record the run in MLflow (%s): %s", uri, exc)
        return None


def _track(uri: str, cfg: Config, *, job: str, run_id: str, run_date: dt.date, started: dt.datetime,
           finished: dt.datetime, succeeded: bool, metrics: Any, inputs: dict[str, int], scope: str | None) -> str:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    experiment_id = (experiment.experiment_id if experiment is not None else
                     client.create_experiment(cfg.tracking.experiment, artifact_location=artifact_location(cfg)))
    start_ms, end_ms = int(started.timestamp() * 1000), int(finished.timestamp() * 1000)
    tags = {"lakecast.run_id": run_id, "lakecast.job": job, "lakecast.run_date": run_date.isoformat(),
            "lakecast.code_version": code_version(), "lakecast.lake": cfg.lake_root,
            **{f"input_version.{table}": str(version) for table, version in inputs.items()}}
    run = client.create_run(experiment_id, start_time=start_ms, run_name=f"{job} {run_date}", tags=tags)
    numbers = {"rows_in": metrics.rows_in, "rows_out": metrics.rows_out, "segments_ok": metrics.segments_ok,
               "segments_fallback": metrics.segments_fallback}
    figures = {k: float(v) for k, v in numbers.items() if v is not None}
    figures |= flat_metrics({k: v for k, v in metrics.detail.items() if k not in ("input_versions", "progress")})
    rows = [Metric(name, value, end_ms, 0) for name, value in sorted(figures.items())]
    params = [Param(k, v) for k, v in run_params(cfg, job, run_date, scope).items()]
    client.log_batch(run.info.run_id, params=params, tags=[RunTag("lakecast.status", "success" if succeeded else "failed")])
    for i in range(0, len(rows), BATCH):
        client.log_batch(run.info.run_id, metrics=rows[i:i + BATCH])
    client.set_terminated(run.info.run_id, status="FINISHED" if succeeded else "FAILED", end_time=end_ms)
    log.info("tracking: %s %s is MLflow run %s (%d metrics) in %s", job, run_date, run.info.run_id, len(rows), uri)
    return run.info.run_id
