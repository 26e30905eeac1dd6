"""Forecasting families behind one small interface: pandas in, pandas out, no Spark.

Training, scoring and backtests all use these classes; add a family by subclassing
:class:`Forecaster` and registering it in :data:`MODELS`.
"""

from __future__ import annotations

from jobs.models.base import Forecaster, ModelFailure
from jobs.models.naive import SeasonalNaive
from jobs.models.prophet_model import ProphetForecaster

MODELS: dict[str, type[Forecaster]] = {
    SeasonalNaive.name: SeasonalNaive,
    ProphetForecaster.name: ProphetForecaster,
}


def load_model(kind: str, payload: str) -> Forecaster:
    """Rebuild a fitted model from its stored JSON."""
    return MODELS[kind].from_json(payload)


__all__ = ["MODELS", "Forecaster", "ModelFailure", "ProphetForecaster", "SeasonalNaive", "load_model"]
