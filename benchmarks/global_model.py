"""The global model at its natural large workload: the bundled data by country x product.

Builds a lake (ingest, features) with ``segment_keys: [country, item_id]`` in a scratch folder,
then runs ``lakecast evaluate`` with the candidates seasonal_naive and global_lgbm (race off) once
per grouping (``model.global_lgbm.buckets``: 1 is one model over every segment), each in its own
process, sampling the resident memory of the whole process tree (driver, JVM, Python workers)
twice a second. Prints, per grouping: wall seconds, the tree's peak RSS and the largest single
process's, the segments and rows the global model learned from, and its fit seconds (from
``gold.backtest_metrics``: every segment records its share of its group's fit) beside seasonal
naive's.

    .venv/bin/python benchmarks/global_model.py                 # buckets 1 and 2
    .venv/bin/python benchmarks/global_model.py --buckets 1 4 --lake .cache/global_bench
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.common.config import DEFAULT_CONFIG, load_config  # noqa: E402
from jobs.common.reader import read_table  # noqa: E402

RUN_DATE = "2011-12-09"


def write_config(folder: Path, buckets: int) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["dataset"]["source"] = str(DEFAULT_CONFIG.parent / raw["dataset"]["source"])
    raw["dataset"]["segment_keys"] = ["country", "item_id"]
    raw["evaluation"].update({"candidates": ["seasonal_naive", "global_lgbm"], "intermittent_candidates": [],
                              "race": {"enabled": False}})
    raw["model"].setdefault("global_lgbm", {})["buckets"] = buckets
    path = folder / f"country_item_{buckets}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run(job: str, config: Path, lake: Path) -> tuple[float, int, int]:
    """Run one job in its own process: wall seconds, peak RSS of its process tree and of its
    largest process (bytes)."""
    env = {**os.environ, "LAKECAST_LAKE": str(lake), "LAKECAST_CONFIG": str(config)}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", job, "--run-date", RUN_DATE], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, tree_peak, one_peak = psutil.Process(proc.pid), 0, 0
    while proc.poll() is None:
        try:
            rss = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
        except psutil.NoSuchProcess:
            rss = []
        tree_peak, one_peak = max(tree_peak, sum(rss)), max([one_peak, *rss])
        time.sleep(0.5)
    if proc.returncode != 0:
        sys.exit(f"{job} failed:\n{proc.stderr.read()[-3000:]}")
    return time.monotonic() - started, tree_peak, one_peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--lake", type=Path, default=None, help="keep the lake here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lakecast-global-") as scratch:
        folder = Path(scratch)
        lake = (args.lake or folder / "lake").resolve()
        first = write_config(folder, args.buckets[0])
        os.environ["LAKECAST_LAKE"] = str(lake)  # what the jobs get: the config reads it too
        cfg = load_config(first)
        if not (lake / "silver").exists():
            for job in ("ingest", "features"):
                seconds, _, _ = run(job, first, lake)
                print(f"{job}: {seconds:.0f} s", flush=True)
        demand = read_table(cfg.tables["demand"], cfg, columns=["segment_id", "eligible"])
        eligible = demand[demand["eligible"]]
        print(f"country x product: {demand['segment_id'].nunique():,} segments, {eligible['segment_id'].nunique():,} "
              f"eligible with {len(eligible):,} rows (what the global model learns from); run date {RUN_DATE}, "
              f"{os.cpu_count()} cores")
        print(f"{'buckets':>7} {'evaluate s':>10} {'tree peak GB':>12} {'largest GB':>10} "
              f"{'global fit core-s':>17} {'naive core-s':>12}")
        for buckets in args.buckets:
            config = write_config(folder, buckets)
            seconds, tree, one = run("evaluate", config, lake)
            metrics = read_table(cfg.tables["backtest_metrics"], cfg, columns=["model", "seconds", "run_date"])
            metrics = metrics[metrics["run_date"].astype(str) == RUN_DATE]
            fit = metrics.groupby("model")["seconds"].sum()
            print(f"{buckets:>7} {seconds:>10.0f} {tree / 2**30:>12.2f} {one / 2**30:>10.2f} "
                  f"{fit.get('global_lgbm', 0):>17.0f} {fit.get('seasonal_naive', 0):>12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
