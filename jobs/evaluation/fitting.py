"""The fit stage: every fitted candidate's forecasts of every backtest window of one segment
(plain pandas, no Spark: the evaluate job maps it over the segments).

Window k of K ends ``(K - k) * step`` periods before the last period; its cutoff is ``horizon``
periods before that end. Every fitted candidate is fitted only on the periods up to the cutoff and
forecasts the ``horizon`` periods after it; only the open periods of that window are kept (closed
periods are not forecast). A candidate that fails on a window is recorded as failed with its
reason and its time, and the others are still fitted; a window with too little history for a
seasonal model (two seasons) or without an open test period is skipped, with the reason.

The result is one long table, :data:`WINDOW_COLUMNS`: a row per candidate, window and open test
period for a forecast, one row (no ``ds``) for a failed or skipped window. What is derived from
these forecasts (combinations, the pool, the ensemble), their scores and the choice are the judge
stage's (:mod:`jobs.evaluation.judge`): nothing here combines or scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from functools import partial

import numpy as np
import pandas as pd

from jobs.core.calendar import season_length
from jobs.core.errors import ConfigError
from jobs.core.names import PRODUCTION
from jobs.evaluation.candidates import WINDOW_COLUMNS, FitSettings
from jobs.evaluation.metrics import seasonal_naive_scale
from jobs.models import (
    MODELS,
    GlobalPath,
    GlobalSettings,
    ProphetForecaster,
    SeasonalNaive,
    StatsForecaster,
    build_model,
)
from jobs.models.base import Forecaster, ModelFailure

def candidate_specs(
    names: list[str],
    *,
    frequency: str,
    horizon: int,
    interval_width: float,
    prophet: Mapping[str, Any],
    holidays_country: str | None,
    regressors: tuple[str, ...],
    global_lgbm: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Fitted candidate name -> spec, from the configured settings (``global_lgbm``: the global
    model's settings, ``model.global_lgbm`` of the config without its grouping and serving)."""
    path_periods = max(90, horizon + 31)  # a month of scoring days past the training origin
    specs = {}
    for name in names:
        family = MODELS[name]
        if family is SeasonalNaive:
            specs[name] = SeasonalNaive(frequency, interval_width).spec()
        elif family is ProphetForecaster:
            specs[name] = ProphetForecaster({**prophet, "interval_width": interval_width}, holidays_country,
                                            tuple(regressors)).spec()
        elif family is GlobalPath:
            specs[name] = GlobalPath.for_settings(GlobalSettings(
                frequency, horizon, interval_width, holidays_country=holidays_country, regressors=tuple(regressors),
                **{k: tuple(v) if isinstance(v, list) else v for k, v in (global_lgbm or {}).items()}),
                path_periods).spec()
        elif issubclass(family, StatsForecaster):
            specs[name] = family(frequency, interval_width, path_periods).spec()
        else:
            raise ConfigError(f"no settings known for candidate {name!r}")
    return specs


def cutoffs(n_periods: int, *, horizon: int, windows: int, step: int) -> list[int]:
    """Positions (0-based, in the calendar) of each window's last training period, oldest first."""
    last = n_periods - 1
    return [last - horizon - (windows - k) * step for k in range(1, windows + 1)]


def window_forecasts(pdf: pd.DataFrame, settings: FitSettings,
                     make: Callable[[str, str], Callable[[], Forecaster]] | None = None,
                     global_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One segment's fit stage: columns :data:`WINDOW_COLUMNS`; none for an ineligible segment.

    ``pdf``: the segment's calendar (``segment_id``, ``ds``, ``y``, ``is_closed``, ``eligible``, the
    regressors) with its ``demand_class`` and ``production_spec``. The production model is fitted
    too (as :data:`PRODUCTION`) when no configured candidate, nor a combination of them, stands
    for it. ``make``: candidate name and spec -> a factory of a fresh model (default: the spec's
    family). ``global_rows``: the global candidates' forecasts of the segment from its windows'
    cutoffs (:func:`~jobs.evaluation.global_forecasts.group_forecasts`).
    """
    if not bool(pdf["eligible"].iloc[0]):
        return pd.DataFrame(columns=WINDOW_COLUMNS)
    demand_class = pdf["demand_class"].iloc[0]
    candidates = settings.candidates
    specs = {n: candidates.specs[n] for n in candidates.fitted(demand_class)}
    production = candidates.production(production_spec(pdf), demand_class)
    if production is not None and production.fitted:
        specs[PRODUCTION] = production.spec
    paths = ({specs[n]: rows for n, rows in global_rows.groupby("model") if n in specs}
             if global_rows is not None and len(global_rows) else {})
    factory = make or partial(_factory, paths=paths)
    out = fit_windows(pdf[["ds", "y", "is_closed", *settings.regressors]],
                      {name: factory(name, spec) for name, spec in specs.items()},
                      frequency=settings.frequency, horizon=settings.horizon, windows=settings.windows,
                      step=settings.step, regressors=settings.regressors)
    return out.assign(segment_id=pdf["segment_id"].iloc[0])[WINDOW_COLUMNS]


def production_spec(pdf: pd.DataFrame) -> str | None:
    """The segment's production model spec (None: nothing in production)."""
    spec = pdf["production_spec"].iloc[0]
    return spec if isinstance(spec, str) and spec else None


def _factory(name: str, spec: str, paths: Mapping[str, pd.DataFrame]) -> Callable[[], Forecaster]:
    return partial(build_model, spec, paths)


def fit_windows(history: pd.DataFrame, candidates: dict[str, Callable[[], Forecaster]], *, frequency: str,
                horizon: int, windows: int, step: int, regressors: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every candidate's window forecasts of one segment (columns :data:`WINDOW_COLUMNS` but
    ``segment_id``).

    Args:
        history: the segment's complete calendar: ``ds``, ``y`` (NaN when closed), ``is_closed``
            and the ``regressors``. Test periods get no regressor values, as in scoring (the
            models carry the last observed values forward).
        candidates: model name -> a factory of a fresh, unfitted model.
    """
    h = history.sort_values("ds").reset_index(drop=True)
    h["ds"] = pd.to_datetime(h["ds"])
    h["y"] = h["y"].where(~h["is_closed"].astype(bool)).astype(float)
    m = season_length(frequency)
    parts = []
    for window, cut in enumerate(cutoffs(len(h), horizon=horizon, windows=windows, step=step), 1):
        train = h.iloc[: cut + 1] if cut >= 0 else h.iloc[:0]
        test = h.iloc[cut + 1 : cut + 1 + horizon] if cut >= 0 else h.iloc[:0]
        open_test = test[test["y"].notna()]
        n_train = int(train["y"].notna().sum())
        facts = {"window": window, "cutoff": train["ds"].max() if len(train) else pd.NaT,
                 "n_train": n_train, "n_test": len(open_test), "actual_total": float(open_test["y"].abs().sum())}
        if n_train < 2 * m or open_test.empty:
            reason = f"window {window}: {n_train} training periods, {len(open_test)} open test periods"
            parts.append(pd.DataFrame([{**facts, "scale": np.nan, "model": name, "status": "skipped", "reason": reason}
                                       for name in candidates]))
            continue
        facts["scale"] = seasonal_naive_scale(train["y"].to_numpy(), m)
        for name, make in candidates.items():
            started = time.perf_counter()
            try:
                forecast = make().fit(train[["ds", "y", *regressors]]).predict(open_test[["ds"]])
            except ModelFailure as exc:
                parts.append(pd.DataFrame([{**facts, "model": name, "status": "failed", "reason": str(exc),
                                            "seconds": time.perf_counter() - started}]))
                continue
            seconds = time.perf_counter() - started
            parts.append(pd.DataFrame({
                **facts, "model": name, "status": "ok", "reason": None, "seconds": seconds,
                "ds": open_test["ds"].to_numpy(), "actual": open_test["y"].to_numpy(),
                **{c: forecast[c].to_numpy(dtype=float) for c in ("yhat", "yhat_lower", "yhat_upper")}}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=WINDOW_COLUMNS)
    return as_dates(out.reindex(columns=[c for c in WINDOW_COLUMNS if c != "segment_id"]))


def as_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """``cutoff`` and ``ds`` as dates, None where a row has none: a column with no date at all
    (a segment whose windows were all skipped) must not reach Arrow as floats."""
    for column in ("cutoff", "ds"):
        if column in frame:
            frame[column] = [v.date() if pd.notna(v) else None for v in pd.to_datetime(frame[column])]
    return frame
