"""The ``lakecast`` command: one sub-command per job, the chain, backfills and a summary.

    lakecast ingest|features|accuracy|monitor|evaluate|train|score --run-date D
                                                       one job (also: spark-submit jobs/<job>.py)
    lakecast evaluate --run-date D [--force]           backtests, model choice, promotion gate
    lakecast monitor --run-date D                      data and concept drift per segment
    lakecast evaluate|train --run-date D --scope drifting   only the segments gold.drift flags
    lakecast run --run-date D                          the chain for one date, in one session
    lakecast backfill --start D1 --end D2 [--force]    the chain date by date, resumable
    lakecast summary --run-date D                      what the run date produced
    lakecast report --run-date D [--out FILE]          one self-contained HTML run report
    lakecast forget --customer-id ID [--from FILE]     erase customers, then rebuild silver.demand
    lakecast maintain                                  OPTIMIZE and VACUUM every table (weekly)
    lakecast dictionary [--check]                      regenerate docs/data_dictionary.md
    lakecast sql-server [--port 10000]                 Thrift JDBC/ODBC endpoint over the lake
    lakecast init SOURCE [--out FILE]                  a starter config for your own sales file
    lakecast check [--config FILE]                     the config and a sample of its source, no Spark
    lakecast --version

A bad config is refused by every command before it starts, with exit code 2 and one message that
names each bad key, its value and the fix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

from jobs import accuracy, evaluate, features, ingest, monitor, score, train
from jobs.common.config import Config, load_config
from jobs.common.logs import setup_logging
from jobs.common.runs import add_common_args, parse_run_date
from jobs.core.errors import LakecastError

# Each module has main(argv) -> exit code. In the nightly order: accuracy scores past forecasts and monitor judges drift before the
# retraining decision; score forecasts last, with the models that decision left.
JOBS = {"ingest": ingest, "features": features, "accuracy": accuracy, "monitor": monitor, "evaluate": evaluate,
        "train": train, "score": score}
# Run only on retraining days (the cadence in config), like the DAG's training branch.
TRAINING_JOBS = ("evaluate", "train")
COMMANDS = [*JOBS, "run", "backfill", "summary", "report", "forget", "maintain", "dictionary", "sql-server", "init",
            "check"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        from importlib.metadata import version

        print(f"lakecast {version('lakecast')}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        helping = bool(argv) and argv[0] in ("-h", "--help")
        out = sys.stdout if helping else sys.stderr
        print(__doc__.strip() if __doc__ else "", file=out)
        if argv and not helping:
            print(f"\nlakecast: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}", file=out)
        return 0 if helping else 2
    command, rest = argv[0], argv[1:]
    try:
        return dispatch(command, rest)
    except LakecastError as exc:  # a bad config (or input) the user can fix: one message, no traceback
        print(f"lakecast {command}: {exc}", file=sys.stderr)
        return 2


def dispatch(command: str, rest: list[str]) -> int:
    """Run one command (a job returns its own exit code)."""
    if command in JOBS:
        return JOBS[command].main(rest)
    if command in ("init", "check"):
        from jobs import check

        return check.main([command, *rest])
    if command == "maintain":
        from jobs import maintain

        return maintain.main(rest)
    if command == "forget":
        return forget_command(rest)
    if command == "dictionary":
        from jobs.common import dictionary

        return dictionary.main(rest)
    if command == "report":
        from jobs import report

        return report.main(rest)
    if command == "sql-server":
        from jobs import sql_server

        return sql_server.main(rest)
    return {"run": run_command, "backfill": backfill_command, "summary": summary_command}[command](rest)


def _chain_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--source", default=None, help="raw drop for ingest (default: dataset.source)")
    parser.add_argument("--force-train", action="store_true", help="retrain even if not a retrain day")
    return parser


def run_chain(run_date: dt.date, args: argparse.Namespace) -> int:
    """ingest, features, evaluate and train (when due), score and accuracy for one run date;
    stops at the first failure."""
    from jobs.common.cadence import TrainingDecision, training_decision

    common = ["--run-date", run_date.isoformat()]
    common += ["--config", args.config] if args.config else []
    decision = None
    for i, (name, module) in enumerate(JOBS.items(), 1):
        print(f"\n[{i}/{len(JOBS)}] lakecast {name} --run-date {run_date}", flush=True)
        extra = ["--source", args.source] if name == "ingest" and args.source else []
        if name in TRAINING_JOBS:
            if decision is None:
                decision = TrainingDecision(True, "all", "--force-train") if args.force_train else \
                    training_decision(load_config(args.config), run_date)
                print(decision, flush=True)
            if not decision.train:
                continue
            # one token: a reason such as "--force-train" is not an option
            extra = ["--scope", decision.scope, f"--reason={decision.why}"]
        run_id = ["--run-id", f"{args.run_id}:{name}"] if getattr(args, "run_id", None) else []
        code = module.main(common + extra + run_id)
        if code != 0:
            print(f"lakecast: {name} failed for {run_date} (exit {code}); later jobs not run",
                  file=sys.stderr)
            return code
    return 0


def forget_command(argv: list[str]) -> int:
    """The forget job, then silver.demand rebuilt without the erased lines (features job)."""
    from jobs import forget
    from jobs.common.reader import demand_built_as_of

    code = forget.main(argv)
    if code != 0:
        return code
    config = forget.build_parser().parse_args(argv).config
    as_of = demand_built_as_of(load_config(config))
    if as_of is None:
        print("forget: no silver.demand yet, nothing derived to rebuild")
        return 0
    print(f"forget: rebuilding silver.demand as of {as_of} from what remains", flush=True)
    return features.main(["--run-date", as_of.isoformat()] + (["--config", config] if config else []))


def run_command(argv: list[str]) -> int:
    parser = _chain_options(add_common_args(argparse.ArgumentParser(prog="lakecast run")))
    args = parser.parse_args(argv)
    started = time.monotonic()
    code = run_chain(args.run_date, args)
    if code == 0:
        print(f"\nchain done in {time.monotonic() - started:.0f} s")
        code = summary_command(["--run-date", args.run_date.isoformat()]
                               + (["--config", args.config] if args.config else []))
    return code


def backfill_command(argv: list[str]) -> int:
    """Run the chain for every date from --start to --end, in order; skip complete dates."""
    parser = argparse.ArgumentParser(prog="lakecast backfill", description=backfill_command.__doc__)
    parser.add_argument("--start", required=True, type=parse_run_date)
    parser.add_argument("--end", required=True, type=parse_run_date)
    parser.add_argument("--config", default=None)
    parser.add_argument("--force", action="store_true", help="rerun dates already complete")
    _chain_options(parser)
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    setup_logging()
    cfg = load_config(args.config)
    done = set() if args.force else completed(cfg)
    dates = [args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    for day in dates:
        if day in done:
            print(f"backfill: {day} already complete, skipped (--force reruns it)")
            continue
        code = run_chain(day, args)
        if code != 0:
            print(f"backfill: stopped at {day}; rerun the same command to resume", file=sys.stderr)
            return code
    print(f"backfill: {len(dates)} date(s) from {args.start} to {args.end} complete")
    return 0


def completed(cfg: Config) -> set[dt.date]:
    """Run dates whose latest ingest, features, accuracy, monitor and score all succeeded
    (evaluate and train may be skipped)."""
    from jobs.common.runlog import completed_dates
    from jobs.common.spark import get_spark

    return completed_dates(get_spark(cfg), cfg, ["ingest", "features", "accuracy", "monitor", "score"])


def summary_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lakecast summary")
    parser.add_argument("--run-date", required=True, type=parse_run_date)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    print_run_summary(load_config(args.config), args.run_date)
    return 0


def print_run_summary(cfg: Config, run_date: dt.date) -> None:
    """Segments forecast, fallbacks with reasons, table locations and an example query."""
    from pyspark.sql import functions as F

    from jobs.common.spark import get_spark

    spark = get_spark(cfg)
    forecasts = cfg.table("forecasts")
    rows = spark.table(forecasts.name).filter(
        (F.col("run_date") == F.lit(run_date)) & (F.col("horizon_step") == 1)
    )
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
    for logical in cfg.tables:
        ref = cfg.table(logical)
        print(f"    {ref.name:<20} {ref.path}")
    print("  example query (spark.sql, or any SQL client on the metastore):")
    print(f"    SELECT * FROM {forecasts.database}.forecast_latest WHERE segment_id = '<id>' ORDER BY ds")


if __name__ == "__main__":
    sys.exit(main())
