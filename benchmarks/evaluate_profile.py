"""Where an evaluate run's time goes, read from the tables it wrote (issue 16: measure first).

Reads, for one run date, the evaluate run in ``gold.pipeline_runs`` (its wall time), the fit and
predict seconds every fitted candidate recorded per segment and window in
``gold.backtest_metrics``, and each segment's demand class and champion in
``gold.model_selection``. Prints the run's core-seconds (wall x cores), each family's share of
them by demand class (fits, seconds, seconds per fit, segments it won as their own champion: a
family that only earns weight in a winning combination shows 0 here), and what is left outside
the model fits: pandas and Arrow work inside the Spark tasks, scheduling, driver-side work and idle
cores, the race's replays on the driver. When the candidates were raced (``evaluation.race``), it
prints each class's race too. Combinations, the pool and the ensemble are scored from their members' forecasts and cost
no fit of their own; they are left out of the sums. Run evaluate first (``make demo``, or
``lakecast ingest``, ``features`` and ``evaluate`` for the date); nothing is recomputed here.

    .venv/bin/python benchmarks/evaluate_profile.py --run-date 2011-12-09 [--config PATH] [--cores N]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.common.config import load_config  # noqa: E402
from jobs.common.reader import read_table  # noqa: E402
from jobs.core.names import COMBINATIONS, PRODUCTION  # noqa: E402


def cores_of(master: str) -> int | None:
    """Cores of a ``local[N]`` master; None for ``local[*]`` or a cluster (pass --cores)."""
    found = re.fullmatch(r"local\[(\d+)\]", master)
    return int(found.group(1)) if found else (1 if master == "local" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--cores", type=int, default=None, help="cores the run had (default: from a local[N] master)")
    args = parser.parse_args()
    cfg = load_config(args.config)
    day = pd.Timestamp(args.run_date).date()
    cores = args.cores or cores_of(cfg.spark_master)
    if cores is None:
        sys.exit(f"cannot tell the cores of master {cfg.spark_master}; pass --cores")

    runs = read_table("pipeline_runs", cfg)
    runs = runs[(runs["job"] == "evaluate") & (runs["status"] == "success")
                & (pd.to_datetime(runs["run_date"]).dt.date == day)]
    if runs.empty:
        sys.exit(f"no successful evaluate run for {day} in {cfg.table('pipeline_runs').name}; run it first")
    run = runs.sort_values("finished_at").iloc[-1]
    wall = float(run["duration_s"])
    detail = json.loads(run["detail"] or "{}")
    filters = [("run_date", "=", day)]
    metrics = read_table("backtest_metrics", cfg, ["segment_id", "model", "window", "status", "seconds", "run_id"], filters)
    metrics = metrics[metrics["run_id"] == run["run_id"]]
    choice = read_table("model_selection", cfg, ["segment_id", "demand_class", "champion", "run_id"], filters)
    choice = choice[choice["run_id"] == run["run_id"]]
    fitted = metrics[~metrics["model"].isin([*COMBINATIONS, PRODUCTION]) & metrics["seconds"].notna()]
    fitted = fitted.merge(choice[["segment_id", "demand_class"]], on="segment_id", how="left")
    fitted["demand_class"] = fitted["demand_class"].fillna("(no choice)")
    core_seconds = wall * cores

    print(f"evaluate {day} (run {run['run_id']}): {wall:,.0f} s wall on {cores} cores = "
          f"{core_seconds:,.0f} core-seconds; {detail.get('progress', {}).get('tasks_total', '?')} Spark tasks")
    print(f"segments evaluated {choice['segment_id'].nunique():,} "
          f"({', '.join(f'{c} {n:,}' for c, n in choice['demand_class'].value_counts().items())}), "
          f"windows {metrics['window'].nunique()}, fitted candidates {fitted['model'].nunique()}")
    wins = choice.groupby(["demand_class", "champion"]).size()
    table = (
        fitted.groupby(["demand_class", "model"])
        .agg(fits=("seconds", "size"), seconds=("seconds", "sum"), failed=("status", lambda s: int((s == "failed").sum())))
        .reset_index()
        .sort_values(["demand_class", "seconds"], ascending=[True, False])
    )
    print("\nfit + predict time per fitted family and demand class:")
    print(f"  {'class':<13} {'model':<15} {'fits':>7} {'seconds':>9} {'s/fit':>7} {'core-s':>7} {'failed':>6} {'won':>6}")
    for r in table.itertuples():
        won = int(wins.get((r.demand_class, r.model), 0))
        print(f"  {r.demand_class:<13} {r.model:<15} {r.fits:>7,} {r.seconds:>9,.0f} {r.seconds / r.fits:>7.3f} "
              f"{r.seconds / core_seconds:>6.1%} {r.failed:>6,} {won:>6,}")
    in_fits = float(table["seconds"].sum())
    idle_families = table[[int(wins.get((c, m), 0)) == 0 for c, m in zip(table["demand_class"], table["model"])]]
    print(f"\n  inside model fits      {in_fits:>9,.0f} core-s  {in_fits / core_seconds:>6.1%}")
    print(f"  of which families that won no segment of their class "
          f"{float(idle_families['seconds'].sum()):,.0f} core-s ({float(idle_families['seconds'].sum()) / core_seconds:.1%})")
    rest = core_seconds - in_fits
    print(f"  everything else        {rest:>9,.0f} core-s  {rest / core_seconds:>6.1%}  (pandas and Arrow work in the "
          "tasks, scheduling, driver-side work, idle cores)")
    for c, part in table.groupby("demand_class"):
        print(f"  class {c}: {float(part['seconds'].sum()):,.0f} core-s in fits")
    races = detail.get("race", {})
    if races:
        print("\nthe race (every candidate on a sample of each class first; evaluation.race):")
    for c, r in races.items():
        if not r["raced"]:
            print(f"  {c}: not raced ({r['reason']})")
            continue
        print(f"  {c}: {r['sampled']:,} sampled segments, {r['fit_seconds']:,.0f} core-s of fits (those of the "
              f"dropped families are in 'everything else'), {r['replay_seconds']:,.0f} s of replays; "
              f"rule's held-out MASE on the sample {r['full_score']:.4f} with every candidate, "
              f"{r['score']:.4f} with those kept; dropped: {', '.join(r['dropped']) or 'none'}")
        for t in r["trials"]:
            print(f"    {t['family']:<15} {t['cost_share']:>5.0%} of the sample's fit time, without it "
                  f"{t['without']:.4f} vs {t['with']:.4f}: {t['decision']}")


if __name__ == "__main__":
    main()
