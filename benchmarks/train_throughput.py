"""Training throughput: the same N segments fitted through Spark and in a plain Python loop.

Reads the eligible segments of ``silver.demand`` (run ``make demo`` first), takes the N with the
most demand, and fits them twice (``--family``, default Prophet) with the function the train job
maps over its tasks (:func:`jobs.train.fit_segments`, which fits a task's Prophet models in one
batch under ``model.prophet.fitter: batch``): once with ``groupBy().applyInPandas()`` on the
configured master, once over all of them in this process. Prints series per second for both and their ratio, side by side in one run. Both
paths are warmed up first on a few segments, untimed.

    .venv/bin/python benchmarks/train_throughput.py --segments 100 500 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import functions as F

from jobs.common.config import load_config
from jobs.common.logs import setup_logging
from jobs.common.spark import get_spark
from jobs.evaluate import candidates_of
from jobs.train import fit_segments, train_models, train_params
from jobs.common.contracts import contract_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=dt.date(2011, 12, 9))
    parser.add_argument("--config", default=None)
    parser.add_argument("--family", default="prophet", help="candidate family fitted for every segment")
    parser.add_argument("--warmup", type=int, default=20, help="segments fitted untimed first, both ways")
    args = parser.parse_args()
    setup_logging("WARNING")
    cfg = load_config(args.config)
    spark = get_spark(cfg, "lakecast-benchmark")
    demand = spark.table(cfg.table("demand").name).filter(
        F.col("ds") <= F.lit(cfg.dataset.origin(args.run_date))
    ).withColumn("promoted_spec", F.lit(candidates_of(cfg).specs[args.family]))
    ranked = (
        demand.filter("eligible")
        .groupBy("segment_id")
        .agg(F.sum("y").alias("total"))
        .orderBy(F.desc("total"), "segment_id")
    )
    params = train_params(cfg, args.run_date, "benchmark")
    schema = contract_for(cfg, "models").schema
    cores = spark.sparkContext.defaultParallelism
    print(f"master {spark.sparkContext.master} ({cores} cores), "
          f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}")
    print(f"{'segments':>8} {'spark s':>9} {'spark series/s':>15} {'loop s':>9} "
          f"{'loop series/s':>14} {'ratio':>6}")
    # Warm both paths on the same few segments first (Python workers started, Prophet and cmdstan
    # loaded), so the timed runs compare steady-state throughput, not start-up.
    warm = demand.filter(F.col("segment_id").isin([r.segment_id for r in ranked.limit(args.warmup).collect()]))
    train_models(warm, params=params, schema=schema).select("segment_id").collect()
    fit_segments(warm.toPandas(), params)
    for n in args.segments:
        ids = [r.segment_id for r in ranked.limit(n).collect()]
        subset = demand.filter(F.col("segment_id").isin(ids)).cache()
        subset.count()
        frame = subset.toPandas()

        started = time.perf_counter()
        fitted = train_models(subset, params=params, schema=schema).select("segment_id", "status").collect()
        spark_s = time.perf_counter() - started

        started = time.perf_counter()
        looped = fit_segments(frame, params)
        loop_s = time.perf_counter() - started

        assert len(fitted) == len(looped) == len(ids), "both paths must fit every segment"
        print(f"{n:>8} {spark_s:>9.1f} {n / spark_s:>15.2f} {loop_s:>9.1f} "
              f"{n / loop_s:>14.2f} {loop_s / spark_s:>5.2f}x", flush=True)
        subset.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
