"""Rolling-origin backtest of one segment: plain pandas, no Spark (the evaluate job maps it).

Window k of K ends ``(K - k) * step`` periods before the last period; its cutoff is ``horizon``
periods before that end. Every candidate is fitted only on the periods up to the cutoff and
forecasts the ``horizon`` periods after it; errors are measured on the open periods of that
window (closed periods are excluded). A candidate that fails on a window is recorded as failed
with its reason; the other candidates are still evaluated. Combinations are scored from the
members' window forecasts (no extra fits): the members that forecast the window are combined.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from jobs.common.periods import season_length
from jobs.models.base import Forecaster, ModelFailure
from jobs.models.combination import combine
from jobs.models.metrics import METRICS, seasonal_naive_scale, window_metrics

RESULT_COLUMNS = ["model", "window", "cutoff", "n_train", "n_test", "actual_total", "status", "reason",
                  *METRICS, "seconds"]


def cutoffs(n_periods: int, *, horizon: int, windows: int, step: int) -> list[int]:
    """Positions (0-based, in the calendar) of each window's last training period, oldest first."""
    last = n_periods - 1
    return [last - horizon - (windows - k) * step for k in range(1, windows + 1)]


def backtest_segment(
    history: pd.DataFrame,
    candidates: dict[str, Callable[[], Forecaster]],
    *,
    frequency: str,
    horizon: int,
    windows: int,
    step: int,
    interval_width: float,
    regressors: tuple[str, ...] = (),
    cost_under: float = 1.0,
    cost_over: float = 1.0,
    combinations: dict[str, tuple[str, list[str]]] | None = None,
) -> pd.DataFrame:
    """Metrics per candidate and window for one segment.

    Args:
        history: the segment's complete calendar: ``ds``, ``y`` (NaN when closed), ``is_closed``
            and the ``regressors``. Test periods get no regressor values, as in scoring (the
            models carry the last observed values forward).
        candidates: model name -> a factory of a fresh, unfitted model.
        combinations: name -> (``mean`` or ``median``, member candidate names).

    Returns:
        One row per candidate and window, columns :data:`RESULT_COLUMNS`.
    """
    h = history.sort_values("ds").reset_index(drop=True)
    h["ds"] = pd.to_datetime(h["ds"])
    h["y"] = h["y"].where(~h["is_closed"].astype(bool)).astype(float)
    m = season_length(frequency)
    rows = []
    for window, cut in enumerate(cutoffs(len(h), horizon=horizon, windows=windows, step=step), 1):
        train = h.iloc[: cut + 1] if cut >= 0 else h.iloc[:0]
        test = h.iloc[cut + 1 : cut + 1 + horizon] if cut >= 0 else h.iloc[:0]
        open_test = test[test["y"].notna()]
        n_train = int(train["y"].notna().sum())
        base = {"window": window, "cutoff": train["ds"].max() if len(train) else pd.NaT,
                "n_train": n_train, "n_test": len(open_test),
                "actual_total": float(open_test["y"].abs().sum())}
        if n_train < 2 * m or open_test.empty:
            for name in [*candidates, *(combinations or {})]:
                rows.append({**base, "model": name, "status": "skipped",
                             "reason": f"window {window}: {n_train} training periods, "
                                       f"{len(open_test)} open test periods",
                             **dict.fromkeys(METRICS, np.nan)})
            continue
        scale = seasonal_naive_scale(train["y"].to_numpy(), m)
        forecasts, failures, seconds = {}, {}, {}
        for name, make in candidates.items():
            started = time.perf_counter()
            try:
                forecasts[name] = make().fit(train[["ds", "y", *regressors]]).predict(open_test[["ds"]])
            except ModelFailure as exc:
                failures[name] = str(exc)
            seconds[name] = time.perf_counter() - started
        for name, (method, members) in (combinations or {}).items():
            seconds[name] = sum(seconds[n] for n in members)
            if any(n in forecasts for n in members):
                forecasts[name] = combine([forecasts[n] for n in members if n in forecasts], method)
            else:
                failures[name] = "combination_failed: every member failed"
        for name, reason in failures.items():
            rows.append({**base, "model": name, "status": "failed", "reason": reason,
                         **dict.fromkeys(METRICS, np.nan), "seconds": seconds[name]})
        for name, forecast in forecasts.items():
            metrics = window_metrics(
                open_test["y"].to_numpy(),
                forecast["yhat"].to_numpy(),
                forecast["yhat_lower"].to_numpy(),
                forecast["yhat_upper"].to_numpy(),
                scale=scale,
                interval_width=interval_width,
                cost_under=cost_under,
                cost_over=cost_over,
            )
            rows.append({**base, "model": name, "status": "ok", "reason": None, **metrics,
                         "seconds": seconds[name]})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
