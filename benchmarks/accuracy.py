"""Accuracy benchmark: the backtest protocol of ``lakecast evaluate`` on whole datasets, by config.

For each ``CONFIG=RUN_DATE`` it runs ingest, features and evaluate through the ``lakecast`` CLI
on a fresh lake in a temporary folder, then reads ``gold.backtest_metrics`` and prints, for every
strategy (each single family, the combinations and the pool, plain per-segment choice and the
configured rule), how it does on the last backtest window when every choice is made on the
earlier windows that ended by its cutoff: mean and median MASE, WAPE, bias (sum of errors / sum
of actuals), interval coverage and fit seconds. Nothing here is specific to a dataset: another dataset is another config file.

    .venv/bin/python benchmarks/accuracy.py                  # PBS monthly, Walmart weekly, bundled daily
    .venv/bin/python benchmarks/accuracy.py conf/lakecast.yaml=2011-12-09
    .venv/bin/python benchmarks/accuracy.py --lakes .cache/accuracy   # keep the lakes; a second
                                              # run only recomputes the table from them

The Walmart drop (train.csv joined with the store-week regressors of features.csv) is prepared
from ``../shared/data/walmart_weekly`` into ``.cache/walmart_weekly`` first when that folder exists;
the PBS config reads ``../shared/data/pbs_monthly`` as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import record  # noqa: E402
from jobs.common.config import Config, load_config  # noqa: E402
from jobs.common.reader import read_table  # noqa: E402
from jobs.core.names import FAMILIES  # noqa: E402
from jobs.core.names import COMBINATIONS, COMBO_MEDIAN, ENSEMBLE, POOL, PRODUCTION  # noqa: E402
from jobs.evaluation.scorecard import format_strategies, held_out_strategies, strategy_of  # noqa: E402

WALMART = ROOT.parent / "shared" / "data" / "walmart_weekly"
RECORD = True
DEFAULT = [f"{ROOT / 'conf' / 'pbs_monthly.yaml'}=2008-06-30", f"{ROOT / 'conf' / 'walmart_weekly.yaml'}=2012-10-28",
           f"{ROOT / 'conf' / 'lakecast.yaml'}=2011-12-09"]


def prepare_walmart(out_dir: Path) -> Path:
    """train.csv with Temperature, Fuel_Price, CPI, Unemployment of its store and week."""
    out = out_dir / "walmart_weekly.csv"
    if out.exists():
        return out
    with zipfile.ZipFile(WALMART / "train.csv.zip") as z, z.open("train.csv") as f:
        sales = pd.read_csv(f)
    regressors = pd.read_csv(WALMART / "features.csv")[
        ["Store", "Date", "Temperature", "Fuel_Price", "CPI", "Unemployment"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    sales.merge(regressors, on=["Store", "Date"], how="left").to_csv(out, index=False)
    return out


def run_dataset(config: Path, run_date: str, lake: Path) -> None:
    env = {**os.environ, "LAKECAST_LAKE": str(lake), "LAKECAST_CONFIG": str(config)}
    os.environ.update({"LAKECAST_LAKE": env["LAKECAST_LAKE"]})
    cfg = load_config(config)
    print(f"\n=== {cfg.dataset.name}: {config.name}, run date {run_date}, {cfg.dataset.frequency}, "
          f"horizon {cfg.dataset.horizon}, {cfg.evaluation.windows} windows, rule {cfg.evaluation.rule} "
          f"(margin {cfg.evaluation.margin:.0%})", flush=True)
    done = lake / "_evaluated"
    seconds = None
    if done.exists() and done.read_text() == run_date:
        print(f"reusing the backtests in {lake}")
    else:
        seconds = run_jobs(env, run_date)
        done.write_text(run_date)
    table = print_table(cfg)
    if RECORD:
        record("accuracy", {"held_out": json.loads(table.to_json(orient="index")), "segments": table.attrs["segments"],
                            "wall_s": seconds},
               {"config": config.name, "run_date": run_date, "rule": cfg.evaluation.rule,
                "candidates": list(cfg.evaluation.candidates), "fitter": cfg.model.prophet.get("fitter", "batch")})


def run_jobs(env: dict[str, str], run_date: str) -> dict[str, float]:
    """ingest, features and evaluate through the CLI, each in its own process, timed."""
    seconds = {}
    for job in ("ingest", "features", "evaluate"):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "jobs.cli", job, "--run-date", run_date],
                              env=env, cwd=ROOT, capture_output=True, text=True)
        seconds[job] = time.monotonic() - started
        if done.returncode != 0:
            sys.exit(f"{job} failed for {env['LAKECAST_CONFIG']}:\n{done.stderr[-3000:]}")
    print("wall seconds: " + ", ".join(f"{job} {s:.0f}" for job, s in seconds.items()))
    return seconds


def print_table(cfg: Config) -> pd.DataFrame:
    backtest = read_table(cfg.tables["backtest_metrics"], cfg)
    selection = read_table(cfg.tables["model_selection"], cfg, columns=["segment_id", "demand_class", "ensemble_weights"])
    classes = selection[["segment_id", "demand_class"]]
    per_window = backtest[(backtest["status"] == "ok") & (backtest["model"] != PRODUCTION)].merge(classes)
    settings = {"metric": cfg.evaluation.metric, "rank": {n: i for i, n in enumerate(FAMILIES)},
                "margin": cfg.evaluation.margin, "gap": math.ceil(cfg.dataset.horizon / cfg.evaluation.step)}
    table = held_out_strategies(per_window, rule=cfg.evaluation.rule, **settings)
    for label, left_out in (("portfolio rule, no ensemble", {ENSEMBLE}),
                            ("portfolio rule, no pool/ens.", {POOL, ENSEMBLE})):
        # the rules lakecast had before the ensemble, and before the pool: the portfolio rule
        # over the other candidates, on the same segments
        if left_out & set(per_window["model"]):
            before = held_out_strategies(per_window[~per_window["model"].isin(left_out)], rule="portfolio",
                                         **settings)
            row = before.loc[["portfolio rule"]].rename(index={"portfolio rule": label})
            row["rule_mase"] = table.loc["portfolio rule", "rule_mase"]
            table = pd.concat([table, row]).pipe(lambda t: setattr(t, "attrs", table.attrs) or t)
    counts = classes[classes["segment_id"].isin(per_window["segment_id"])]["demand_class"].value_counts().to_dict()
    print(f"segments backtested: {per_window['segment_id'].nunique():,} ({counts}); portfolio best on the "
          f"earlier windows: {table.attrs['portfolio']}")
    print(f"last window ({table.attrs['segments']:,} segments every configured candidate forecast; "
          "seconds = fit time on that window of what the strategy needs):")
    print(format_strategies(table, indent="  "), flush=True)
    print(bar(table, cfg.evaluation.rule), flush=True)
    weights = selection.dropna(subset=["ensemble_weights"]).drop_duplicates("demand_class")
    for r in weights.itertuples():
        print(f"  ensemble of the {r.demand_class} segments (all windows): "
              + ", ".join(f"{n} {w:.2f}" for n, w in dict(r.ensemble_weights).items() if w > 0))
    return table


def bar(table: pd.DataFrame, rule: str) -> str:
    """Issue 14's bar for the configured rule, over all the table's segments: mean MASE at least 3 %
    below the best single family and below the median combination and the portfolio rules without
    the ensemble, with pooled WAPE no worse than theirs."""
    everyone = table[table["segments"] == table["segments"].max()]
    own = strategy_of(rule)
    if own not in everyone.index:
        return f"  bar: the rule's row {own!r} is not in the table"
    mine = everyone.loc[own]
    singles = everyone[everyone.index.isin(FAMILIES) & ~everyone.index.isin(COMBINATIONS)]
    best = singles["mean_mase"].idxmin()
    lines = [f"  bar for {own} (mean MASE {mine.mean_mase:.3f}, WAPE {mine.wape:.3f}):"]
    for name, limit in ((best, 0.97), (COMBO_MEDIAN, 1.0), ("portfolio rule, no ensemble", 1.0),
                        ("portfolio rule, no pool/ens.", 1.0)):
        if name in everyone.index and name != own:
            other = everyone.loc[name]
            ok = mine.mean_mase < limit * other.mean_mase and mine.wape <= other.wape
            lines.append(f"    {'met' if ok else 'NOT met'}: {(mine.mean_mase / other.mean_mase - 1):+.1%} MASE, "
                         f"{(mine.wape / other.wape - 1):+.1%} WAPE against {name}"
                         + (" (best single family; 3 % below needed)" if name == best else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", default=DEFAULT, help="CONFIG=RUN_DATE pairs")
    parser.add_argument("--lakes", type=Path, default=None,
                        help="keep each dataset's lake in LAKES/<config name> (default: a temporary folder)")
    parser.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.jsonl")
    args = parser.parse_args(argv)
    global RECORD
    RECORD = not args.no_record
    if WALMART.exists():
        prepare_walmart(ROOT / ".cache" / "walmart_weekly")
    with tempfile.TemporaryDirectory(prefix="lakecast-accuracy-") as scratch:
        for item in args.datasets:
            config, _, run_date = item.partition("=")
            config = Path(config).resolve()
            lake = (args.lakes.resolve() if args.lakes else Path(scratch)) / config.stem
            lake.mkdir(parents=True, exist_ok=True)
            run_dataset(config, run_date, lake)
    return 0


if __name__ == "__main__":
    sys.exit(main())
