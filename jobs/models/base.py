"""The model interface every forecasting family implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import pandas as pd

FORECAST_COLUMNS = ["ds", "yhat", "yhat_lower", "yhat_upper"]


class ModelFailure(Exception):
    """A family cannot fit this series; ``reason`` is a short code for the record."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason


class Forecaster(ABC):
    """Fit on one segment's history, predict any future periods, round-trip through JSON.

    ``history`` has columns ``ds`` (period start), ``y`` (NaN where the business was closed)
    and any regressor columns; ``future`` has ``ds`` and the same regressors.
    """

    name: ClassVar[str]

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
