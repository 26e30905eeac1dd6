"""The model interface every forecasting family implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from jobs.core.combine import VALUES
from jobs.core.errors import ModelFailure
from jobs.core.specs import model_spec

__all__ = ["FORECAST_COLUMNS", "Forecaster", "ModelFailure", "model_spec"]

FORECAST_COLUMNS = ["ds", *VALUES]


class Forecaster(ABC):
    """Fit on one segment's history, predict any future periods, round-trip through JSON.

    ``history`` has columns ``ds`` (period start), ``y`` (NaN where the business was closed)
    and any regressor columns; ``future`` has ``ds`` and the same regressors.
    """

    name: ClassVar[str]

    @abstractmethod
    def init_args(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able): ``type(self)(**init_args())`` is an unfitted twin."""

    def spec(self) -> str:
        """Family and settings as canonical JSON: what the promotion gate compares and train refits."""
        return model_spec(self.name, self.init_args())

    def given(self, paths: Mapping[str, Any]) -> Forecaster:
        """Hand the model what was made for this segment outside it, by spec: a global model's
        forecasts (see :class:`~jobs.models.global_lgbm.GlobalPath`), or a model of this spec
        already fitted on the segment's history in a batch (Prophet); other families take none."""
        return self

    @abstractmethod
    def fit(self, history: pd.DataFrame) -> Forecaster: ...

    @abstractmethod
    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        """Columns ``ds, yhat, yhat_lower, yhat_upper``, one row per future row."""

    @abstractmethod
    def to_json(self) -> str: ...

    @classmethod
    @abstractmethod
    def from_json(cls, payload: str) -> Forecaster: ...
