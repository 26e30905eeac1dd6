"""Combining forecasts period by period, and choosing a pool (plain numpy and pandas).

The combination families (:mod:`jobs.models.combination`) combine their fitted members' forecasts
with these functions, and the judge stage of a backtest (:mod:`jobs.evaluation.judge`) combines
the members' stored window forecasts with the same ones, so both give the same numbers. Intervals
are combined bound by bound (averaging quantiles, "Vincentization"; Lichtendahl, Grushka-Cockayne
and Winkler, 2013).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from jobs.core.errors import ModelFailure

VALUES = ["yhat", "yhat_lower", "yhat_upper"]


def combine(forecasts: list[pd.DataFrame], method: str, weights: list[float] | None = None) -> pd.DataFrame:
    """Period-by-period mean, median or weighted mean (``weights``, renormalised over the
    forecasts given) of forecasts that share their ``ds`` column."""
    if not forecasts:
        raise ModelFailure("combination_failed", "no member forecast")
    reduced = combine_arrays(np.stack([f[VALUES].to_numpy(dtype=float) for f in forecasts]), method, weights)
    out = pd.DataFrame(reduced, columns=VALUES)
    out.insert(0, "ds", forecasts[0]["ds"].to_numpy())
    return out[["ds", *VALUES]]


def combine_arrays(stacked: np.ndarray, method: str, weights: list[float] | np.ndarray | None = None) -> np.ndarray:
    """:func:`combine` on the members' values stacked on the first axis (members x periods x
    values): a backtest combines many windows' forecasts in one call, with the same numbers."""
    if method == "weighted":
        w = np.asarray(weights, dtype=float)
        if w.sum() <= 0:
            raise ModelFailure("combination_failed", "no member with a positive weight")
        return np.tensordot(w / w.sum(), stacked, axes=1)
    return {"mean": np.mean, "median": np.median}[method](stacked, axis=0)


def pool_members(scores: dict[str, float], margin: float) -> list[str]:
    """The candidates whose score is at most the best finite score x (1 + ``margin``), in the
    order given; none when no score is finite (nothing to judge on)."""
    finite = {n: s for n, s in scores.items() if math.isfinite(s)}
    if not finite:
        return []
    limit = min(finite.values()) * (1 + margin)
    return [n for n, s in finite.items() if s <= limit + 1e-12 * abs(limit)]
