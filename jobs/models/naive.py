"""Seasonal naive: each future period repeats the last observed value at the same season phase;
and the zero forecast of inactive segments.

It is the baseline every other model must beat and the fallback for segments that cannot be
modelled (too short, all zeros, a failed fit). It never fails on a non-empty calendar.
"""

from __future__ import annotations

import json
from statistics import NormalDist

import numpy as np
import pandas as pd

from jobs.core.calendar import as_datetimes, period_number, season_length
from jobs.core.names import SEASONAL_NAIVE, ZERO
from jobs.models.base import FORECAST_COLUMNS, Forecaster


class SeasonalNaive(Forecaster):
    name = SEASONAL_NAIVE

    def __init__(self, frequency: str, interval_width: float = 0.8) -> None:
        self.frequency = frequency
        self.interval_width = interval_width
        self.season = season_length(frequency)
        self.anchor: int | None = None  # period number of the last history period
        self.last_season: list[float] = []
        self.sigma = 0.0

    def init_args(self) -> dict[str, object]:
        return {"frequency": self.frequency, "interval_width": self.interval_width}

    def fit(self, history: pd.DataFrame) -> SeasonalNaive:
        if history.empty:
            self.anchor, self.last_season, self.sigma = None, [0.0] * self.season, 0.0
            return self
        h = history.sort_values("ds")
        y = h["y"].astype(float).to_numpy()
        periods = period_number(h["ds"], self.frequency)
        # Put the series on a complete grid so position = period number.
        grid = np.full(periods[-1] - periods[0] + 1, np.nan)
        grid[periods - periods[0]] = y
        open_mean = float(np.nanmean(grid)) if np.isfinite(grid).any() else 0.0
        m = self.season
        last = np.full(m, np.nan)
        # phase k of the last season = the latest observed value whose position is k mod m
        for pos in range(len(grid) - 1, -1, -1):
            k = (pos - (len(grid) - m)) % m
            if np.isnan(last[k]) and not np.isnan(grid[pos]):
                last[k] = grid[pos]
            if not np.isnan(last).any():
                break
        last = np.where(np.isnan(last), open_mean, last)
        diffs = grid[m:] - grid[:-m] if len(grid) > m else np.array([])
        diffs = diffs[np.isfinite(diffs)]
        if diffs.size >= 2:
            self.sigma = float(np.std(diffs, ddof=1))
        else:
            finite = grid[np.isfinite(grid)]
            self.sigma = float(np.std(finite, ddof=1)) if finite.size >= 2 else 0.0
        self.anchor = int(periods[-1])
        self.last_season = [float(v) for v in last]
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        ds = as_datetimes(future["ds"]).reset_index(drop=True)
        if self.anchor is None:
            zeros = np.zeros(len(ds))
            return pd.DataFrame({"ds": ds, "yhat": zeros, "yhat_lower": zeros, "yhat_upper": zeros})
        steps = period_number(ds, self.frequency) - self.anchor  # 1 = the next period
        m = self.season
        phase = (steps - 1) % m
        yhat = np.asarray(self.last_season)[phase]
        z = NormalDist().inv_cdf(0.5 + self.interval_width / 2)
        width = z * self.sigma * np.sqrt(np.floor((np.maximum(steps, 1) - 1) / m) + 1)
        return pd.DataFrame(
            {"ds": ds, "yhat": yhat, "yhat_lower": yhat - width, "yhat_upper": yhat + width}
        )[FORECAST_COLUMNS]

    def to_json(self) -> str:
        return json.dumps(
            {
                "frequency": self.frequency,
                "interval_width": self.interval_width,
                "anchor": self.anchor,
                "last_season": self.last_season,
                "sigma": self.sigma,
            }
        )

    @classmethod
    def from_json(cls, payload: str) -> SeasonalNaive:
        d = json.loads(payload)
        model = cls(d["frequency"], d["interval_width"])
        model.anchor, model.last_season, model.sigma = d["anchor"], d["last_season"], d["sigma"]
        return model


class ZeroForecast(Forecaster):
    """Zero demand, interval included: what an inactive segment (no demand for a long time) is
    forecast with under ``features.inactive_policy: zero``. Never fails."""

    name = ZERO

    def init_args(self) -> dict[str, object]:
        return {}

    def fit(self, history: pd.DataFrame) -> ZeroForecast:
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        ds = as_datetimes(future["ds"]).reset_index(drop=True)
        zeros = np.zeros(len(ds))
        return pd.DataFrame({"ds": ds, "yhat": zeros, "yhat_lower": zeros, "yhat_upper": zeros})

    def to_json(self) -> str:
        return "{}"

    @classmethod
    def from_json(cls, payload: str) -> ZeroForecast:
        return cls()
