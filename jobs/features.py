"""Features job: ``bronze.sales`` -> ``silver.demand``, one row per segment and period.

Each segment gets a complete calendar from its first sale to the last complete period of the
run date. Periods without sales are zero; periods when the business was closed (no invoices at
all, for any segment) are marked closed and their demand is null, not zero. Segments with too
short or too sparse a history are flagged with a reason; they stay in the table.

    lakecast features --run-date 2011-12-09
    spark-submit jobs/features.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

import holidays as holidays_lib
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.common.config import Config, FeaturesConfig
from jobs.common.lake import ensure_table, overwrite
from jobs.core.calendar import FREQUENCIES, last_complete_period
from jobs.core.names import ACTIVE, INACTIVE, INTERMITTENT, LIFECYCLES, NEW
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.core.errors import LakecastError
from jobs.common.contracts import contract_for

log = logging.getLogger(__name__)


def period_of(column: str, frequency: str) -> F.Column:
    """Start date of the period holding the date in ``column``."""
    return F.to_date(F.date_trunc(FREQUENCIES[frequency].trunc_unit, F.col(column)))


def holiday_frame(
    spark: SparkSession, country: str | None, start: dt.date, end: dt.date
) -> DataFrame:
    """Public holidays of ``country`` between two dates, from the ``holidays`` package."""
    rows = []
    if country:
        calendar = holidays_lib.country_holidays(country, years=range(start.year, end.year + 1))
        rows = sorted((day, name) for day, name in calendar.items() if start <= day <= end)
    return spark.createDataFrame(rows, "holiday_date date, holiday_name string")


def build_demand(
    sales: DataFrame,
    holidays: DataFrame,
    *,
    keys: tuple[str, ...],
    frequency: str,
    run_date: dt.date,
    features: FeaturesConfig,
    regressors: tuple[str, ...] = (),
    missing_periods: str = "no_demand",
    zero_share: float = 0.5,
) -> DataFrame:
    """Demand per segment and complete period up to the run date, with features, eligibility and
    lifecycle.

    ``missing_periods``: ``no_demand`` (a transactions feed) puts every period from a segment's
    first demand to the last complete period in its calendar, zero where it has no line;
    ``not_reported`` (a series feed) keeps only the periods the source reported. A segment whose
    lines never hold positive demand starts at its first line, so it is kept (and found inactive).
    """
    last_period = last_complete_period(run_date, frequency)
    step = F.expr(f"INTERVAL {FREQUENCIES[frequency].spark_interval}")
    lines = sales.filter(F.col("event_date") <= F.lit(run_date)).withColumn(
        "ds", period_of("event_date", frequency)
    ).filter(F.col("ds") <= F.lit(last_period))

    open_periods = lines.select("ds").distinct().withColumn("_open", F.lit(True))
    demand_lines = lines.filter(F.col("line_type").isin(list(features.demand_line_types)))
    for k in keys:
        demand_lines = demand_lines.filter(F.col(k).isNotNull())
    per_period = demand_lines.groupBy(*keys, "ds").agg(
        F.sum("quantity").alias("_net"),
        F.count(F.lit(1)).alias("n_lines"),
        *[F.avg(r).alias(r) for r in regressors],
    )
    if missing_periods == "not_reported":
        calendar = per_period.select(*keys, "ds")
    else:  # from each segment's first demand (its first line if it never had any) to the last period
        first = demand_lines.groupBy(*keys).agg(
            F.coalesce(F.min(F.when(F.col("quantity") > 0, F.col("ds"))), F.min("ds")).alias("_first"))
        calendar = first.select(*keys, F.explode(F.sequence("_first", F.lit(last_period), step)).alias("ds"))
    hol = (
        holidays.withColumn("ds", period_of("holiday_date", frequency))
        .groupBy("ds")
        .agg(F.concat_ws(", ", F.sort_array(F.collect_set("holiday_name"))).alias("holiday_name"))
    )
    net = F.coalesce(F.col("_net"), F.lit(0.0))
    if features.clip_negative:
        net = F.greatest(net, F.lit(0.0))
    closed = F.col("_open").isNull()
    demand = (
        calendar.join(per_period, [*keys, "ds"], "left")
        .join(F.broadcast(open_periods), "ds", "left")
        .join(F.broadcast(hol), "ds", "left")
        .select(
            *keys,
            F.concat_ws("|", *keys).alias("segment_id"),
            "ds",
            F.when(closed, F.lit(None).cast("double")).otherwise(net).alias("y"),
            F.coalesce("n_lines", F.lit(0)).cast("long").alias("n_lines"),
            closed.alias("is_closed"),
            F.col("holiday_name").isNotNull().alias("is_holiday"),
            "holiday_name",
            F.dayofweek("ds").alias("_dow"),
            F.weekofyear("ds").alias("week_of_year"),
            F.month("ds").alias("month"),
            F.quarter("ds").alias("quarter"),
            F.year("ds").alias("year"),
            *regressors,
        )
        .withColumn("day_of_week", ((F.col("_dow") + 5) % 7 + 1).cast("int"))
        .drop("_dow")
    )
    return with_lifecycle(with_eligibility(demand, keys, features), keys, features, frequency, run_date, zero_share)


def with_eligibility(demand: DataFrame, keys: tuple[str, ...], features: FeaturesConfig) -> DataFrame:
    """Flag segments whose history is too short or too sparse for a model, with the reason."""
    seg = Window.partitionBy(*keys)
    n_open = F.sum(F.when(~F.col("is_closed"), 1).otherwise(0)).over(seg)
    n_nonzero = F.sum(F.when(F.col("y") > 0, 1).otherwise(0)).over(seg)
    share = n_nonzero / F.greatest(n_open, F.lit(1))
    reason = (
        F.when(
            n_open < features.min_history_periods,
            F.format_string(f"too_short: %d open periods < {features.min_history_periods}", n_open),
        )
        .when(
            n_nonzero < features.min_nonzero_periods,
            F.format_string(f"too_sparse: %d periods with demand < {features.min_nonzero_periods}", n_nonzero),
        )
        .when(
            share < features.min_nonzero_share,
            F.format_string(f"too_sparse: %.3f of periods with demand < {features.min_nonzero_share}", share),
        )
    )
    return demand.withColumn("ineligible_reason", reason).withColumn(
        "eligible", F.col("ineligible_reason").isNull()
    )


def periods_since(column: str, until: dt.date, frequency: str) -> Column:
    """Whole periods from the period starting at ``column`` to the one starting at ``until``."""
    end = F.lit(until)
    if frequency == "daily":
        return F.datediff(end, F.col(column))
    if frequency == "weekly":
        return F.floor(F.datediff(end, F.col(column)) / 7)
    months = F.round(F.months_between(end, F.col(column)))
    return months if frequency == "monthly" else F.floor(months / 3)


def with_lifecycle(demand: DataFrame, keys: tuple[str, ...], features: FeaturesConfig, frequency: str,
                   run_date: dt.date, zero_share: float) -> DataFrame:
    """Each segment's lifecycle at the run date (see :data:`jobs.core.names.LIFECYCLES`). An
    inactive segment is ineligible for a model, with the reason; it is active again as soon as
    it has demand."""
    seg = Window.partitionBy(*keys)
    idle_after = features.inactive_after(frequency)
    last_demand = F.max(F.when(F.col("y") > 0, F.col("ds"))).over(seg)
    idle = periods_since("_last_demand", last_complete_period(run_date, frequency), frequency)
    zeros = F.avg(F.when(F.col("y") == 0, 1.0).when(F.col("y").isNotNull(), 0.0)).over(seg)
    inactive_reason = F.when(
        F.col("_last_demand").isNull(), F.lit("inactive: no demand in the history")
    ).when(idle >= idle_after, F.format_string(
        f"inactive: no demand in the last %d periods (>= features.inactive_periods {idle_after})", idle.cast("int")))
    lifecycle = (
        F.when(inactive_reason.isNotNull(), F.lit(INACTIVE))
        .when(F.col("ineligible_reason").startswith("too_short"), F.lit(NEW))
        .when(zeros >= zero_share, F.lit(INTERMITTENT))
        .otherwise(F.lit(ACTIVE))
    )
    return (
        demand.withColumn("_last_demand", last_demand)
        .withColumn("lifecycle", lifecycle)
        .withColumn("ineligible_reason", F.coalesce(inactive_reason, F.col("ineligible_reason")))
        .withColumn("eligible", F.col("ineligible_reason").isNull())
        .drop("_last_demand")
    )


def features(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str) -> JobMetrics:
    """Build ``silver.demand`` for ``run_date``, replacing the previous build."""
    dataset = cfg.dataset
    sales_ref = ensure_table(spark, cfg, "sales")
    contract = contract_for(cfg, "demand")
    target = ensure_table(spark, cfg, "demand")
    sales = spark.table(sales_ref.name)
    bounds = sales.filter(F.col("event_date") <= F.lit(run_date)).agg(
        F.min("event_date"), F.max("event_date"), F.count(F.lit(1))
    ).first()
    n_sales = bounds[2]
    if bounds[0] is None:
        raise LakecastError(
            f"{sales_ref.name} has no sales on or before {run_date}; run `lakecast ingest` first"
        )
    hol = holiday_frame(spark, dataset.holidays_country, bounds[0], run_date)
    demand = build_demand(
        sales,
        hol,
        keys=dataset.segment_keys,
        frequency=dataset.frequency,
        run_date=run_date,
        features=cfg.features,
        regressors=tuple(dataset.regressors),
        missing_periods=dataset.missing_periods,
        zero_share=cfg.evaluation.intermittent_zero_share,
    ).select(
        *[c for c in contract.columns if c not in ("as_of_date", "run_id")],
        F.lit(run_date).alias("as_of_date"),
        F.lit(run_id).alias("run_id"),
    )
    overwrite(spark, target, demand)
    stats = (
        spark.table(target.name)
        .groupBy("segment_id")
        .agg(F.first("eligible").alias("eligible"), F.first("ineligible_reason").alias("reason"),
             F.first("lifecycle").alias("lifecycle"))
        .groupBy("eligible", F.split("reason", ":")[0].alias("reason"), "lifecycle")
        .count()
        .collect()
    )
    lifecycles = {}
    for r in stats:
        lifecycles[r.lifecycle] = lifecycles.get(r.lifecycle, 0) + r["count"]
    reasons = {}
    for r in stats:
        if not r.eligible:
            reasons[r.reason] = reasons.get(r.reason, 0) + r["count"]
    rows = spark.table(target.name).count()
    log.info("features %s: %d rows in %s", run_date, rows, target.name)
    print(f"features: {rows:,} rows in {target.name}")
    print(f"  segments eligible for a model {sum(r['count'] for r in stats if r.eligible):>19,}")
    for reason, n in sorted(reasons.items()):
        print(f"  segments {f'baseline only ({reason})':<32} {n:>8,}")
    print("  lifecycle: " + ", ".join(f"{name} {lifecycles[name]:,}" for name in LIFECYCLES if name in lifecycles))
    return JobMetrics(
        rows_in=n_sales,
        rows_out=rows,
        segments_ok=sum(r["count"] for r in stats if r.eligible),
        segments_fallback=sum(r["count"] for r in stats if not r.eligible),
        detail={"ineligible": reasons, "lifecycle": lifecycles},
    )


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    return features(spark, cfg, args.run_date, run_id)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("features", "bronze.sales -> silver.demand")
    return run_job("features", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
