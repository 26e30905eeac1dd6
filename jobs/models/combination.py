"""Forecast combinations: the mean or the median of several models' forecasts.

A combination fits each member on the same history and combines their forecasts period by
period. Intervals are combined the same way, bound by bound (averaging quantiles,
"Vincentization"; Lichtendahl, Grushka-Cockayne and Winkler, 2013), which keeps them at the
members' nominal level when the members agree and widens nothing artificially. A member that
fails is left out and recorded in ``failed``; the combination fails only when every member
does. Backtests combine the members' stored window forecasts with :func:`combine`, so a
combination costs no extra fits there.

:class:`Pool` is forecast pooling (Kourentzes, Barrow and Petropoulos, 2019), between selection
and combination: the mean of the candidates whose backtest score is within a margin of the
segment's best (:func:`pool_members`). One clearly best candidate makes a pool of one (plain
selection); several close ones are averaged, which takes the noise out of a choice made on a few
windows. Which candidates are in the pool is learnt from the backtest, like a model's
parameters; the pool's settings are the candidates it may draw from and the margin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from jobs.core import names
from jobs.models.base import FORECAST_COLUMNS, Forecaster, ModelFailure

VALUES = ["yhat", "yhat_lower", "yhat_upper"]


def combine(forecasts: list[pd.DataFrame], method: str) -> pd.DataFrame:
    """Period-by-period mean or median of forecasts that share their ``ds`` column."""
    if not forecasts:
        raise ModelFailure("combination_failed", "no member forecast")
    stacked = np.stack([f[VALUES].to_numpy(dtype=float) for f in forecasts])
    reduce = {"mean": np.mean, "median": np.median}[method]
    out = pd.DataFrame(reduce(stacked, axis=0), columns=VALUES)
    out.insert(0, "ds", forecasts[0]["ds"].to_numpy())
    return out[FORECAST_COLUMNS]


def pool_members(scores: dict[str, float], margin: float) -> list[str]:
    """The candidates whose score is at most the best finite score x (1 + ``margin``), in the
    order given; none when no score is finite (nothing to judge on)."""
    finite = {n: s for n, s in scores.items() if math.isfinite(s)}
    if not finite:
        return []
    limit = min(finite.values()) * (1 + margin)
    return [n for n, s in finite.items() if s <= limit + 1e-12 * abs(limit)]


class Combination(Forecaster):
    """Base of the combinations; subclasses fix ``method``. ``members`` are model specs."""

    method: ClassVar[str]
    # Every family by name, handed over by the registry (``jobs.models``): a member may be any
    # family, so this module cannot import the registry without an import circle.
    families: ClassVar[Mapping[str, type[Forecaster]]] = {}

    def __init__(self, members: list[str]) -> None:
        if not members:
            raise ValueError(f"{self.name} needs at least one member")
        self.members = list(members)
        self.fitted: list[Forecaster] = []
        self.failed: dict[str, str] = {}

    def init_args(self) -> dict[str, Any]:
        return {"members": self.members}

    def fit(self, history: pd.DataFrame) -> Combination:
        self.fitted, self.failed = [], {}
        for spec in self.members:
            d = json.loads(spec)
            model = self.families[d["family"]](**d["args"])
            try:
                self.fitted.append(model.fit(history))
            except ModelFailure as exc:
                self.failed[model.name] = exc.reason
        if not self.fitted:
            raise ModelFailure("combination_failed", f"every member failed: {self.failed}")
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        return combine([m.predict(future) for m in self.fitted], self.method)

    def to_json(self) -> str:
        return json.dumps({**self.init_args(), "failed": self.failed,
                           "fitted": [{"family": m.name, "model": m.to_json()} for m in self.fitted]})

    @classmethod
    def from_json(cls, payload: str) -> Combination:
        d = json.loads(payload)
        out = cls(**{k: v for k, v in d.items() if k not in ("failed", "fitted")})
        out.failed = d["failed"]
        out.fitted = [cls.families[m["family"]].from_json(m["model"]) for m in d["fitted"]]
        return out


class MeanCombination(Combination):
    name = names.COMBO_MEAN
    method = "mean"


class MedianCombination(Combination):
    name = names.COMBO_MEDIAN
    method = "median"


class Pool(Combination):
    """The mean of the pooled ``members`` (specs, chosen by :func:`pool_members` from
    ``candidates`` with ``margin``). Unresolved (no members yet) it stands for the strategy."""

    name = names.POOL
    method = "mean"

    def __init__(self, members: list[str], candidates: list[str] | None = None, margin: float = 0.0) -> None:
        self.members = list(members)
        self.candidates = list(candidates or members)
        self.margin = margin
        self.fitted, self.failed = [], {}

    def init_args(self) -> dict[str, Any]:
        return {"members": self.members, "candidates": self.candidates, "margin": self.margin}

    def fit(self, history: pd.DataFrame) -> Pool:
        if not self.members:
            raise ModelFailure("pool_unresolved", "the pool has no members: choose them from a backtest first")
        super().fit(history)
        return self
