"""Forecast combinations: the mean or the median of several models' forecasts.

A combination fits each member on the same history and combines their forecasts period by
period. Intervals are combined the same way, bound by bound (averaging quantiles,
"Vincentization"; Lichtendahl, Grushka-Cockayne and Winkler, 2013), which keeps them at the
members' nominal level when the members agree and widens nothing artificially. A member that
fails is left out and recorded in ``failed``; the combination fails only when every member
does. Backtests combine the members' stored window forecasts with :func:`combine`, so a
combination costs no extra fits there.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd

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


class Combination(Forecaster):
    """Base of the combinations; subclasses fix ``method``. ``members`` are model specs."""

    method: ClassVar[str]

    def __init__(self, members: list[str]) -> None:
        if not members:
            raise ValueError(f"{self.name} needs at least one member")
        self.members = list(members)
        self.fitted: list[Forecaster] = []
        self.failed: dict[str, str] = {}

    def init_args(self) -> dict[str, Any]:
        return {"members": self.members}

    def fit(self, history: pd.DataFrame) -> Combination:
        from jobs.models import build_model

        self.fitted, self.failed = [], {}
        for spec in self.members:
            model = build_model(spec)
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
        return json.dumps({"members": self.members, "failed": self.failed,
                           "fitted": [{"family": m.name, "model": m.to_json()} for m in self.fitted]})

    @classmethod
    def from_json(cls, payload: str) -> Combination:
        from jobs.models import load_model

        d = json.loads(payload)
        out = cls(d["members"])
        out.failed = d["failed"]
        out.fitted = [load_model(m["family"], m["model"]) for m in d["fitted"]]
        return out


class MeanCombination(Combination):
    name = "combo_mean"
    method = "mean"


class MedianCombination(Combination):
    name = "combo_median"
    method = "median"
