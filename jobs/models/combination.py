"""Forecast combinations: the mean or the median of several models' forecasts.

A combination fits each member on the same history and combines their forecasts period by
period. Intervals are combined the same way, bound by bound (averaging quantiles,
"Vincentization"; Lichtendahl, Grushka-Cockayne and Winkler, 2013), which keeps them at the
members' nominal level when the members agree and widens nothing artificially
(:mod:`jobs.core.combine`). A member that fails is left out and recorded in ``failed``; the
combination fails only when every member does. Backtests combine the members' stored window
forecasts with the same arithmetic, so a combination costs no extra fits there.

:class:`Pool` is forecast pooling (Kourentzes, Barrow and Petropoulos, 2019), between selection
and combination: the mean of the candidates whose backtest score is within a margin of the
segment's best (:func:`~jobs.core.combine.pool_members`). One clearly best candidate makes a pool of one (plain
selection); several close ones are averaged, which takes the noise out of a choice made on a few
windows. Which candidates are in the pool is learnt from the backtest, like a model's
parameters; the pool's settings are the candidates it may draw from and the margin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from jobs.core import names
from jobs.core.combine import combine
from jobs.models.base import Forecaster, ModelFailure

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

    paths: Mapping[str, pd.DataFrame] = {}

    def given(self, paths: Mapping[str, pd.DataFrame]) -> Combination:
        """Forecasts made outside the members (a global model's), handed to each member it fits."""
        self.paths = paths
        return self

    def init_args(self) -> dict[str, Any]:
        return {"members": self.members}

    def fit(self, history: pd.DataFrame) -> Combination:
        self.fitted = [model for model, _ in self.fit_members(history, [(spec, 1.0) for spec in self.members])]
        return self

    def fit_members(self, history: pd.DataFrame, weighted: list[tuple[str, float]]) -> list[tuple[Forecaster, float]]:
        """Fit each member spec (with its weight); a failing member is left out and recorded in
        ``failed``. Raises :class:`ModelFailure` when every member failed."""
        fitted, self.failed = [], {}
        for spec, weight in weighted:
            d = json.loads(spec)
            model = self.families[d["family"]](**d["args"]).given(self.paths)
            try:
                fitted.append((model.fit(history), weight))
            except ModelFailure as exc:
                self.failed[model.name] = exc.reason
        if not fitted:
            raise ModelFailure("combination_failed", f"every member failed: {self.failed}")
        return fitted

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
    method = names.COMBINATION_METHODS[name]


class MedianCombination(Combination):
    name = names.COMBO_MEDIAN
    method = names.COMBINATION_METHODS[name]


class SCUM(Combination):
    """The median of a fixed set of strong, cheap statistical families (Petropoulos and
    Svetunkov, 2020: ETS, CES, ARIMA and dynamic optimised Theta)."""

    name = names.SCUM
    method = names.COMBINATION_METHODS[name]


class Pool(Combination):
    """The mean of the pooled ``members`` (specs, chosen by :func:`pool_members` from
    ``candidates`` with ``margin``). Unresolved (no members yet) it stands for the strategy."""

    name = names.POOL
    method = names.COMBINATION_METHODS[name]

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


class Ensemble(Combination):
    """The weighted mean of ``members`` (specs) with ``weights``, learned across the segments of a
    demand class by ensemble selection (:mod:`jobs.evaluation.ensemble`). Members with weight
    zero are not fitted; a member that fails is left out and the others' weights renormalised.
    Unresolved (no weights yet) it stands for the strategy."""

    name = names.ENSEMBLE
    method = names.COMBINATION_METHODS[name]

    def __init__(self, members: list[str], weights: list[float] | None = None) -> None:
        self.members = list(members)
        self.weights = [float(w) for w in (weights or [])]
        self.fitted, self.failed, self.fitted_weights = [], {}, []

    def init_args(self) -> dict[str, Any]:
        return {"members": self.members, "weights": self.weights}

    def fit(self, history: pd.DataFrame) -> Ensemble:
        if len(self.weights) != len(self.members) or sum(self.weights) <= 0:
            raise ModelFailure("ensemble_unresolved", "the ensemble has no weights: learn them from a backtest first")
        fitted = self.fit_members(history, [(s, w) for s, w in zip(self.members, self.weights) if w > 0])
        self.fitted, self.fitted_weights = [m for m, _ in fitted], [w for _, w in fitted]
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        return combine([m.predict(future) for m in self.fitted], self.method, self.fitted_weights)

    def to_json(self) -> str:
        return json.dumps({**self.init_args(), "failed": self.failed,
                           "fitted": [{"family": m.name, "model": m.to_json(), "weight": w}
                                      for m, w in zip(self.fitted, self.fitted_weights)]})

    @classmethod
    def from_json(cls, payload: str) -> Ensemble:
        d = json.loads(payload)
        out = cls(d["members"], d["weights"])
        out.failed = d["failed"]
        out.fitted = [cls.families[m["family"]].from_json(m["model"]) for m in d["fitted"]]
        out.fitted_weights = [m["weight"] for m in d["fitted"]]
        return out
