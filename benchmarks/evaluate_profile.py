"""Where an evaluate run's time goes, read from the tables it wrote, for one lake or several side
by side (the same run date evaluated by two versions of the code, say).

Reads, for one run date and each lake, the evaluate run in ``gold.pipeline_runs`` (its wall time,
its stages and its race), the fit and predict seconds every fitted candidate recorded per segment
and window in ``gold.backtest_metrics``, and each segment's demand class and champion in
``gold.model_selection``. Prints, one column per lake: the run's wall time and core-seconds (wall
x cores), the core-seconds inside model fits and outside them (pandas and Arrow work inside the
Spark tasks, scheduling, driver-side work and idle cores), the stages the run log records
(``detail.stages``: the fits of the race's sample, the race, the fits, the judging, the writes),
and the race and judging together: the driver's work while the executors wait. Then per lake
each fitted family's share by demand class (fits, seconds, seconds per fit, segments it won as
their own champion: a family that only earns weight in a winning combination shows 0 here) and
each class's race. Combinations, the pool and the ensemble are derived from their members'
forecasts and cost no fit of their own; they are left out of the sums. Run evaluate first (``make
demo``, or ``lakecast ingest``, ``features`` and ``evaluate`` for the date); nothing is recomputed.

    .venv/bin/python benchmarks/evaluate_profile.py --run-date 2011-12-09 [--config PATH] [--cores N]
        [--lakes before=/tmp/lake_old after=lake]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import record  # noqa: E402
from jobs.common.config import load_config  # noqa: E402
from jobs.common.reader import read_table  # noqa: E402
from jobs.core.names import COMBINATIONS, PRODUCTION  # noqa: E402


def cores_of(master: str) -> int | None:
    """Cores of a ``local[N]`` master; None for ``local[*]`` or a cluster (pass --cores)."""
    found = re.fullmatch(r"local\[(\d+)\]", master)
    return int(found.group(1)) if found else (1 if master == "local" else None)


def profile(config: str | None, lake: str | None, day, cores: int | None) -> dict:
    """The figures of one lake's evaluate run for ``day``."""
    if lake:
        os.environ["LAKECAST_LAKE"] = lake
    cfg = load_config(config)
    cores = cores or cores_of(cfg.spark_master)
    if cores is None:
        sys.exit(f"cannot tell the cores of master {cfg.spark_master}; pass --cores")
    runs = read_table("pipeline_runs", cfg)
    runs = runs[(runs["job"] == "evaluate") & (runs["status"] == "success")
                & (pd.to_datetime(runs["run_date"]).dt.date == day)]
    if runs.empty:
        sys.exit(f"no successful evaluate run for {day} in {cfg.lake_root}; run it first")
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
    races = detail.get("race", {})
    stages = detail.get("stages", {})
    # before the two stages, the race replayed its sample's backtest on the driver ("replay_seconds")
    race_s = sum(r.get("judge_seconds", r.get("replay_seconds", 0.0)) for r in races.values())
    return {"cfg": cfg, "run": run, "wall": wall, "cores": cores, "detail": detail, "fitted": fitted,
            "choice": choice, "metrics": metrics, "stages": stages, "race_s": race_s,
            "in_fits": float(fitted["seconds"].sum())}


def side_by_side(figures: dict[str, dict]) -> None:
    names = list(figures)
    width = max(14, *(len(n) + 2 for n in names))
    stage_names = list(dict.fromkeys(s for f in figures.values() for s in f["stages"]))

    def line(label: str, values: list[str]) -> None:
        print(f"  {label:<44}" + "".join(f"{v:>{width}}" for v in values))

    print(f"\nevaluate {next(iter(figures.values()))['run']['run_date']}, side by side:")
    line("", names)
    line("run", [str(f["run"]["run_id"])[-8:] for f in figures.values()])
    line("segments evaluated", [f"{f['choice']['segment_id'].nunique():,}" for f in figures.values()])
    line("wall s", [f"{f['wall']:,.0f}" for f in figures.values()])
    line("core-seconds (wall x cores)", [f"{f['wall'] * f['cores']:,.0f}" for f in figures.values()])
    line("core-s inside model fits", [f"{f['in_fits']:,.0f}" for f in figures.values()])
    line("core-s everything else", [f"{f['wall'] * f['cores'] - f['in_fits']:,.0f}" for f in figures.values()])
    for s in stage_names:
        line(f"stage {s} (wall s)", [f"{f['stages'][s]:,.1f}" if s in f["stages"] else "-" for f in figures.values()])
    line("race's judging / replays (wall s)", [f"{f['race_s']:,.1f}" for f in figures.values()])
    line("race and judging (wall s)", [
        f"{f['stages'].get('race', 0.0) + f['stages']['judge']:,.1f}" if "judge" in f["stages"]
        else "not recorded" for f in figures.values()])


def families(name: str, f: dict) -> None:
    fitted, choice, core_seconds = f["fitted"], f["choice"], f["wall"] * f["cores"]
    wins = choice.groupby(["demand_class", "champion"]).size()
    table = (
        fitted.groupby(["demand_class", "model"])
        .agg(fits=("seconds", "size"), seconds=("seconds", "sum"), failed=("status", lambda s: int((s == "failed").sum())))
        .reset_index()
        .sort_values(["demand_class", "seconds"], ascending=[True, False])
    )
    print(f"\n{name}: evaluate run {f['run']['run_id']}: {f['wall']:,.0f} s wall on {f['cores']} cores = "
          f"{core_seconds:,.0f} core-seconds; windows {f['metrics']['window'].nunique()}, "
          f"fitted candidates {fitted['model'].nunique()}; "
          f"{', '.join(f'{c} {n:,}' for c, n in choice['demand_class'].value_counts().items())}")
    print(f"  {'class':<13} {'model':<15} {'fits':>7} {'seconds':>9} {'s/fit':>7} {'core-s':>7} {'failed':>6} {'won':>6}")
    for r in table.itertuples():
        won = int(wins.get((r.demand_class, r.model), 0))
        print(f"  {r.demand_class:<13} {r.model:<15} {r.fits:>7,} {r.seconds:>9,.0f} {r.seconds / r.fits:>7.3f} "
              f"{r.seconds / core_seconds:>6.1%} {r.failed:>6,} {won:>6,}")
    idle = table[[int(wins.get((c, m), 0)) == 0 for c, m in zip(table["demand_class"], table["model"])]]
    print(f"  families that won no segment of their class: {float(idle['seconds'].sum()):,.0f} core-s of fits")
    for c, r in f["detail"].get("race", {}).items():
        if not r["raced"]:
            print(f"  race, {c}: not raced ({r['reason']})")
            continue
        print(f"  race, {c}: {r['sampled']:,} sampled segments, {r['fit_seconds']:,.0f} core-s of fits; "
              f"rule's held-out MASE on the sample {r['full_score']:.4f} with every candidate, "
              f"{r['score']:.4f} with those kept; dropped: {', '.join(r['dropped']) or 'none'}")
        for t in r["trials"]:
            print(f"    {t['family']:<15} {t['cost_share']:>5.0%} of the sample's fit time, without it "
                  f"{t['without']:.4f} vs {t['with']:.4f}: {t['decision']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--cores", type=int, default=None, help="cores the run had (default: from a local[N] master)")
    parser.add_argument("--lakes", nargs="*", default=[], metavar="NAME=LAKE",
                        help="lakes to compare (default: the config's lake)")
    parser.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.jsonl")
    args = parser.parse_args()
    day = pd.Timestamp(args.run_date).date()
    lakes = dict(item.split("=", 1) for item in args.lakes) or {"lake": None}
    figures = {name: profile(args.config, lake, day, args.cores) for name, lake in lakes.items()}
    side_by_side(figures)
    for name, f in figures.items():
        families(name, f)
    if not args.no_record:
        record("evaluate_profile", {name: {"run_id": str(f["run"]["run_id"]), "wall_s": f["wall"],
                                           "core_s_in_fits": f["in_fits"], "stages": f["stages"],
                                           "race_judging_s": f["race_s"],
                                           "fits": f["detail"].get("fits")} for name, f in figures.items()},
               {"run_date": args.run_date, "lakes": list(lakes)})


if __name__ == "__main__":
    main()
