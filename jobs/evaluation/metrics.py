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


def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float:
    """Mean pinball (quantile) loss of the forecast quantile ``q`` at level ``tau``."""
    diff = np.asarray(y, dtype=float) - np.asarray(q, dtype=float)
    return float(np.mean(np.maximum(tau * diff, (tau - 1) * diff)))


def window_metrics(
    y: np.ndarray,
    yhat: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    scale: float,
    interval_width: float,
    cost_under: float = 1.0,
    cost_over: float = 1.0,
) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one forecast window (arrays of open periods only).

    ``cost`` is the mean cost per period: ``cost_under`` per unit the forecast fell short of
    demand, ``cost_over`` per unit it exceeded it.
    """
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if y.size == 0:
        return {m: float("nan") for m in METRICS}
    err = yhat - y
    abs_err = np.abs(err)
    total = np.abs(y).sum()
    denom = np.abs(y) + np.abs(yhat)
    smape_terms = np.divide(2 * abs_err, denom, out=np.zeros_like(abs_err), where=denom > 0)
    mae = float(abs_err.mean())
    tau_low, tau_high = (1 - interval_width) / 2, (1 + interval_width) / 2
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "wape": float(abs_err.sum() / total) if total > 0 else float("nan"),
        "smape": float(smape_terms.mean()),
        "mase": mae / scale if np.isfinite(scale) and scale > 0 else float("nan"),
        "bias": float(err.mean()),
        "coverage": float(np.mean((y >= lower) & (y <= upper))),
        "pinball": (pinball(y, lower, tau_low) + pinball(y, upper, tau_high)) / 2,
        "cost": float(np.mean(cost_under * np.maximum(-err, 0) + cost_over * np.maximum(err, 0))),
    }
