"""Monitor job: drift of every segment's data and live model into ``gold.drift``.

For run date D, the live model of a segment is its latest model trained before D (the one that
scored the nights up to D). Its data drift compares the open periods it has not seen (after the
last period of its training run, up to D's last complete period) with the end of its training
data; its concept drift compares its realized errors on those periods (``gold.forecast_accuracy``)
with the mean absolute error its backtest promised (``gold.backtest_metrics`` of its training run
date). The figures of one segment are computed in :mod:`jobs.monitoring.drift` (pandas and
scipy). Segments flagged get ``retrain = true``: the nightly DAG re-evaluates and retrains those
(``--scope drifting``), or all segments above ``monitor.retrain_all_share``. Rerunning D replaces
D's rows with the same figures. The view ``gold.drift_summary`` gives the share drifting per run
date and reason.

    lakecast monitor --run-date 2011-12-09
    spark-submit jobs/monitor.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.contracts import contract_for
from jobs.common.lake import current_models, ensure_table, history_as_of, replace_run_date
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.common.views import create_drift_views
from jobs.core.calendar import last_complete_period, periods_back
from jobs.core.names import BASELINE, CONCEPT_DRIFT_REASONS, DATA_DRIFT_REASONS
from jobs.monitoring.drift import DriftSettings, segment_drift

log = logging.getLogger(__name__)


def drift_settings(cfg: Config) -> DriftSettings:
    """Config ``monitor`` with its windows resolved for the dataset's horizon."""
    m = cfg.monitor
    recent, reference, minimum = m.windows(cfg.dataset.horizon)
    return DriftSettings(recent=recent, reference=reference, min_periods=minimum, p_value=m.p_value,
                         min_change=m.min_change, zero_share_change=m.zero_share_change, error_ratio=m.error_ratio,
                         cusum_k=m.cusum_k, cusum_h=m.cusum_h, bias=m.bias)


def live_models(spark: SparkSession, cfg: Config, run_date: dt.date) -> DataFrame:
    """Per segment, the model that scored the nights before ``run_date``, with the last period it
    learned from and the mean absolute error its backtest promised (null when none was recorded:
    a model trained without a backtest, or an inactive segment's zero forecast). Only the
    training run dates of live models are read from the backtest tables (partition pruning)."""
    models = current_models(spark.table(ensure_table(spark, cfg, "models").name), run_date - dt.timedelta(days=1))
    models = models.persist()
    trained = [r.run_date for r in models.select("run_date").distinct().collect()]
    in_use = F.col("run_date").isin(trained)
    selection = spark.table(ensure_table(spark, cfg, "model_selection").name).filter(in_use)
    metrics = spark.table(ensure_table(spark, cfg, "backtest_metrics").name).filter(in_use)
    promised = (
        metrics.filter(F.col("status") == "ok")
        .groupBy("segment_id", "run_date", "model").agg(F.avg("mae").alias("promised_mae"))
    )
    live = (
        models.select("segment_id", "model_version", "model", F.col("status").alias("model_status"),
                      F.col("run_date").alias("trained_on"))
        .join(selection.select("segment_id", F.col("run_date").alias("trained_on"), "promoted_model"),
              ["segment_id", "trained_on"], "left")
        # the candidate whose backtest the live model stands for: the promoted one, or the
        # baseline when training fell back to it
        .withColumn("candidate", F.when(F.col("model_status") == "ok", F.col("promoted_model"))
                    .when(F.col("model") == BASELINE, F.lit(BASELINE)))
    )
    return live.join(
        promised.withColumnRenamed("run_date", "trained_on").withColumnRenamed("model", "candidate"),
        ["segment_id", "trained_on", "candidate"], "left",
    ).select("segment_id", "model_version", "model", "trained_on", "promised_mae")


def monitor(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str) -> JobMetrics:
    """Write ``run_date``'s drift figures for every segment of ``silver.demand``."""
    dataset = cfg.dataset
    keys = list(dataset.segment_keys)
    settings = drift_settings(cfg)
    target = ensure_table(spark, cfg, "drift")
    accuracy = spark.table(ensure_table(spark, cfg, "forecast_accuracy").name)
    history = history_as_of(spark, cfg, run_date).filter(~F.col("is_closed"))
    live = live_models(spark, cfg, run_date)
    series = history.select(*keys, "segment_id", "ds", "y").join(live, "segment_id", "left")
    # Only the end of each model's training data is compared: leave out older periods before the
    # per-segment pandas step (three reference windows back, so closed periods cannot starve it)
    trained = [r.trained_on for r in live.select("trained_on").distinct().collect() if r.trained_on is not None]
    if trained:
        starts = [(d, periods_back(last_complete_period(d, dataset.frequency), 3 * settings.reference,
                                   dataset.frequency)) for d in trained]
        series = (series.join(F.broadcast(spark.createDataFrame(starts, "trained_on date, window_start date")),
                              "trained_on", "left")
                  .filter(F.col("window_start").isNull() | (F.col("ds") >= F.col("window_start")))
                  .drop("window_start"))
    errors = (
        accuracy.join(live.select("segment_id", "model_version"), ["segment_id", "model_version"])
        .filter(F.col("ds") <= F.lit(dataset.origin(run_date)))
        .groupBy("segment_id", "ds")
        .agg(F.avg("abs_error").alias("abs_error"), F.avg("error").alias("error"), F.avg("actual").alias("actual"))
    )
    contract = contract_for(cfg, "drift")
    columns = contract.columns

    def judge(segment: pd.DataFrame, realized: pd.DataFrame) -> pd.DataFrame:
        if segment.empty:  # errors of a segment no longer in silver.demand: nothing to judge
            return pd.DataFrame(columns=columns)
        row = drift_row(segment, realized, settings, keys, dataset.frequency, run_date, run_id)
        # object columns: a figure left out (None) stays null whatever the column's type
        return pd.DataFrame([{c: row.get(c) for c in columns}], dtype=object)

    rows = (
        series.groupBy("segment_id").cogroup(errors.groupBy("segment_id"))
        .applyInPandas(judge, schema=contract.schema)
    )
    replace_run_date(spark, target, rows, run_date)
    create_drift_views(spark, cfg)
    return summarise(spark.table(target.name).filter(F.col("run_date") == F.lit(run_date)), target.name, run_date)


def drift_row(segment: pd.DataFrame, realized: pd.DataFrame, settings: DriftSettings, keys: list[str],
              frequency: str, run_date: dt.date, run_id: str) -> dict[str, Any]:
    """One gold.drift row: the segment's ids, its live model's and the drift figures."""
    first = segment.iloc[0]
    ids = {k: first[k] for k in keys} | {"segment_id": first["segment_id"], "run_date": run_date, "run_id": run_id,
                                         "p_threshold": settings.p_value,
                                         "error_ratio_threshold": settings.error_ratio,
                                         "cusum_threshold": settings.cusum_h}
    if pd.isna(first["model_version"]):
        return ids | {"status": "no_model", "data_drift": False, "concept_drift": False, "retrain": False,
                      "note": "no model trained before the run date: the next training fits one"}
    promised = None if pd.isna(first["promised_mae"]) else float(first["promised_mae"])
    history = pd.DataFrame({"ds": pd.to_datetime(segment["ds"]), "y": segment["y"].astype(float)})
    realized = realized.assign(ds=pd.to_datetime(realized["ds"])) if len(realized) else \
        pd.DataFrame(columns=["ds", "abs_error", "error", "actual"])
    trained_until = last_complete_period(first["trained_on"], frequency)  # the last period it learned from
    figures = segment_drift(history, trained_until, realized, promised, settings)
    return ids | {"model_version": first["model_version"], "model": first["model"],
                  "trained_on": first["trained_on"]} | figures


def summarise(written: DataFrame, table: str, run_date: dt.date) -> JobMetrics:
    """Print and return the share of segments drifting, by status and reason."""
    counts = written.groupBy("status", "retrain", "reasons").count().toPandas()
    total = int(counts["count"].sum())
    with_model = int(counts.loc[counts["status"] != "no_model", "count"].sum())
    drifting = int(counts.loc[counts["retrain"], "count"].sum())
    reasons = {r: int(counts.loc[counts["reasons"].fillna("").str.split(",").apply(lambda x, r=r: r in x),
                                 "count"].sum())
               for r in (*DATA_DRIFT_REASONS, *CONCEPT_DRIFT_REASONS)}
    share = drifting / with_model if with_model else 0.0
    statuses = counts.groupby("status")["count"].sum().to_dict()
    print(f"monitor: {total:,} segments in {table} (run date {run_date}); {with_model:,} with a live model, "
          f"{drifting:,} drifting ({share:.1%})")
    for status, n in sorted(statuses.items()):
        print(f"  {status:<16} {n:>8,}")
    for reason, n in reasons.items():
        print(f"  drift: {reason:<12} {n:>8,}")
    log.info("monitor %s: %d of %d segments drifting", run_date, drifting, with_model)
    return JobMetrics(rows_in=total, rows_out=total,
                      detail={"segments_with_model": with_model, "drifting": drifting, "drifting_share": share,
                              "by_status": {k: int(v) for k, v in statuses.items()}, "by_reason": reasons})


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    return monitor(spark, cfg, args.run_date, run_id)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("monitor", "silver.demand + gold.models + gold.forecast_accuracy -> gold.drift")
    return run_job("monitor", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
