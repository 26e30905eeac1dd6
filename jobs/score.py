"""Score job: each segment's current model forecasts the next H periods into ``gold.forecasts``.

The current model of a segment, for a run date D, is its latest model trained on or before D
(so models retrained weekly can score nightly). Forecasts start at the first period after the
last complete period of D. Non-negative targets are clipped at zero. A model that fails to
predict is replaced by its stored seasonal-naive fallback and the reason is recorded. Rerunning
a run date replaces exactly that date's rows.

    lakecast score --run-date 2011-12-09
    spark-submit jobs/score.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.lake import current_models, ensure_table, read_table_at, recorded_input_versions, replace_run_date
from jobs.common.views import create_forecast_views
from jobs.core.calendar import next_periods
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.core.errors import LakecastError
from jobs.models import SeasonalNaive, build_model, load_model
from jobs.common.contracts import contract_for
from jobs.common.globals import global_columns, global_group
from jobs.evaluation.global_forecasts import saved_forecasts

log = logging.getLogger(__name__)


def forecast_segment(row: pd.Series, params: dict[str, Any]) -> pd.DataFrame:
    """The next H periods for one model row; falls back to the stored baseline on failure."""
    future = pd.DataFrame({"ds": pd.to_datetime(params["future"])})
    model, status, reason = row["model"], row["status"], row["reason"]
    try:
        out = load_model(model, row["model_json"]).predict(future)
    except Exception as exc:  # any predict failure (ModelFailure or other): the baseline answers
        out = SeasonalNaive.from_json(row["fallback_json"]).predict(future)
        model, status = SeasonalNaive.name, "fallback"
        reason = f"predict_failed: {type(exc).__name__}: {exc}"[:300]
    if params["non_negative"]:
        out[["yhat", "yhat_lower", "yhat_upper"]] = out[["yhat", "yhat_lower", "yhat_upper"]].clip(lower=0)
    return out.assign(
        **{k: row[k] for k in params["keys"]},
        segment_id=row["segment_id"],
        ds=out["ds"].dt.date,
        horizon_step=range(1, len(out) + 1),
        model=model,
        model_version=row["model_version"],
        status=status,
        reason=reason,
        run_date=params["run_date"],
        run_id=params["run_id"],
    )


def score_models(models: DataFrame, *, params: dict[str, Any], schema: Any, partitions: int) -> DataFrame:
    """Forecast rows for every model row (one model per segment)."""
    columns = schema.fieldNames()

    def forecast_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for _, row in batch.iterrows():
                yield forecast_segment(row, params)[columns]

    return models.repartition(partitions, "segment_id").mapInPandas(forecast_batches, schema=schema)


# What scoring needs of a model row.
MODEL_COLUMNS = ["segment_id", "model", "status", "reason", "model_json", "fallback_json", "model_version"]


def baseline_models(history: DataFrame, *, keys: list[str], frequency: str, width: float) -> DataFrame:
    """Seasonal-naive model rows, fitted here, for segments that have no trained model yet (they
    appeared since the last training): every segment is forecast, with the reason."""
    schema = ", ".join(f"`{k}` string" for k in keys) + ", " + ", ".join(f"{c} string" for c in MODEL_COLUMNS)

    def fit(pdf: pd.DataFrame) -> pd.DataFrame:
        history = pd.DataFrame({"ds": pd.to_datetime(pdf["ds"]),
                                "y": pdf["y"].where(~pdf["is_closed"].astype(bool)).astype(float)})
        model = SeasonalNaive(frequency, width).fit(history).to_json()
        return pd.DataFrame([{**{k: pdf[k].iloc[0] for k in keys}, "segment_id": pdf["segment_id"].iloc[0],
                              "model": SeasonalNaive.name, "status": "fallback",
                              "reason": "new: no model trained for the segment yet (the next training fits one)",
                              "model_json": model, "fallback_json": model, "model_version": "untrained"}])

    return history.groupBy(*keys, "segment_id").applyInPandas(fit, schema=schema)


def global_new_models(spark: SparkSession, cfg: Config, untrained: DataFrame, known: DataFrame,
                      run_date: dt.date, versions: dict[str, int] | None) -> DataFrame:
    """``untrained`` (new segments' baseline rows) with the segments of a training group that has a
    current global model (``gold.global_models``, trained on or before ``run_date``) forecast by
    it from their own history: one Spark task per group, the model loaded from its text, nothing
    refitted. A segment it cannot forecast keeps the baseline, with why in its reason."""
    ref = ensure_table(spark, cfg, "global_models")
    saved = read_table_at(spark, ref, versions).filter(F.col("run_date") <= F.lit(run_date))
    latest = saved.agg(F.max("run_date")).first()[0]
    if latest is None:
        return untrained
    keys = list(cfg.dataset.segment_keys)
    columns = global_columns(cfg)
    horizon = cfg.dataset.horizon
    history = (known.join(untrained.select("segment_id"), "segment_id")
               .withColumn("_group", global_group(cfg)).select("_group", *columns))
    models = (saved.filter(F.col("run_date") == F.lit(latest)).withColumnRenamed("group", "_group")
              .join(history.select("_group").distinct(), "_group", "left_semi")
              .select("_group", "model_spec", "model_json", "model_version"))
    schema = "segment_id string, model string, model_json string, global_version string, global_reason string"
    names = [c.split()[0] for c in schema.split(", ")]

    def forecast(pdf: pd.DataFrame, saved: pd.DataFrame) -> pd.DataFrame:
        if pdf.empty or saved.empty:
            return pd.DataFrame(columns=names)
        m = saved.sort_values("model_spec").iloc[0]  # one global spec per group in practice
        rows = saved_forecasts(pdf[columns], m["model_spec"], m["model_json"], horizon)
        out = []
        for segment, path in rows.groupby("segment_id"):
            if path["ds"].isna().all():
                out.append((segment, None, None, None, f"its group's global model {m['model_version']} did not "
                                                       f"forecast it: {path['reason'].iloc[0]}"))
                continue
            model = build_model(m["model_spec"]).with_paths(path).fit(pd.DataFrame({"ds": [path["origin"].iloc[0]]}))
            out.append((segment, model.name, model.to_json(), m["model_version"],
                        f"forecast by its group's global model {m['model_version']}"))
        return pd.DataFrame(out, columns=names)

    served = history.groupBy("_group").cogroup(models.groupBy("_group")).applyInPandas(forecast, schema=schema)
    fit = F.col("global_version").isNotNull()
    return (untrained.join(served, "segment_id", "left").select(
        *keys, "segment_id",
        F.when(fit, served["model"]).otherwise(untrained["model"]).alias("model"),
        "status",
        F.when(F.col("global_reason").isNull(), F.col("reason"))
         .otherwise(F.concat_ws("; ", F.col("reason"), F.col("global_reason"))).alias("reason"),
        F.when(fit, served["model_json"]).otherwise(untrained["model_json"]).alias("model_json"),
        "fallback_json",
        F.coalesce("global_version", "model_version").alias("model_version")))


def score(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str,
          versions: dict[str, int] | None = None) -> JobMetrics:
    """Write ``run_date``'s forecasts for every segment in ``silver.demand`` (read as of the
    table ``versions`` given, to replay an earlier run)."""
    dataset = cfg.dataset
    keys = dataset.segment_keys
    models_ref = ensure_table(spark, cfg, "models")
    demand_ref = ensure_table(spark, cfg, "demand")
    contract = contract_for(cfg, "forecasts")
    target = ensure_table(spark, cfg, "forecasts")
    models = current_models(read_table_at(spark, models_ref, versions), run_date)
    if models.limit(1).count() == 0:
        raise LakecastError(
            f"{models_ref.name} has no model trained on or before {run_date}; run "
            f"`lakecast train --run-date {run_date}` first"
        )
    origin = dataset.origin(run_date)
    params = {
        "keys": list(keys),
        "future": [d.date() for d in next_periods(origin, dataset.horizon, dataset.frequency)],
        "non_negative": cfg.model.non_negative,
        "run_date": run_date,
        "run_id": run_id,
    }
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    known = read_table_at(spark, demand_ref, versions).filter(F.col("ds") <= F.lit(origin))
    untrained = baseline_models(known.join(models.select("segment_id"), "segment_id", "left_anti"),
                                keys=list(keys), frequency=dataset.frequency, width=cfg.model.interval_width)
    if cfg.model.global_lgbm.serve_new:
        untrained = global_new_models(spark, cfg, untrained, known, run_date, versions)
    forecasts = score_models(models.select(*untrained.columns).unionByName(untrained), params=params,
                             schema=contract.schema, partitions=partitions)
    replace_run_date(spark, target, forecasts, run_date)
    create_forecast_views(spark, cfg)

    written = spark.table(target.name).filter(F.col("run_date") == F.lit(run_date))
    segments = written.select("segment_id").distinct().count()
    missing = known.select("segment_id").distinct().subtract(written.select("segment_id")).count()
    replay = {"replayed_versions": versions} if versions else {}
    if missing:
        raise LakecastError(f"{missing} segments of {demand_ref.name} got no forecast; see the logs")
    by_status = {
        (r.model, r.status): r["count"]
        for r in written.filter("horizon_step = 1").groupBy("model", "status").count().collect()
    }
    log.info("score %s: %d segments x %d periods into %s", run_date, segments, dataset.horizon, target.name)
    print(f"score: {segments:,} segments x {dataset.horizon} periods in {target.name} (run date {run_date})")
    for (model, status), n in sorted(by_status.items()):
        print(f"  {model:<15} {status:<9} {n:>8,}")
    return JobMetrics(
        rows_in=segments,
        rows_out=written.count(),
        segments_ok=sum(n for (_, status), n in by_status.items() if status == "ok"),
        segments_fallback=sum(n for (_, status), n in by_status.items() if status != "ok"),
        detail=replay,
    )


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    versions = None
    if args.replay:
        run_date, versions = recorded_input_versions(spark, cfg, args.replay, "score")
        if run_date != args.run_date:
            raise LakecastError(f"score run {args.replay!r} was for {run_date}, not {args.run_date}")
        print(f"score: replaying run {args.replay} from the table versions it read: {versions}")
    return score(spark, cfg, args.run_date, run_id, versions)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("score", "gold.models -> gold.forecasts (next H periods per segment)")
    parser.add_argument("--replay", metavar="RUN_ID", default=None,
                        help="recompute an earlier score run's forecasts from the table versions its run-log "
                             "row recorded (Delta time travel), replacing the run date's rows")
    return run_job("score", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
