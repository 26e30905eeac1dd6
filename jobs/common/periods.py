"""Calendar arithmetic for the supported frequencies, shared by Spark and pandas code."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

# frequency -> (Spark date_trunc unit, season length, pandas offset alias, Spark interval)
FREQUENCIES = {
    "daily": ("day", 7, "D", "1 day"),
    "weekly": ("week", 52, "W-MON", "7 days"),
    "monthly": ("month", 12, "MS", "1 month"),
    "quarterly": ("quarter", 4, "QS", "3 months"),
}


def periods_back(day: dt.date, n: int, frequency: str) -> dt.date:
    """The period start ``n`` periods before the period holding ``day``."""
    alias = FREQUENCIES[frequency][2]
    start = pd.Timestamp(period_start(day, frequency))
    return (start - n * pd.tseries.frequencies.to_offset(alias)).date()


def season_length(frequency: str) -> int:
    return FREQUENCIES[frequency][1]


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


def next_periods(after: dt.date, n: int, frequency: str) -> pd.DatetimeIndex:
    """The ``n`` period starts that follow the period starting at ``after``."""
    alias = FREQUENCIES[frequency][2]
    return pd.date_range(pd.Timestamp(after), periods=n + 1, freq=alias)[1:]


def last_complete_period(run_date: dt.date, frequency: str) -> dt.date:
    """Start of the last period that has fully happened by the end of ``run_date``."""
    start = period_start(run_date, frequency)
    following = next_periods(start, 1, frequency)[0].date()
    if following - dt.timedelta(days=1) <= run_date:
        return start
    return period_start(start - dt.timedelta(days=1), frequency)


def period_number(ds: pd.Series | pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """An integer per period start that grows by one each period (for step and phase arithmetic)."""
    ts = pd.DatetimeIndex(pd.to_datetime(ds))
    if frequency == "daily":
        return (ts.normalize().asi8 // 86_400_000_000_000).astype(np.int64)
    if frequency == "weekly":
        return ((ts.normalize().asi8 // 86_400_000_000_000 + 3) // 7).astype(np.int64)
    if frequency == "monthly":
        return (ts.year * 12 + ts.month - 1).to_numpy(np.int64)
    return (ts.year * 4 + (ts.month - 1) // 3).to_numpy(np.int64)
