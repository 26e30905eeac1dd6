"""Train job: one model per segment from ``silver.demand``, stored as JSON in ``gold.models``.

``groupBy(task).applyInPandas`` fits each segment's promoted model (``gold.model_selection`` of
the run date, written by ``evaluate``) on its history up to the run date. Every segment ends with
a model: when the model fails or the series is degenerate (all zeros, constant, too short, gaps),
a seasonal-naive baseline is used and the reason recorded. Each row
also carries a seasonal-naive fallback fitted on the same history, for scoring to fall back on.
Rerunning a run date replaces exactly that date's models.

    lakecast train --run-date 2011-12-09
    spark-submit jobs/train.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import sys
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.lake import ensure_table, history_as_of, replace_run_date
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.common.scope import add_scope_arg, in_scope
from jobs.core.errors import LakecastError
from jobs.core.names import GLOBAL_FAMILIES, INACTIVE, PROPHET, PROPHET_FITTERS
from jobs.core.specs import family_of, fitted_members
from jobs.common.globals import global_columns, global_group, global_schema
from jobs.evaluation.global_forecasts import GLOBAL_COLUMNS, group_forecasts, last_origins
from jobs.models import ModelFailure, ProphetForecaster, SeasonalNaive, ZeroForecast, build_model
from jobs.common.contracts import contract_for

log = logging.getLogger(__name__)


def library_versions() -> str:
    from importlib.metadata import version

    distributions = ("prophet", "cmdstanpy", "statsforecast", "mlforecast", "lightgbm", "pandas", "numpy", "holidays",
                     "lakecast")
    return json.dumps({d: version(d) for d in distributions}, sort_keys=True)


def degenerate_reason(y_open: pd.Series) -> str | None:
    """Why an observed series cannot be modelled, or None when it can."""
    if y_open.isna().any():
        return "nan_values: demand missing on open periods"
    if len(y_open) < 2:
        return "too_short: fewer than two open periods"
    if (y_open == 0).all():
        return "all_zero: no demand in the history"
    if y_open.nunique() == 1:
        return "constant: the same demand every period"
    return None


def segment_history(pdf: pd.DataFrame, regressors: tuple[str, ...]) -> pd.DataFrame:
    """A segment's history as the models take it (closed periods' demand unknown), in period order."""
    pdf = pdf.sort_values("ds")
    return pd.DataFrame(
        {
            "ds": pd.to_datetime(pdf["ds"]),
            "y": pdf["y"].where(~pdf["is_closed"].astype(bool)).astype(float),
            **{r: pdf[r].astype(float) for r in regressors},
        }
    )


def fit_segments(pdf: pd.DataFrame, params: dict[str, Any], global_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fit the promoted models of a task's segments (the function applyInPandas runs): a row per
    segment (:func:`fit_segment`). With ``params["batched"]`` naming Prophet, every Prophet model
    the task's promoted models fit, members of combinations included, is fitted first in one
    prophet-batch call and handed to its segment's model."""
    regressors = tuple(params["regressors"])
    own_rows = dict(tuple(global_rows.groupby("segment_id"))) if global_rows is not None and len(global_rows) else {}
    segments = [own for _, own in pdf.groupby("segment_id", sort=True)]
    made: dict[str, dict[str, Any]] = {s["segment_id"].iloc[0]: {} for s in segments}
    if PROPHET in params.get("batched", ()):
        wanted = [(own["segment_id"].iloc[0], spec, segment_history(own, regressors)) for own in segments
                  if bool(own["eligible"].iloc[0]) and isinstance(own["promoted_spec"].iloc[0], str)
                  and degenerate_reason(own.loc[~own["is_closed"].astype(bool), "y"].astype(float)) is None
                  for spec in dict.fromkeys(fitted_members(own["promoted_spec"].iloc[0]))
                  if family_of(spec) == PROPHET]
        if wanted:
            models = [build_model(spec) for _, spec, _ in wanted]
            fitted = ProphetForecaster.fit_many(models, [h for _, _, h in wanted])
            for (segment, _, _), model in zip(wanted, fitted):
                if not isinstance(model, ModelFailure):
                    made[segment][model.spec()] = model
    out = [fit_segment(own, params, own_rows.get(own["segment_id"].iloc[0]), made[own["segment_id"].iloc[0]])
           for own in segments]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def fit_segment(pdf: pd.DataFrame, params: dict[str, Any], global_rows: pd.DataFrame | None = None,
                fitted: dict[str, Any] | None = None) -> pd.DataFrame:
    """Fit one segment's promoted model; always returns exactly one model row. ``global_rows``:
    the global models' forecasts of the segment from its last period (``model`` is the global
    spec), for a promoted model that is or holds one; ``fitted``: models of the segment already
    fitted on its history, by spec (:func:`fit_segments`)."""
    keys = params["keys"]
    pdf = pdf.sort_values("ds")
    regressors = tuple(params["regressors"])
    history = segment_history(pdf, regressors)
    open_rows = ~pdf["is_closed"].astype(bool).to_numpy()
    y_open = history["y"][open_rows]
    fallback = SeasonalNaive(params["frequency"], params["interval_width"]).fit(history)
    spec = pdf["promoted_spec"].iloc[0]
    reason = None if bool(pdf["eligible"].iloc[0]) else str(pdf["ineligible_reason"].iloc[0])
    inactive = "lifecycle" in pdf and pdf["lifecycle"].iloc[0] == INACTIVE
    if reason is None and not isinstance(spec, str):
        reason = "not_evaluated: no gold.model_selection row for this segment and run date"
    model, model_json = None, None
    if reason is None:
        paths = dict(tuple(global_rows.groupby("model"))) if global_rows is not None and len(global_rows) else {}
        model = build_model(spec, {**paths, **(fitted or {})})
        if not isinstance(model, SeasonalNaive):
            reason = degenerate_reason(y_open)
    if reason is None:
        try:
            model_json = model.fit(history).to_json()
        except ModelFailure as exc:
            reason = str(exc)
    if reason is not None:
        model = ZeroForecast() if inactive and params["inactive_policy"] == "zero" else fallback
        model_json = model.to_json()
    run_date = params["run_date"]
    digest = hashlib.sha256(model_json.encode()).hexdigest()[:10]
    observed = history.loc[open_rows, "ds"]
    return pd.DataFrame(
        [
            {
                **{k: pdf[k].iloc[0] for k in keys},
                "segment_id": pdf["segment_id"].iloc[0],
                "model": model.name,
                "status": "ok" if reason is None else INACTIVE if inactive else "fallback",
                "reason": reason,
                "model_spec": model.spec(),
                "model_json": model_json,
                "fallback_json": fallback.to_json(),
                "model_version": f"{run_date:%Y%m%d}-{digest}",
                "train_start": observed.min().date() if len(observed) else None,
                "train_end": observed.max().date() if len(observed) else None,
                "n_obs": int(open_rows.sum()),
                "library_versions": params["library_versions"],
                "run_date": run_date,
                "run_id": params["run_id"],
            }
        ]
    )


def train_params(cfg: Config, run_date: dt.date, run_id: str) -> dict[str, Any]:
    """Everything the per-segment function needs, as plain picklable values."""
    dataset = cfg.dataset
    return {
        "keys": list(dataset.segment_keys),
        "regressors": list(dataset.regressors),
        "frequency": dataset.frequency,
        "interval_width": cfg.model.interval_width,
        "run_date": run_date,
        "run_id": run_id,
        "library_versions": library_versions(),
        "inactive_policy": cfg.features.inactive_policy,
        "batched": (PROPHET,) if cfg.model.prophet.get("fitter", PROPHET_FITTERS[0]) == "batch" else (),
    }


def train_models(
    demand: DataFrame, *, params: dict[str, Any], schema: Any, partitions: int | None = None,
    global_rows: DataFrame | None = None,
) -> DataFrame:
    """Per-segment models for the history in ``demand`` (already cut at the run date, joined
    with each segment's ``promoted_spec`` from the model selection); ``global_rows``: the global
    models' forecasts of them (:func:`global_fits`).

    Segments are hashed into ``partitions`` tasks (default 16 per core), each fitted by
    :func:`fit_segments`: small tasks keep every core busy to the end, since fit times differ a
    lot between segments.
    """
    keys = params["keys"]
    columns = [*keys, "segment_id", "ds", "y", "is_closed", "eligible", "ineligible_reason", "lifecycle",
               "promoted_spec", *params["regressors"]]
    partitions = partitions or 16 * demand.sparkSession.sparkContext.defaultParallelism

    def fit(pdf: pd.DataFrame) -> pd.DataFrame:
        return fit_segments(pdf, params)[schema.fieldNames()]

    def fit_with_global(pdf: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        return fit_segments(pdf, params, rows)[schema.fieldNames()] if len(pdf) else pd.DataFrame(
            columns=schema.fieldNames())

    def bucket(frame: DataFrame) -> DataFrame:
        return frame.withColumn("_task", F.pmod(F.xxhash64("segment_id"), F.lit(partitions)))

    inputs = bucket(demand.select(*columns))
    if global_rows is not None:
        return inputs.groupBy("_task").cogroup(bucket(global_rows).groupBy("_task")).applyInPandas(
            fit_with_global, schema=schema)
    return inputs.repartition(partitions, "_task").groupBy("_task").applyInPandas(fit, schema=schema)


def global_specs(spec: str | None) -> set[str]:
    """The global models a promoted spec is or holds (as a combination's member, at any depth)."""
    if not isinstance(spec, str):
        return set()
    d = json.loads(spec)
    if d["family"] in GLOBAL_FAMILIES:
        return {spec}
    return set().union(*(global_specs(m) for m in d["args"].get("members", [])))


# Besides each segment's forecasts, a group's task returns one row per global spec holding the
# fitted model (segment_id null): what gold.global_models keeps.
SAVED_COLUMNS = ["group", "model_json", "segments"]


def global_fits(demand: DataFrame, cfg: Config, specs: set[str]) -> DataFrame | None:
    """Every eligible segment's forecasts from its last period by each global model in ``specs``,
    fitted once per training group (one Spark task each) on the group's history, and the fitted
    models (rows with ``model_json``); persisted, as both are read. None for no global spec."""
    if not specs:
        return None
    models = {s: s for s in sorted(specs)}
    periods = max(json.loads(s)["args"]["path_periods"] for s in specs)
    columns = global_columns(cfg)

    def group(pdf: pd.DataFrame) -> pd.DataFrame:
        fitted: dict[str, tuple[pd.Timestamp, str]] = {}
        rows = group_forecasts(pdf[columns], last_origins(pdf), models, periods, fitted)
        saved = pd.DataFrame([{"model": spec, "origin": origin.date(), "group": pdf["_group"].iloc[0],
                               "model_json": payload, "segments": pdf["segment_id"].nunique()}
                              for spec, (origin, payload) in fitted.items()])
        out = pd.concat([rows, saved], ignore_index=True).reindex(columns=GLOBAL_COLUMNS + SAVED_COLUMNS)
        out["segments"] = out["segments"].astype("Int32")
        return out

    print(f"train: fitting {len(specs)} global model(s) once per training group")
    return (demand.filter(F.col("eligible")).withColumn("_group", global_group(cfg))
            .groupBy("_group").applyInPandas(group, schema=global_schema(GLOBAL_COLUMNS + SAVED_COLUMNS))
            .persist())


def write_global_models(spark: SparkSession, cfg: Config, fits: DataFrame | None, run_date: dt.date,
                        run_id: str) -> int:
    """Replace ``run_date``'s rows of ``gold.global_models`` with the global models fitted (none
    when no promoted model uses one); returns how many."""
    target = ensure_table(spark, cfg, "global_models")
    if fits is None:
        rows = spark.createDataFrame([], contract_for(cfg, "global_models").schema)
    else:
        rows = fits.filter(F.col("model_json").isNotNull()).select(
            "group", F.col("model").alias("model_spec"), "origin", "segments", "model_json",
            F.concat(F.lit(f"{run_date:%Y%m%d}-"), F.substring(F.sha2("model_json", 256), 1, 10)).alias("model_version"),
            F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"))
    replace_run_date(spark, target, rows, run_date)
    n = spark.table(target.name).filter(F.col("run_date") == F.lit(run_date)).count()
    if n:
        print(f"train: {n} global model(s) in {target.name} (run date {run_date})")
    return n


def train(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str, scope: str = "all") -> JobMetrics:
    """Fit every segment's promoted model (or the drifting segments': ``scope``) and replace
    ``run_date``'s rows in ``gold.models``."""
    dataset = cfg.dataset
    selection_ref = ensure_table(spark, cfg, "model_selection")
    contract = contract_for(cfg, "models")
    target = ensure_table(spark, cfg, "models")
    selection = spark.table(selection_ref.name).filter(F.col("run_date") == F.lit(run_date))
    history = in_scope(spark, cfg, history_as_of(spark, cfg, run_date), run_date, scope)
    if scope != "all" and history.limit(1).count() == 0:
        print(f"train: no segment in scope {scope} for {run_date}; the current models stay")
        return JobMetrics(rows_in=0, rows_out=0, detail={"scope": scope, "segments": 0})
    if selection.limit(1).count() == 0:
        raise LakecastError(
            f"{selection_ref.name} has no model choice for {run_date}; run "
            f"`lakecast evaluate --run-date {run_date}` first"
        )
    history = history.join(selection.select("segment_id", "promoted_spec"), "segment_id", "left")
    promoted = [r.promoted_spec for r in selection.select("promoted_spec").distinct().collect()]
    fits = global_fits(history, cfg, set().union(*(global_specs(s) for s in promoted)))
    global_rows = None if fits is None else fits.filter(F.col("model_json").isNull()).select(*GLOBAL_COLUMNS)
    models = train_models(history, params=train_params(cfg, run_date, run_id), schema=contract.schema,
                          global_rows=global_rows)
    replace_run_date(spark, target, models, run_date)
    # A drifting-scope run fits the global model on the drifting segments only: not the group's model.
    global_models = write_global_models(spark, cfg, fits, run_date, run_id) if scope == "all" else None
    if fits is not None:
        fits.unpersist()
    written = spark.table(target.name).filter(F.col("run_date") == F.lit(run_date))
    summary = written.groupBy("model", "status", F.split("reason", ":")[0].alias("reason")).count().collect()
    total = sum(r["count"] for r in summary)
    log.info("train %s: %d segment models in %s", run_date, total, target.name)
    print(f"train: {total:,} segment models in {target.name} (run date {run_date})")
    for r in sorted(summary, key=lambda r: (r.status, r.reason or "")):
        why = f" ({r.reason})" if r.reason else ""
        print(f"  {r.model:<15} {r.status:<9}{why:<20} {r['count']:>8,}")
    return JobMetrics(
        rows_in=history.count(),
        rows_out=total,
        segments_ok=sum(r["count"] for r in summary if r.status == "ok"),
        segments_fallback=sum(r["count"] for r in summary if r.status != "ok"),
        detail={"scope": scope, "global_models": global_models, "fallback_reasons": {r.reason: r["count"] for r in summary if r.reason}},
    )


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    metrics = train(spark, cfg, args.run_date, run_id, scope=args.scope)
    metrics.detail["training_reason"] = args.reason
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("train", "silver.demand -> gold.models (one model per segment)")
    add_scope_arg(parser)
    return run_job("train", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
