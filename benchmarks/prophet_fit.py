"""What a Prophet fit costs with Stan and with prophet-batch, side by side, and how close they are.

Fits lakecast's ProphetForecaster, with the config's Prophet settings, holidays and horizon, on
real segments of the configured source (the best sellers spread over the sales ranking), each cut
at ``--windows`` backtest cutoffs a horizon apart, as evaluate's fit stage does: once one fit after
the other with Stan (``model.prophet.fitter: stan``), once all in one ``fit_many`` call
(``fitter: batch``) and forecasting them in one ``predict_many`` call, alternating the two within
one process so that both see the same machine.
Prints the median seconds per fit and per predict of each, their ratio, and how the two fits
compare: Prophet's log posterior (what both maximise; the higher, the better the fit) and the gap
between their forecasts in MASE's units (the series' in-sample seasonal-naive error). With
``--writers``, also what writing Stan's data with ujson saves over the standard library (stanio
uses ujson when it is installed). Plain pandas: no Spark, no lake.

    .venv/bin/python benchmarks/prophet_fit.py [--config PATH] [--segments 12] [--windows 4] [--repeats 3] [--writers]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import record  # noqa: E402
from jobs.common.config import load_config  # noqa: E402
from jobs.core.calendar import season_length  # noqa: E402
from jobs.evaluation.metrics import seasonal_naive_scale  # noqa: E402
from jobs.models.prophet_model import ProphetForecaster, log_posterior  # noqa: E402


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
        out.append(y.reindex(days, fill_value=0).rename("y").rename_axis("ds").reset_index().astype({"y": float}))
    return out


def windows_of(series: list[pd.DataFrame], horizon: int, windows: int) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(training history, test periods) of each series at each backtest cutoff."""
    out = []
    for s in series:
        for k in range(windows, 0, -1):
            end = len(s) - k * horizon
            if end > 2 * horizon:
                out.append((s.iloc[:end], s.iloc[end:end + horizon][["ds"]]))
    return out


def run(cfg, cases, fitter: str) -> tuple[float, float, list[ProphetForecaster]]:
    """Seconds per fit and per predict, and the fitted models."""
    settings = {**cfg.model.prophet, "interval_width": cfg.model.interval_width}
    models = [ProphetForecaster(settings, cfg.dataset.holidays_country) for _ in cases]
    started = time.perf_counter()
    if fitter == "batch":
        fitted = ProphetForecaster.fit_many(models, [h for h, _ in cases])
    else:
        fitted = [m.fit(h) for m, (h, _) in zip(models, cases)]
    fit_s = (time.perf_counter() - started) / len(cases)
    started = time.perf_counter()
    if fitter == "batch":
        ProphetForecaster.predict_many(fitted, [f for _, f in cases], [str(i) for i in range(len(cases))])
    else:
        for m, (_, future) in zip(fitted, cases):
            m.predict(future)
    return fit_s, (time.perf_counter() - started) / len(cases), fitted


def writers(cfg, cases, repeats: int) -> None:
    import stanio.json as writer
    import ujson

    seconds: dict[str, list[float]] = {"ujson": [], "json": []}
    for _ in range(repeats):
        for name, module in (("ujson", ujson), ("json", json)):
            writer.UJSON_AVAILABLE, writer.json = name == "ujson", module
            seconds[name].append(run(cfg, cases, "stan")[0])
    writer.UJSON_AVAILABLE, writer.json = True, ujson
    per = {name: statistics.median(v) for name, v in seconds.items()}
    print(f"\nStan's data written with ujson {per['ujson']:.3f} s a fit, with json {per['json']:.3f} s: "
          f"ujson saves {1 - per['ujson'] / per['json']:.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--segments", type=int, default=12)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writers", action="store_true", help="also compare Stan's data writers (ujson, json)")
    parser.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.jsonl")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    cases = windows_of(daily_series(cfg, args.segments), cfg.dataset.horizon, args.windows)
    run(cfg, cases[:2], "stan"), run(cfg, cases[:2], "batch")  # first-call costs out of the figures
    timing: dict[str, list[tuple[float, float]]] = {"stan": [], "batch": []}
    fitted = {}
    for _ in range(args.repeats):
        for fitter in timing:
            fit_s, predict_s, fitted[fitter] = run(cfg, cases, fitter)
            timing[fitter].append((fit_s, predict_s))
    days = statistics.median(len(h) for h, _ in cases)
    print(f"Prophet on {len(cases)} backtest windows of {args.segments} bundled segments (median {days:.0f} days of "
          f"history), holidays {cfg.dataset.holidays_country}, horizon {cfg.dataset.horizon}, {args.repeats} rounds:")
    per = {f: tuple(statistics.median(t[i] for t in v) for i in (0, 1)) for f, v in timing.items()}
    for fitter, (fit_s, predict_s) in per.items():
        print(f"  {fitter:<6} fit {fit_s:.3f} s, predict {predict_s:.3f} s, together {fit_s + predict_s:.3f} s a window")
    print(f"  batch fits {per['stan'][0] / per['batch'][0]:.1f}x as fast as Stan "
          f"({sum(per['stan']) / sum(per['batch']):.1f}x with the predicts)")
    m = season_length(cfg.dataset.frequency)
    lp_gain, gaps = [], []
    for s, b, (h, future) in zip(fitted["stan"], fitted["batch"], cases):
        lp_gain.append(log_posterior(b, h) - log_posterior(s, h))
        gap = (b.predict(future)["yhat"] - s.predict(future)["yhat"]).abs().mean()
        gaps.append(gap / seasonal_naive_scale(h["y"].to_numpy(), m))
    by = [b.fitted_by for b in fitted["batch"]]
    print(f"  fitted by the batch solver {by.count('batch')} of {len(by)} ({len(by) - by.count('batch')} left to Stan)")
    print(f"  log posterior, batch minus Stan: at least 0 in {sum(g >= -1e-6 for g in lp_gain)} of {len(lp_gain)}, "
          f"median {np.median(lp_gain):+.3f}, min {min(lp_gain):+.3f}")
    print(f"  forecast gap in MASE units: median {np.median(gaps):.3f}, 90th percentile "
          f"{np.quantile(gaps, 0.9):.3f}, max {max(gaps):.3f}")
    if args.writers:
        writers(cfg, cases, args.repeats)
    if not args.no_record:
        record("prophet_fit", {"windows": len(cases), "stan_fit_s": per["stan"][0], "stan_predict_s": per["stan"][1],
                               "batch_fit_s": per["batch"][0], "batch_predict_s": per["batch"][1],
                               "lp_at_least_stan": sum(g >= -1e-6 for g in lp_gain), "gap_median": float(np.median(gaps)),
                               "gap_max": float(max(gaps))},
               {"segments": args.segments, "windows": args.windows, "repeats": args.repeats})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
