"""Forecasting families behind one small interface: pandas in, pandas out, no Spark.

Training, scoring and backtests all use these classes; add a family by subclassing
:class:`Forecaster` and registering it in :data:`MODELS`.
"""

from __future__ import annotations

import json

from jobs.models.base import Forecaster, ModelFailure, model_spec
from jobs.models.naive import SeasonalNaive
from jobs.models.prophet_model import ProphetForecaster
from jobs.models.combination import Combination, MeanCombination, MedianCombination, Pool
from jobs.models.stats import (
    ADIDAForecaster,
    AutoETSForecaster,
    AutoThetaForecaster,
    CrostonForecaster,
    TSBForecaster,
)

# Simplest first: ties in a backtest go to the family listed earlier.
MODELS: dict[str, type[Forecaster]] = {
    SeasonalNaive.name: SeasonalNaive,
    CrostonForecaster.name: CrostonForecaster,
    TSBForecaster.name: TSBForecaster,
    ADIDAForecaster.name: ADIDAForecaster,
    AutoThetaForecaster.name: AutoThetaForecaster,
    AutoETSForecaster.name: AutoETSForecaster,
    ProphetForecaster.name: ProphetForecaster,
    MeanCombination.name: MeanCombination,
    MedianCombination.name: MedianCombination,
    Pool.name: Pool,
}
# Families made for intermittent demand: candidates only for segments flagged intermittent.
INTERMITTENT = (CrostonForecaster.name, TSBForecaster.name, ADIDAForecaster.name)
# Candidates scored from the other candidates' forecasts (no fits of their own in backtests).
COMBINATIONS = (MeanCombination.name, MedianCombination.name, Pool.name)
POOL = Pool.name


def build_model(spec: str) -> Forecaster:
    """A fresh, unfitted model from a spec (see :meth:`Forecaster.spec`)."""
    d = json.loads(spec)
    return MODELS[d["family"]](**d["args"])


def strategy(spec: str) -> str:
    """The spec without what a backtest decides (a pool's members): two models with the same
    strategy are the same model to the promotion gate, as an AutoETS refit that picks another
    form is."""
    d = json.loads(spec)
    if d["family"] == POOL:
        d["args"] = {k: v for k, v in d["args"].items() if k != "members"}
    return model_spec(d["family"], d["args"])


def load_model(kind: str, payload: str) -> Forecaster:
    """Rebuild a fitted model from its stored JSON."""
    return MODELS[kind].from_json(payload)


__all__ = [
    "COMBINATIONS",
    "INTERMITTENT",
    "MODELS",
    "POOL",
    "Combination",
    "AutoETSForecaster",
    "AutoThetaForecaster",
    "Forecaster",
    "Pool",
    "ModelFailure",
    "ProphetForecaster",
    "SeasonalNaive",
    "build_model",
    "load_model",
    "model_spec",
    "strategy",
]
