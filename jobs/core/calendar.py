"""Calendar arithmetic for the supported frequencies (pandas and numpy only).

One home for what a frequency is: its season length, its pandas offset, and the Spark
``date_trunc`` unit and interval the features job builds its calendar with (plain strings).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Frequency:
    """One supported period length."""

    name: str
    season_length: int  # periods in a season (the seasonal-naive lag, MASE's scale)
    pandas_alias: str  # pandas offset alias of the period starts
    trunc_unit: str  # Spark date_trunc unit
    spark_interval: str  # Spark interval of one period
    periods_per_year: int


FREQUENCIES = {
    f.name: f
    for f in (
        Frequency("daily", 7, "D", "day", "1 day", 365),
        Frequency("weekly", 52, "W-MON", "week", "7 days", 52),
        Frequency("monthly", 12, "MS", "month", "1 month", 12),
        Frequency("quarterly", 4, "QS", "quarter", "3 months", 4),
    )
}


def season_length(frequency: str) -> int:
    return FREQUENCIES[frequency].season_length


def period_start(day: dt.date, frequency: str) -> dt.date:
    """The first day of the period holding ``day`` (weeks start on Monday)."""
    ts = pd.Timestamp(day)
    if frequency == "daily":
        return ts.date()
    if frequency == "weekly":
        return (ts - pd.Timedelta(days=ts.weekday())).date()
    if frequency == "monthly":
        return ts.replace(day=1).date()
    return ts.to_period("Q").start_time.date()


def periods_back(day: dt.date, n: int, frequency: str) -> dt.date:
    """The period start ``n`` periods before the period holding ``day``."""
    start = pd.Timestamp(period_start(day, frequency))
    return (start - n * pd.tseries.frequencies.to_offset(FREQUENCIES[frequency].pandas_alias)).date()


def next_periods(after: dt.date, n: int, frequency: str) -> pd.DatetimeIndex:
    """The ``n`` period starts that follow the period starting at ``after``."""
    return pd.date_range(pd.Timestamp(after), periods=n + 1, freq=FREQUENCIES[frequency].pandas_alias)[1:]


def last_complete_period(run_date: dt.date, frequency: str) -> dt.date:
    """Start of the last period that has fully happened by the end of ``run_date``: the
    forecast origin of the run date."""
    start = period_start(run_date, frequency)
    following = next_periods(start, 1, frequency)[0].date()
    if following - dt.timedelta(days=1) <= run_date:
        return start
    return period_start(start - dt.timedelta(days=1), frequency)


def as_datetimes(ds: pd.Series) -> pd.Series:
    """``ds`` as datetimes: itself when it already is (``pd.to_datetime`` costs about a
    millisecond a call even then, and the models convert every window's dates)."""
    return ds if pd.api.types.is_datetime64_any_dtype(ds) else pd.to_datetime(ds)


def period_number(ds: pd.Series | pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """An integer per period start that grows by one each period (for step and phase arithmetic)."""
    # any time of a day floors to that day, as at midnight
    ts = pd.DatetimeIndex(as_datetimes(ds)).as_unit("ns")
    if frequency in ("daily", "weekly"):
        days = (ts if ts.tz is None else ts.normalize()).asi8 // 86_400_000_000_000
        return (days if frequency == "daily" else (days + 3) // 7).astype(np.int64)
    if frequency == "monthly":
        return (ts.year * 12 + ts.month - 1).to_numpy(np.int64)
    return (ts.year * 4 + (ts.month - 1) // 3).to_numpy(np.int64)
