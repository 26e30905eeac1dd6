"""Rolling-origin backtest of one segment: plain pandas, no Spark (the evaluate job maps it).

Window k of K ends ``(K - k) * step`` periods before the last period; its cutoff is ``horizon``
periods before that end. Every candidate is fitted only on the periods up to the cutoff and
forecasts the ``horizon`` periods after it; errors are measured on the open periods of that
window (closed periods are excluded). A candidate that fails on a window is recorded as failed
with its reason; the other candidates are still evaluated. Combinations are scored from the
members' window forecasts (no extra fits): the members that forecast the window are combined.

The pool (:class:`~jobs.models.combination.Pool`) of window k is chosen only from windows whose
test periods ended by k's cutoff (``ceil(horizon / step)`` windows back: overlapping windows would
leak k's actuals into the choice), so its score is an honest measure of pooling. Before any such
window exists there is nothing to judge on, and the pool is the median of every candidate (robust
to one candidate that goes astray).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.calendar import season_length
from jobs.core.names import METRICS, POOL
from jobs.evaluation.metrics import seasonal_naive_scale, window_metrics
from jobs.models.base import Forecaster, ModelFailure
from jobs.models.combination import combine, pool_members

RESULT_COLUMNS = ["model", "window", "cutoff", "n_train", "n_test", "actual_total", "status", "reason",
                  *METRICS, "seconds"]
# One row per candidate, window and open test period: what gold.backtest_forecasts keeps, so any
# combination of the candidates can be scored again without a fit (``scale``: MASE's denominator).
FORECAST_COLUMNS = ["model", "window", "cutoff", "ds", "actual", "yhat", "yhat_lower", "yhat_upper", "scale"]


def cutoffs(n_periods: int, *, horizon: int, windows: int, step: int) -> list[int]:
    """Positions (0-based, in the calendar) of each window's last training period, oldest first."""
    last = n_periods - 1
    return [last - horizon - (windows - k) * step for k in range(1, windows + 1)]


def backtest_segment(history: pd.DataFrame, candidates: dict[str, Callable[[], Forecaster]],
                     **settings: Any) -> pd.DataFrame:
    """The metrics of :func:`backtest_with_forecasts` alone."""
    return backtest_with_forecasts(history, candidates, **settings)[0]


def backtest_with_forecasts(
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
    pool: list[str] | None = None,
    margin: float = 0.0,
    metric: str = "mase",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics per candidate and window for one segment, and the forecasts they were measured on.

    Args:
        history: the segment's complete calendar: ``ds``, ``y`` (NaN when closed), ``is_closed``
            and the ``regressors``. Test periods get no regressor values, as in scoring (the
            models carry the last observed values forward).
        candidates: model name -> a factory of a fresh, unfitted model.
        combinations: name -> (``mean`` or ``median``, member candidate names).
        pool: the candidates the pool draws from (None: no pool); ``margin`` and ``metric`` say
            how (see :func:`pool_members`).

    Returns:
        One row per candidate and window, columns :data:`RESULT_COLUMNS`; and one row per
        candidate that forecast, window and open test period, columns :data:`FORECAST_COLUMNS`.
    """
    h = history.sort_values("ds").reset_index(drop=True)
    h["ds"] = pd.to_datetime(h["ds"])
    h["y"] = h["y"].where(~h["is_closed"].astype(bool)).astype(float)
    m = season_length(frequency)
    gap = math.ceil(horizon / step)
    extra = [*(combinations or {}), *([POOL] if pool else [])]
    rows, kept = [], []
    for window, cut in enumerate(cutoffs(len(h), horizon=horizon, windows=windows, step=step), 1):
        train = h.iloc[: cut + 1] if cut >= 0 else h.iloc[:0]
        test = h.iloc[cut + 1 : cut + 1 + horizon] if cut >= 0 else h.iloc[:0]
        open_test = test[test["y"].notna()]
        n_train = int(train["y"].notna().sum())
        base = {"window": window, "cutoff": train["ds"].max() if len(train) else pd.NaT,
                "n_train": n_train, "n_test": len(open_test),
                "actual_total": float(open_test["y"].abs().sum())}
        if n_train < 2 * m or open_test.empty:
            for name in [*candidates, *extra]:
                rows.append({**base, "model": name, "status": "skipped",
                             "reason": f"window {window}: {n_train} training periods, "
                                       f"{len(open_test)} open test periods",
                             **dict.fromkeys(METRICS, np.nan)})
            continue
        scale = seasonal_naive_scale(train["y"].to_numpy(), m)
        forecasts, failures, seconds = {}, {}, {}
        for name, make in candidates.items():
            started = time.perf_counter()
            model = make()
            try:
                forecasts[name] = model.fit(train[["ds", "y", *regressors]]).predict(open_test[["ds"]])
            except ModelFailure as exc:
                failures[name] = str(exc)
            # a model replayed from an earlier backtest (the race) reports what its fit took there
            replayed = getattr(model, "replayed_seconds", None)
            seconds[name] = replayed if replayed is not None else time.perf_counter() - started
        for name, (method, members) in (combinations or {}).items():
            seconds[name] = sum(seconds[n] for n in members)
            if any(n in forecasts for n in members):
                forecasts[name] = combine([forecasts[n] for n in members if n in forecasts], method)
            else:
                failures[name] = "combination_failed: every member failed"
        why = None
        if pool:
            scored = pd.DataFrame(rows, columns=RESULT_COLUMNS)
            chosen, why = pooled(scored[scored["window"] <= window - gap], pool, margin, metric)
            members = [n for n in chosen if n in forecasts]
            seconds[POOL] = sum(seconds[n] for n in pool)
            if members:
                forecasts[POOL] = combine([forecasts[n] for n in members], "mean")
            elif any(n in forecasts for n in pool):
                forecasts[POOL] = combine([forecasts[n] for n in pool if n in forecasts], "median")
                why = "median of every candidate: " + (
                    f"the pooled {', '.join(chosen)} failed on this window" if chosen else why)
            else:
                failures[POOL] = "combination_failed: every member failed"
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
            rows.append({**base, "model": name, "status": "ok", "reason": why if name == POOL else None,
                         **metrics, "seconds": seconds[name]})
            kept.append(pd.DataFrame({
                "model": name, "window": window, "cutoff": base["cutoff"], "ds": open_test["ds"].to_numpy(),
                "actual": open_test["y"].to_numpy(), **{c: forecast[c].to_numpy(dtype=float) for c in
                                                        ("yhat", "yhat_lower", "yhat_upper")}, "scale": scale}))
    forecasts = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=FORECAST_COLUMNS)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), forecasts[FORECAST_COLUMNS]


def pooled(earlier: pd.DataFrame, candidates: list[str], margin: float, metric: str) -> tuple[list[str], str]:
    """The pool chosen on ``earlier`` backtest rows, and in words why (the pool's ``reason``).

    A candidate is judged on its mean ``metric`` over the earlier windows; one that failed any of
    them is out. No earlier window, or no finite score: no members."""
    ok = earlier[earlier["status"] != "skipped"]
    windows = sorted(ok["window"].unique())
    if not windows:
        return [], "no earlier window to judge on"
    scores = {}
    for name in candidates:
        own = ok[ok["model"] == name]
        if len(own) == len(windows) and (own["status"] == "ok").all():
            scores[name] = float(own[metric].mean())
    members = pool_members(scores, margin)
    if not members:
        return [], f"no candidate scored windows {windows}"
    span = f"window {windows[0]}" if len(windows) == 1 else f"windows {windows[0]}-{windows[-1]}"
    return members, f"pool {', '.join(members)}: within {margin:.0%} of the best {metric} on {span}"
