"""Fast statistical families from statsforecast behind the model interface: AutoETS, AutoTheta,
dynamic optimised Theta, AutoCES, AutoARIMA and, for intermittent demand, Croston (SBA), TSB and ADIDA.

These models forecast from their training origin, so a fitted model is stored as what it
forecasts: its forecast path (mean and interval) for the next ``path_periods`` periods after the
last training period, plus the model it selected. Predicting a period past the stored path is a
:class:`ModelFailure` (the caller falls back). Closed periods are filled with zero before
fitting: the families need a gap-free series, and closures recur with the season.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from jobs.core import names
from jobs.core.calendar import as_datetimes, period_number, season_length
from jobs.models.base import FORECAST_COLUMNS, Forecaster, ModelFailure


class StatsForecaster(Forecaster):
    """Base for the statsforecast families; subclasses say which model to build."""

    family: ClassVar[str]

    def __init__(self, frequency: str, interval_width: float = 0.8, path_periods: int = 90) -> None:
        self.frequency = frequency
        self.interval_width = interval_width
        self.path_periods = path_periods
        self.anchor: int | None = None
        self.path: dict[str, list[float]] = {}
        self.description = ""

    def init_args(self) -> dict[str, Any]:
        return {"frequency": self.frequency, "interval_width": self.interval_width,
                "path_periods": self.path_periods}

    def build(self) -> Any:
        raise NotImplementedError

    def forecast(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, lower and upper bound for the next ``path_periods`` periods after ``grid``."""
        level = int(round(self.interval_width * 100))
        out = self.build().forecast(y=grid, h=self.path_periods, level=[level])
        return (np.asarray(out["mean"], dtype=float), np.asarray(out[f"lo-{level}"], dtype=float),
                np.asarray(out[f"hi-{level}"], dtype=float))

    def fit(self, history: pd.DataFrame) -> StatsForecaster:
        h = history.sort_values("ds")
        periods = period_number(h["ds"], self.frequency)
        grid = np.zeros(periods[-1] - periods[0] + 1)
        values = h["y"].astype(float).fillna(0.0).to_numpy()
        grid[periods - periods[0]] = values
        if len(grid) < 2 * season_length(self.frequency) or not np.isfinite(grid).all():
            raise ModelFailure("too_short", f"{self.name} needs two full seasons")
        try:
            mean, lower, upper = self.forecast(grid)
        except Exception as exc:  # numerical failures: the caller falls back
            raise ModelFailure(f"{self.name}_failed", f"{type(exc).__name__}: {exc}"[:300]) from exc
        if not (np.isfinite(mean).all() and np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise ModelFailure(f"{self.name}_failed", "non-finite forecast")
        self.anchor = int(periods[-1])
        self.path = {"mean": mean.tolist(), "lower": lower.tolist(), "upper": upper.tolist()}
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        ds = as_datetimes(future["ds"]).reset_index(drop=True)
        steps = period_number(ds, self.frequency) - self.anchor
        if (steps < 1).any() or (steps > len(self.path["mean"])).any():
            raise ModelFailure(
                "beyond_path", f"{self.name} stores {len(self.path['mean'])} periods after its origin"
            )
        idx = steps - 1
        return pd.DataFrame(
            {
                "ds": ds,
                "yhat": np.asarray(self.path["mean"])[idx],
                "yhat_lower": np.asarray(self.path["lower"])[idx],
                "yhat_upper": np.asarray(self.path["upper"])[idx],
            }
        )[FORECAST_COLUMNS]

    def to_json(self) -> str:
        return json.dumps(
            {
                "frequency": self.frequency,
                "interval_width": self.interval_width,
                "path_periods": self.path_periods,
                "anchor": self.anchor,
                "path": self.path,
            }
        )

    @classmethod
    def from_json(cls, payload: str) -> StatsForecaster:
        d = json.loads(payload)
        model = cls(d["frequency"], d["interval_width"], d["path_periods"])
        model.anchor, model.path = d["anchor"], d["path"]
        return model


class AutoETSForecaster(StatsForecaster):
    """Exponential smoothing with automatic error/trend/season selection (statsforecast AutoETS)."""

    name = names.ETS

    def build(self) -> Any:
        from statsforecast.models import AutoETS

        m = season_length(self.frequency)
        # ETS handles seasons up to 24 periods; longer ones (weekly data) go non-seasonal.
        return AutoETS(season_length=m if m <= 24 else 1)


class AutoThetaForecaster(StatsForecaster):
    """The Theta method with automatic variant selection (statsforecast AutoTheta)."""

    name = names.THETA

    def build(self) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season_length(self.frequency))


class DynamicThetaForecaster(StatsForecaster):
    """Dynamic optimised Theta (statsforecast DynamicOptimizedTheta): about AutoTheta's accuracy
    at a third of its cost."""

    name = names.DOT

    def build(self) -> Any:
        from statsforecast.models import DynamicOptimizedTheta

        return DynamicOptimizedTheta(season_length=season_length(self.frequency))


class AutoCESForecaster(StatsForecaster):
    """Complex exponential smoothing with automatic selection (statsforecast AutoCES)."""

    name = names.CES

    def build(self) -> Any:
        from statsforecast.models import AutoCES

        return AutoCES(season_length=season_length(self.frequency))


class AutoARIMAForecaster(StatsForecaster):
    """ARIMA with automatic order selection (statsforecast AutoARIMA). Costly on long seasons
    and long daily histories: a candidate where config says it is affordable."""

    name = names.ARIMA

    def build(self) -> Any:
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=season_length(self.frequency))


class IntermittentForecaster(StatsForecaster):
    """Methods for intermittent demand (mostly zero periods): a flat forecast of the demand rate.

    These statsforecast models give no intervals of their own; the interval is the flat forecast
    plus the empirical quantiles of the one-step in-sample errors (``y - fitted``).
    """

    def forecast(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.build().forecast(y=grid, h=self.path_periods, fitted=True)
        mean = np.asarray(out["mean"], dtype=float)
        errors = (grid - np.asarray(out["fitted"], dtype=float))
        errors = errors[np.isfinite(errors)]
        tail = (1 - self.interval_width) / 2
        low, high = np.quantile(errors, [tail, 1 - tail]) if len(errors) else (0.0, 0.0)
        return mean, mean + min(low, 0.0), mean + max(high, 0.0)


class CrostonForecaster(IntermittentForecaster):
    """Croston's method with the Syntetos-Boylan bias correction (statsforecast CrostonSBA)."""

    name = names.CROSTON

    def build(self) -> Any:
        from statsforecast.models import CrostonSBA

        return CrostonSBA()


class TSBForecaster(IntermittentForecaster):
    """Teunter-Syntetos-Babai: updates the demand probability every period, so it decays when
    demand stops (statsforecast TSB, smoothing 0.1 for both size and probability)."""

    name = names.TSB

    def build(self) -> Any:
        from statsforecast.models import TSB

        return TSB(alpha_d=0.1, alpha_p=0.1)


class ADIDAForecaster(IntermittentForecaster):
    """Aggregate-disaggregate intermittent demand approach (statsforecast ADIDA)."""

    name = names.ADIDA

    def build(self) -> Any:
        from statsforecast.models import ADIDA

        return ADIDA()
