"""Forecast error metrics on one window of one segment (plain numpy, closed periods removed).

All take the actuals ``y``, the point forecast ``yhat`` and, where needed, the interval bounds.
A metric that is undefined on the window (a zero denominator) is NaN, never a made-up number.
"""

from __future__ import annotations

import numpy as np

from jobs.core.names import METRICS


def seasonal_naive_scale(history: np.ndarray, season: int) -> float:
    """Mean absolute seasonal difference of the training history (MASE's denominator).

    Pairs with a missing (closed) value on either side are skipped; NaN when none remain or when
    the scale is zero (a constant history).
    """
    y = np.asarray(history, dtype=float)
    if len(y) <= season:
        return float("nan")
    diffs = np.abs(y[season:] - y[:-season])
    diffs = diffs[np.isfinite(diffs)]
    scale = float(diffs.mean()) if diffs.size else float("nan")
    return scale if scale > 0 else float("nan")


def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float | np.ndarray:
    """Mean pinball (quantile) loss of the forecast quantile ``q`` at level ``tau`` (per row of
    2-D arrays)."""
    diff = np.asarray(y, dtype=float) - np.asarray(q, dtype=float)
    return np.mean(np.maximum(tau * diff, (tau - 1) * diff), axis=-1)


def window_metrics(
    y: np.ndarray,
    yhat: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    scale: float | np.ndarray,
    interval_width: float,
    cost_under: float = 1.0,
    cost_over: float = 1.0,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` for one forecast window (1-D arrays of its open periods:
    floats), or for many windows of the same length at once (2-D arrays, a window a row, and one
    ``scale`` per row: an array per metric, the same numbers as one call per row).

    ``cost`` is the mean cost per period: ``cost_under`` per unit the forecast fell short of
    demand, ``cost_over`` per unit it exceeded it.
    """
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    one = y.ndim == 1
    if one:
        if y.size == 0:
            return {m: float("nan") for m in METRICS}
        y, yhat, lower, upper = y[None], yhat[None], lower[None], upper[None]
    scale = np.broadcast_to(np.asarray(scale, dtype=float), y.shape[:1])
    err = yhat - y
    abs_err = np.abs(err)
    total = np.abs(y).sum(axis=-1)
    denom = np.abs(y) + np.abs(yhat)
    smape_terms = np.divide(2 * abs_err, denom, out=np.zeros_like(abs_err), where=denom > 0)
    mae = abs_err.mean(axis=-1)
    tau_low, tau_high = (1 - interval_width) / 2, (1 + interval_width) / 2
    defined = np.isfinite(scale) & (scale > 0)
    out = {
        "mae": mae,
        "rmse": np.sqrt(np.mean(err**2, axis=-1)),
        "wape": np.divide(abs_err.sum(axis=-1), total, out=np.full(len(y), np.nan), where=total > 0),
        "smape": smape_terms.mean(axis=-1),
        "mase": np.divide(mae, scale, out=np.full(len(y), np.nan), where=defined),
        "bias": err.mean(axis=-1),
        "coverage": np.mean((y >= lower) & (y <= upper), axis=-1),
        "pinball": (pinball(y, lower, tau_low) + pinball(y, upper, tau_high)) / 2,
        "cost": np.mean(cost_under * np.maximum(-err, 0) + cost_over * np.maximum(err, 0), axis=-1),
    }
    return {m: float(v[0]) for m, v in out.items()} if one else out
