"""What one Prophet fit and predict costs, and what writing its Stan data with ujson saves.

cmdstanpy runs Stan as a separate program and hands it the data as a JSON file; stanio writes
that file with ujson when it is installed, else with the standard library's encoder. Prophet's
design matrix (every holiday and seasonality column for every period) makes that file large, so
the writer is a visible share of a fit. This script fits lakecast's ProphetForecaster, with the
config's Prophet settings, holidays and horizon, on real segments of the configured source (the
best sellers spread over the sales ranking), once with each writer, alternating within one process
so that both see the same machine, and prints the median seconds per fit and predict and their
ratio. Plain pandas: no Spark, no lake.

    .venv/bin/python benchmarks/prophet_fit.py [--config PATH] [--segments 6] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.common.config import load_config  # noqa: E402
from jobs.models.prophet_model import ProphetForecaster  # noqa: E402


def daily_series(cfg, count: int) -> list[pd.DataFrame]:
    """``count`` segments' daily units (zero-filled), spread over the sales ranking of the source."""
    cols = cfg.dataset.columns
    item, qty, stamp = cols["item_id"], cols["quantity"], cols["timestamp"]
    raw = pd.read_csv(cfg.dataset.source, usecols=[item, qty, stamp], dtype={item: str})
    raw["ds"] = pd.to_datetime(raw[stamp], format="mixed").dt.normalize()
    ranking = raw[item].value_counts().index
    picks = [ranking[int(i * (len(ranking) // 4) / max(count - 1, 1))] for i in range(count)]
    out = []
    for code in picks:
        y = raw.loc[raw[item] == code].groupby("ds")[qty].sum().clip(lower=0)
        days = pd.date_range(y.index.min(), raw["ds"].max())
        out.append(y.reindex(days, fill_value=0).rename("y").rename_axis("ds").reset_index())
    return out


def fit_and_predict(cfg, history: pd.DataFrame) -> float:
    started = time.perf_counter()
    model = ProphetForecaster({**cfg.model.prophet, "interval_width": cfg.model.interval_width},
                              cfg.dataset.holidays_country)
    future = pd.DataFrame({"ds": pd.date_range(history["ds"].max(), periods=cfg.dataset.horizon + 1)[1:]})
    model.fit(history).predict(future)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    import stanio.json as writer

    try:
        import ujson
    except ImportError:
        print("ujson is not installed: run `make setup`")
        return 1
    encoders = {"ujson": ujson, "json": json}
    series = daily_series(cfg, args.segments)
    fit_and_predict(cfg, series[0])  # Prophet's and Stan's first-call costs out of the figures
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.repeats):
        for name, module in encoders.items():
            writer.UJSON_AVAILABLE, writer.json = name == "ujson", module
            seconds[name].append(sum(fit_and_predict(cfg, s) for s in series) / len(series))
    writer.UJSON_AVAILABLE, writer.json = True, ujson
    per = {name: statistics.median(v) for name, v in seconds.items()}
    days = statistics.median(len(s) for s in series)
    print(f"Prophet fit + predict, {len(series)} segments (median {days:.0f} days), {args.repeats} rounds, "
          f"holidays {cfg.dataset.holidays_country}, horizon {cfg.dataset.horizon}:")
    for name, value in per.items():
        print(f"  Stan data written with {name:<5}: {value:.3f} s a segment")
    print(f"  ujson saves {1 - per['ujson'] / per['json']:.0%} ({per['json'] / per['ujson']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
