"""The ``lakecast`` command: one sub-command per job, plus ``run`` for the whole chain."""

from __future__ import annotations

import argparse
import sys
import time

from jobs import features, ingest, score, train
from jobs.common.runs import add_common_args, run_job

# In chain order. Each module has main(argv) -> exit code.
JOBS = {"ingest": ingest, "features": features, "train": train, "score": score}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = [*JOBS, "run"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(
            "usage: lakecast {" + ",".join(commands) + "} --run-date YYYY-MM-DD [options]\n\n"
            "Batch forecasting on Spark and Delta Lake. Each command is one idempotent job for its\n"
            "run date; `run` runs ingest, features, train and score in order.\n"
            "`lakecast COMMAND --help` shows a command's options.",
            file=sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr,
        )
        if argv and argv[0] not in ("-h", "--help"):
            print(f"lakecast: unknown command {argv[0]!r}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run_chain(rest)
    return JOBS[command].main(rest)


def chain_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakecast run", description="ingest, features, train, score")
    add_common_args(parser)
    parser.add_argument("--source", default=None, help="raw drop for ingest (default: dataset.source)")
    return parser


def run_chain(argv: list[str]) -> int:
    """Every job in order for one run date; stops at the first failure, then prints a summary."""
    args = chain_parser().parse_args(argv)
    common = ["--run-date", args.run_date.isoformat()]
    common += ["--config", args.config] if args.config else []
    common += ["--run-id", args.run_id] if args.run_id else []
    started = time.monotonic()
    for i, (name, module) in enumerate(JOBS.items(), 1):
        print(f"\n[{i}/{len(JOBS)}] lakecast {name} --run-date {args.run_date}", flush=True)
        extra = ["--source", args.source] if name == "ingest" and args.source else []
        code = module.main(common + extra)
        if code != 0:
            print(f"lakecast run: {name} failed (exit {code}); later jobs not run", file=sys.stderr)
            return code
    print(f"\nchain done in {time.monotonic() - started:.0f} s")
    return run_job("summary", lambda cfg, a: print_summary(cfg, a.run_date), args)


def print_summary(cfg, run_date) -> None:
    """Segments forecast, fallbacks with reasons, table locations and an example query."""
    from pyspark.sql import functions as F

    from jobs.common.spark import get_spark

    spark = get_spark(cfg)
    forecasts = cfg.table("forecasts")
    rows = spark.table(forecasts.name).filter((F.col("run_date") == F.lit(run_date)) & (F.col("horizon_step") == 1))
    total = rows.count()
    fallbacks = (
        rows.filter("status = 'fallback'")
        .groupBy(F.split("reason", ":")[0].alias("reason"))
        .count()
        .orderBy(F.desc("count"))
        .collect()
    )
    print(f"\nSummary for run date {run_date}")
    print(f"  segments forecast: {total:,} ({total - sum(r['count'] for r in fallbacks):,} by their model)")
    for r in fallbacks:
        print(f"  fallback to seasonal naive: {r['count']:>6,}  {r.reason}")
    print("  tables:")
    for logical in ("sales", "quarantine", "demand", "models", "forecasts"):
        ref = cfg.table(logical)
        print(f"    {ref.name:<18} {ref.path}")
    print("  example query (spark.sql, or any SQL client on the metastore):")
    print(f"    SELECT * FROM {forecasts.database}.forecast_latest WHERE segment_id = '<id>' ORDER BY ds")


if __name__ == "__main__":
    sys.exit(main())
