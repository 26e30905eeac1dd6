"""Evaluate throughput: the same N segments backtested through Spark and in a plain Python loop.

Reads the eligible segments of ``silver.demand`` as of the run date (run ``lakecast ingest`` and
``features`` first, or ``make demo``), takes N of them in a fixed pseudo-random order (a hash of the
segment id, so both demand classes come in the proportion the job sees), and backtests every
configured candidate on them twice with the fit stage the evaluate job maps over segments
(:func:`jobs.evaluation.fitting.window_forecasts`): once as the job does it
(``groupBy(segment_id).applyInPandas`` over 16 partitions per core, :func:`jobs.evaluate.fit`),
once one after another in this process. Prints series per second both ways and their ratio, side by side in one run; the ratio
over the cores is the parallel efficiency. Both paths are warmed up first on a few segments,
untimed. The race (``evaluation.race``) is not involved: every candidate is fitted both ways.

    .venv/bin/python benchmarks/evaluate_throughput.py --segments 100 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import functions as F

from jobs.common.config import load_config
from jobs.common.lake import history_as_of
from jobs.common.logs import setup_logging
from jobs.common.spark import get_spark
from jobs.evaluate import candidates_of, fit, fit_settings, segments_with_production
from jobs.evaluation.fitting import window_forecasts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=dt.date(2011, 12, 9))
    parser.add_argument("--config", default=None)
    parser.add_argument("--warmup", type=int, default=6, help="segments backtested untimed first, both ways")
    args = parser.parse_args()
    setup_logging("WARNING")
    cfg = load_config(args.config)
    spark = get_spark(cfg, "lakecast-benchmark")
    keys = list(cfg.dataset.segment_keys)
    candidates = candidates_of(cfg)
    settings = fit_settings(cfg, candidates)
    history = history_as_of(spark, cfg, args.run_date)
    segments = segments_with_production(history, spark.table(cfg.table("models").name), args.run_date, keys)
    inputs = history.select(*keys, "segment_id", "ds", "y", "is_closed", "eligible", *cfg.dataset.regressors).join(
        segments.select("segment_id", "demand_class", "production_spec"), "segment_id")
    order = (segments.filter("eligible").select("segment_id", "demand_class")
             .orderBy(F.xxhash64("segment_id"), "segment_id"))
    cores = spark.sparkContext.defaultParallelism
    partitions = 16 * cores
    print(f"master {spark.sparkContext.master} ({cores} cores), {partitions} partitions; candidates "
          f"{', '.join(candidates.smooth)} (+ {', '.join(candidates.intermittent)} on intermittent segments), "
          f"{settings.windows} windows")
    print(f"{'segments':>8} {'classes':>24} {'spark s':>9} {'spark series/s':>15} {'loop s':>9} "
          f"{'loop series/s':>14} {'ratio':>6} {'per core':>9}")

    def run_both(ids: list[str]) -> tuple[float, float]:
        subset = inputs.filter(F.col("segment_id").isin(ids)).cache()
        subset.count()
        frames = [g for _, g in subset.toPandas().groupby("segment_id", sort=True)]
        started = time.perf_counter()
        n_spark = fit(subset, settings, partitions)["segment_id"].nunique()
        spark_s = time.perf_counter() - started
        started = time.perf_counter()
        looped = [window_forecasts(frame, settings) for frame in frames]
        loop_s = time.perf_counter() - started
        assert n_spark == len(looped) == len(ids), "both paths must backtest every segment"
        subset.unpersist()
        return spark_s, loop_s

    ranked = order.limit(max(args.segments) + args.warmup).toPandas()
    run_both(ranked["segment_id"].iloc[-args.warmup:].tolist())  # Python workers, statsforecast, Prophet loaded
    for n in args.segments:
        chosen = ranked.iloc[:n]
        classes = ", ".join(f"{c} {k}" for c, k in chosen["demand_class"].value_counts().items())
        spark_s, loop_s = run_both(chosen["segment_id"].tolist())
        ratio = loop_s / spark_s
        print(f"{n:>8} {classes:>24} {spark_s:>9.1f} {n / spark_s:>15.2f} {loop_s:>9.1f} "
              f"{n / loop_s:>14.2f} {ratio:>5.2f}x {ratio / cores:>8.0%}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
