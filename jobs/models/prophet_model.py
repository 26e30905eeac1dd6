"""Prophet, the card's model, with settings from config and JSON serialization."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.names import PROPHET
from jobs.models.base import FORECAST_COLUMNS, Forecaster, ModelFailure

SEED = 20111209

# Settings passed straight to Prophet(...) when present in config model.prophet.
PROPHET_ARGS = (
    "growth",
    "n_changepoints",
    "changepoint_range",
    "yearly_seasonality",
    "weekly_seasonality",
    "daily_seasonality",
    "seasonality_mode",
    "seasonality_prior_scale",
    "holidays_prior_scale",
    "changepoint_prior_scale",
    "interval_width",
    "uncertainty_samples",
)


def quiet_stan() -> None:
    """Silence cmdstanpy and Prophet (also in Spark's Python workers, which do not run the jobs'
    logging set-up). cmdstanpy resets its logger to DEBUG when it has no handler: give it one."""
    cmdstan = logging.getLogger("cmdstanpy")
    if not cmdstan.handlers:
        cmdstan.addHandler(logging.NullHandler())
    cmdstan.setLevel(logging.WARNING)
    cmdstan.propagate = False
    # prophet.plot logs "Importing plotly failed" at ERROR: it is optional for us.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("prophet").setLevel(logging.WARNING)


def _clean_cmdstan_tmp() -> None:
    """Remove the files cmdstanpy leaves behind after each fit (about 36 KB a fit)."""
    import cmdstanpy

    for child in Path(cmdstanpy._TMPDIR).glob("*"):
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


class ProphetForecaster(Forecaster):
    name = PROPHET

    def __init__(
        self,
        settings: dict[str, Any] | None = None,
        holidays_country: str | None = None,
        regressors: tuple[str, ...] = (),
    ) -> None:
        self.settings = {k: v for k, v in (settings or {}).items() if k in PROPHET_ARGS}
        self.holidays_country = holidays_country
        self.regressors = tuple(regressors)
        self.last_regressors: dict[str, float] = {}
        self.model = None

    def init_args(self) -> dict[str, Any]:
        return {"settings": self.settings, "holidays_country": self.holidays_country,
                "regressors": list(self.regressors)}

    def fit(self, history: pd.DataFrame) -> ProphetForecaster:
        quiet_stan()
        from prophet import Prophet

        train = history[["ds", "y", *self.regressors]].copy()
        train["ds"] = pd.to_datetime(train["ds"])
        if train["y"].notna().sum() < 2:
            raise ModelFailure("too_short", "fewer than two observed periods")
        if self.regressors and train.loc[train["y"].notna(), list(self.regressors)].isna().any().any():
            raise ModelFailure("regressor_missing", "a regressor has gaps in the history")
        model = Prophet(**self.settings)
        if self.holidays_country:
            model.add_country_holidays(country_name=self.holidays_country)
        for r in self.regressors:
            model.add_regressor(r)
        try:
            model.fit(train)
        except Exception as exc:  # Stan optimisation or data errors: the caller falls back
            raise ModelFailure("prophet_failed", f"{type(exc).__name__}: {exc}"[:300]) from exc
        finally:
            _clean_cmdstan_tmp()
        self.model = model
        observed = train.dropna(subset=["y"])
        self.last_regressors = {r: float(observed[r].iloc[-1]) for r in self.regressors}
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        frame = future.copy()
        frame["ds"] = pd.to_datetime(frame["ds"])
        # Future regressor values not supplied: carry the last observed value forward.
        for r in self.regressors:
            value = frame[r] if r in frame else pd.Series(np.nan, index=frame.index)
            frame[r] = value.fillna(self.last_regressors[r])
        frame = frame[["ds", *self.regressors]]
        # Prophet samples its intervals from numpy's global generator: seed it so that a rerun
        # gives the same bounds.
        np.random.seed(SEED)
        out = self.model.predict(frame)
        if "yhat_lower" not in out:  # uncertainty_samples=0: no interval
            out["yhat_lower"] = out["yhat_upper"] = out["yhat"]
        out = out[FORECAST_COLUMNS]
        if not np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all():
            raise ModelFailure("prophet_failed", "non-finite forecast")
        return out.reset_index(drop=True)

    def to_json(self) -> str:
        from prophet.serialize import model_to_json

        return json.dumps(
            {
                "settings": self.settings,
                "holidays_country": self.holidays_country,
                "regressors": list(self.regressors),
                "last_regressors": self.last_regressors,
                "model": model_to_json(self.model),
            }
        )

    @classmethod
    def from_json(cls, payload: str) -> ProphetForecaster:
        from prophet.serialize import model_from_json

        d = json.loads(payload)
        out = cls(d["settings"], d["holidays_country"], tuple(d["regressors"]))
        out.last_regressors = d.get("last_regressors", {})
        out.model = model_from_json(d["model"])
        return out
