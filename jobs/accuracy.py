"""Accuracy job: past forecasts scored against the actuals that have arrived, by run date.

For run date D, every forecast issued in the last ``horizon + 1`` periods up to D is joined
with ``silver.demand`` (open periods up to D's last complete period) and its errors merged into
``gold.forecast_accuracy`` on (forecast run date, segment, period): new rows are inserted, a row
changes only when its actual or forecast changed, nothing is deleted. Rerunning D changes
nothing; a later date adds the actuals that arrived since. Older forecasts were completed by
earlier runs and are left alone. The view ``gold.accuracy_by_run_date`` shows a slide at a glance.

    lakecast accuracy --run-date 2011-12-09
    spark-submit jobs/accuracy.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.lake import demand_as_of, ensure_table, upsert
from jobs.common.views import create_accuracy_views
from jobs.core.calendar import periods_back
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.core.names import INACTIVE

log = logging.getLogger(__name__)


def accuracy(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str) -> JobMetrics:
    """Score the forecasts of the last ``horizon + 1`` periods against the known actuals."""
    dataset, e = cfg.dataset, cfg.evaluation
    keys = list(dataset.segment_keys)
    forecasts_ref = ensure_table(spark, cfg, "forecasts")
    target = ensure_table(spark, cfg, "forecast_accuracy")
    demand = demand_as_of(spark, cfg, run_date)
    start = periods_back(run_date, dataset.horizon + 1, dataset.frequency)
    known = dataset.origin(run_date)
    forecasts = spark.table(forecasts_ref.name).filter(
        (F.col("run_date") >= F.lit(start)) & (F.col("run_date") <= F.lit(run_date))
    )
    actuals = demand.filter((F.col("ds") <= F.lit(known)) & ~F.col("is_closed")).select(
        "segment_id", "ds", F.col("y").alias("actual")
    )
    error = F.col("yhat") - F.col("actual")
    scored = (
        forecasts.join(actuals, ["segment_id", "ds"])
        .select(
            *keys,
            "segment_id",
            F.col("run_date").alias("forecast_run_date"),
            "ds",
            "horizon_step",
            "model",
            "model_version",
            "status",
            "actual",
            "yhat",
            error.alias("error"),
            F.abs(error).alias("abs_error"),
            F.col("actual").between(F.col("yhat_lower"), F.col("yhat_upper")).alias("in_interval"),
            (F.greatest(-error, F.lit(0.0)) * e.cost_under + F.greatest(error, F.lit(0.0)) * e.cost_over)
            .alias("cost"),
            F.lit(run_date).alias("as_of_date"),
        )
    )
    merged = upsert(spark, target, scored, keys=["forecast_run_date", "segment_id", "ds"],
                    compare=["actual", "yhat", "model_version", "status", "in_interval"])
    create_accuracy_views(spark, cfg)
    written = spark.table(target.name).filter(
        (F.col("forecast_run_date") >= F.lit(start)) & (F.col("forecast_run_date") <= F.lit(run_date))
        & (F.col("ds") <= F.lit(known))
    )
    summarised = written.filter(F.col("status") != INACTIVE)  # inactive segments: zero by policy
    by_date = (
        summarised.groupBy("forecast_run_date")
        .agg(F.count("*").alias("n"), F.try_divide(F.sum("abs_error"), F.sum(F.abs("actual"))).alias("wape"),
             F.avg("error").alias("bias"), F.avg(F.col("in_interval").cast("double")).alias("coverage"))
        .orderBy("forecast_run_date")
        .collect()
    )
    total = written.count()
    inactive = total - sum(r.n for r in by_date)
    print(f"accuracy: {total:,} forecast periods with actuals up to {known}, forecasts issued "
          f"{start} to {run_date}, in {target.name} ({merged['inserted']:,} new, "
          f"{merged['updated']:,} updated; {inactive:,} of inactive segments left out of the summary)")
    for r in by_date:
        wape = f"{r.wape:.3f}" if r.wape is not None else "undefined (no actual demand)"
        print(f"  issued {r.forecast_run_date}: {r.n:>8,} periods  WAPE {wape}  bias {r.bias:+.2f}  "
              f"coverage {r.coverage:.0%}")
    log.info("accuracy %s: %d rows for forecasts issued %s..%s", run_date, total, start, run_date)
    return JobMetrics(rows_in=forecasts.count(), rows_out=total,
                      detail={"forecast_run_dates": len(by_date), "actuals_up_to": str(known),
                              "inactive_rows": inactive, **merged})


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    return accuracy(spark, cfg, args.run_date, run_id)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("accuracy", "gold.forecasts + silver.demand -> gold.forecast_accuracy")
    return run_job("accuracy", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
