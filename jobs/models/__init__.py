"""Forecasting families behind one small interface: pandas in, pandas out, no Spark.

Training, scoring and backtests all use these classes; add a family by subclassing
:class:`Forecaster`, naming it in :mod:`jobs.core.names` and registering it in :data:`MODELS`.
This package depends on nothing in ``jobs`` but :mod:`jobs.core`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from jobs.core import names
from jobs.core.specs import family_of, model_spec, strategy
from jobs.models.base import Forecaster, ModelFailure
from jobs.models.global_lgbm import GlobalLGBM, GlobalPath, GlobalSettings
from jobs.models.combination import SCUM, Combination, Ensemble, MeanCombination, MedianCombination, Pool
from jobs.models.naive import SeasonalNaive, ZeroForecast
from jobs.models.prophet_model import ProphetForecaster
from jobs.models.stats import (
    ADIDAForecaster,
    AutoARIMAForecaster,
    AutoCESForecaster,
    AutoETSForecaster,
    AutoThetaForecaster,
    CrostonForecaster,
    DynamicThetaForecaster,
    StatsForecaster,
    TSBForecaster,
)

# Every family by name, in the order of names.FAMILIES (simplest first).
MODELS: dict[str, type[Forecaster]] = {
    cls.name: cls
    for cls in sorted(
        (ZeroForecast, SeasonalNaive, CrostonForecaster, TSBForecaster, ADIDAForecaster, AutoThetaForecaster,
         AutoETSForecaster, ProphetForecaster, MeanCombination, MedianCombination, Pool, Ensemble, SCUM,
         DynamicThetaForecaster, AutoCESForecaster, AutoARIMAForecaster, GlobalPath),
        key=lambda cls: names.FAMILIES.index(cls.name),
    )
}
Combination.families = MODELS


def build_model(spec: str, paths: Mapping[str, pd.DataFrame] | None = None) -> Forecaster:
    """A fresh, unfitted model from a spec (see :meth:`Forecaster.spec`); ``paths``: a global
    model's forecasts of the segment by spec, for a global family or a combination holding one."""
    d = json.loads(spec)
    return MODELS[d["family"]](**d["args"]).given(paths or {})


def load_model(kind: str, payload: str) -> Forecaster:
    """Rebuild a fitted model from its stored JSON."""
    return MODELS[kind].from_json(payload)


__all__ = [
    "MODELS",
    "AutoETSForecaster",
    "AutoThetaForecaster",
    "Combination",
    "Ensemble",
    "Forecaster",
    "GlobalLGBM",
    "GlobalPath",
    "GlobalSettings",
    "ModelFailure",
    "Pool",
    "ProphetForecaster",
    "SeasonalNaive",
    "StatsForecaster",
    "ZeroForecast",
    "build_model",
    "family_of",
    "load_model",
    "model_spec",
    "strategy",
]
