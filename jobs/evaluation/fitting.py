"""The fit stage: every fitted candidate's forecasts of every backtest window of a set of segments
(plain pandas, no Spark: the evaluate job maps it over groups of segments, one group a task).

The windows end on a fixed calendar grid (every ``step``-th period, :func:`cutoffs`): window k of
K ends ``(K - k) * step`` periods before the latest grid period; its cutoff is ``horizon``
periods before that end. Every fitted candidate is fitted only on the periods up to the cutoff and
forecasts the ``horizon`` periods after it; only the open periods of that window are kept (closed
periods are not forecast). A candidate that fails on a window is recorded as failed with its
reason and its time, and the others are still fitted; a window with too little history for a
seasonal model (two seasons) or without an open test period is skipped, with the reason.

The result is one long table, :data:`WINDOW_COLUMNS`: a row per candidate, window and open test
period for a forecast, one row (no ``ds``) for a failed or skipped window. What is derived from
these forecasts (combinations, the pool, the ensemble), their scores and the choice are the judge
stage's (:mod:`jobs.evaluation.judge`): nothing here combines or scores.

A task lays out every window of its segments first and then fits each spec on all of them, so a
family that fits many models at once (Prophet with prophet-batch, ``model.prophet.fitter: batch``)
gets one call for the task's windows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.calendar import as_datetimes, period_number, season_length
from jobs.core.combine import VALUES
from jobs.core.errors import ConfigError
from jobs.core.names import GLOBAL_FAMILIES, PRODUCTION
from jobs.core.specs import families_in
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
    family_of,
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


def cutoffs(ds: pd.Series | pd.DatetimeIndex, *, frequency: str, horizon: int, windows: int, step: int) -> list[int]:
    """Positions (0-based) in a segment's calendar ``ds`` (its period starts, in order, one per
    period) of each backtest window's last training period, oldest first; negative where the
    calendar is too short.

    The windows' ends sit on a fixed grid of the calendar, the periods whose number
    (:func:`~jobs.core.calendar.period_number`) is a multiple of ``step``: the last window ends at
    the latest grid period of the calendar, each earlier one ``step`` periods before. Every run
    date up to the next grid period therefore has the same windows, so a window fitted on one
    night can be reused on the next while its data is unchanged; the last window ends up to
    ``step - 1`` periods before the calendar's last period."""
    numbers = period_number(ds, frequency)
    if not len(numbers):
        return [-1 - horizon - (windows - k) * step for k in range(1, windows + 1)]
    last = int(numbers[-1])
    end = int(np.searchsorted(numbers, last - last % step, side="right")) - 1
    return [end - horizon - (windows - k) * step for k in range(1, windows + 1)]


def window_forecasts(pdf: pd.DataFrame, settings: FitSettings,
                     make: Callable[[str, str], Callable[[], Forecaster]] | None = None,
                     given: pd.DataFrame | None = None) -> pd.DataFrame:
    """The fit stage of one or many segments: columns :data:`WINDOW_COLUMNS`; none for an
    ineligible segment.

    ``pdf``: the segments' calendars (``segment_id``, ``ds``, ``y``, ``is_closed``, ``eligible``,
    the regressors) with their ``demand_class`` and ``production_spec``. A segment's production
    model is fitted too (as :data:`PRODUCTION`) when no configured candidate, nor a combination of
    them, stands for it. ``make``: candidate name and spec -> a factory of a fresh model (default:
    the spec's family). ``given``: rows of :data:`GIVEN_COLUMNS` for these segments, of two kinds:
    ``global``, the global candidates' forecasts from their windows' cutoffs
    (:func:`~jobs.evaluation.global_forecasts.group_forecasts`), and ``cached``, window forecasts
    of an earlier run (:func:`reusable`), taken instead of a fit where the spec, the cutoff and
    the window's data are unchanged. Every window of every segment is laid out first, then each
    spec is fitted on all of them: the families of ``settings.batched`` in one call
    (:func:`fit_all`).
    """
    rows, fits = [], []
    global_rows = given[given["kind"] == "global"] if given is not None and len(given) else None
    paths_of = dict(tuple(global_rows.groupby("segment_id"))) if global_rows is not None else {}
    cache = _cache(given[given["kind"] == "cached"]) if given is not None and len(given) else {}
    for segment, own in pdf.groupby("segment_id", sort=True):
        if not bool(own["eligible"].iloc[0]):
            continue
        demand_class = own["demand_class"].iloc[0]
        candidates = settings.candidates
        specs = {n: candidates.specs[n] for n in candidates.fitted(demand_class)}
        production = candidates.production(production_spec(own), demand_class)
        if production is not None and production.fitted:
            specs[PRODUCTION] = production.spec
        mine = paths_of.get(segment)
        paths = {specs[n]: r for n, r in mine.groupby("model") if n in specs} if mine is not None else {}
        factory = make or partial(_factory, paths=paths)
        windows, skipped = layout(own[["ds", "y", "is_closed", *settings.regressors]], frequency=settings.frequency,
                                  horizon=settings.horizon, windows=settings.windows, step=settings.step)
        rows.extend(pd.DataFrame([{**facts, "segment_id": segment, "model": name, "status": "skipped",
                                   "reason": reason} for name in specs]) for facts, reason in skipped)
        for name, spec in specs.items():
            key = spec_hash(spec, settings.batched) if reusable(spec) else None
            for w in windows:
                hit = cache.get((segment, key, w.facts["cutoff"].date())) if key else None
                if hit is not None and hit[0] == w.history_hash and len(hit[1]) == len(w.test):
                    rows.append(_reused(segment, name, key, w, hit[1]))
                else:
                    fits.append(Fit(segment, name, spec, factory(name, spec), w, key))
    by_spec: dict[str, list[Fit]] = {}
    for f in fits:
        by_spec.setdefault(f.spec, []).append(f)
    for spec, group in by_spec.items():
        rows.extend(fit_all(group, settings.regressors, batched=family_of(spec) in settings.batched))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=WINDOW_COLUMNS)
    out = out.reindex(columns=WINDOW_COLUMNS)
    out["reused"] = out["reused"].eq(True)  # missing (fitted or skipped) is False
    return as_dates(out)


# What the fit stage is given besides the calendars: the global candidates' forecasts (``global``)
# and window forecasts of earlier runs to reuse (``cached``).
GIVEN_COLUMNS = ["kind", "segment_id", "model", "origin", "cutoff", "ds", *VALUES, "seconds", "reason",
                 "spec_hash", "history_hash"]


def reusable(spec: str) -> bool:
    """Whether a spec's window forecasts depend only on its segment's own history (a global
    family's depend on the whole group's: never reused)."""
    return not families_in(spec) & set(GLOBAL_FAMILIES)


def spec_hash(spec: str, batched: tuple[str, ...] = ()) -> str:
    """What identifies a fitted candidate's window forecasts besides the data: its spec, and how
    its family is fitted (in batches or one by one, which can land on different optima)."""
    fitters = sorted(f for f in families_in(spec) if f in batched)
    return hashlib.sha1(f"{spec}|batched:{','.join(fitters)}".encode()).hexdigest()[:16]


def _cache(cached: pd.DataFrame) -> dict[tuple[str, str, dt.date], tuple[str, pd.DataFrame]]:
    """(segment, spec hash, cutoff) -> (history hash, the window's forecast rows by period)."""
    out = {}
    for (segment, key, cutoff, history), rows in cached.groupby(["segment_id", "spec_hash", "cutoff", "history_hash"]):
        out[(segment, key, pd.Timestamp(cutoff).date())] = (history, rows.sort_values("ds"))
    return out


def _reused(segment: str, name: str, key: str, window: Window, cached: pd.DataFrame) -> pd.DataFrame:
    """A window forecast taken from an earlier run: this run's facts and actuals, its forecast."""
    first = cached.iloc[0]
    return pd.DataFrame({
        **window.facts, "segment_id": segment, "model": name, "status": "ok", "reason": first["reason"],
        "seconds": first["seconds"], "spec_hash": key, "history_hash": window.history_hash, "reused": True,
        "ds": window.test["ds"].to_numpy(), "actual": window.test["y"].to_numpy(),
        **{c: cached[c].to_numpy(dtype=float) for c in VALUES}})


def production_spec(pdf: pd.DataFrame) -> str | None:
    """The segment's production model spec (None: nothing in production)."""
    spec = pdf["production_spec"].iloc[0]
    return spec if isinstance(spec, str) and spec else None


def _factory(name: str, spec: str, paths: Mapping[str, pd.DataFrame]) -> Callable[[], Forecaster]:
    return partial(build_model, spec, paths)


@dataclass
class Window:
    """One backtest window of a segment: its facts, its training periods, its open test periods,
    and a hash of what a fit sees of them (the training periods' data, which periods are tested)."""

    facts: dict[str, Any]
    train: pd.DataFrame
    test: pd.DataFrame
    history_hash: str = ""


@dataclass
class Fit:
    """One candidate to fit on one window of one segment."""

    segment: str
    name: str
    spec: str
    make: Callable[[], Forecaster]
    window: Window
    key: str | None = None  # spec_hash, when its window forecasts may be reused


def layout(history: pd.DataFrame, *, frequency: str, horizon: int, windows: int,
           step: int) -> tuple[list[Window], list[tuple[dict[str, Any], str]]]:
    """A segment's backtest windows: those to fit, and the skipped ones (facts, reason).

    ``history``: the segment's complete calendar: ``ds``, ``y`` (NaN when closed), ``is_closed``
    and any regressors. A window needs two seasons of training periods and an open test period.
    Test periods get no regressor values, as in scoring (the models carry the last observed
    values forward)."""
    h = history.sort_values("ds").reset_index(drop=True)
    h["ds"] = pd.to_datetime(h["ds"])
    h["y"] = h["y"].where(~h["is_closed"].astype(bool)).astype(float)
    m = season_length(frequency)
    fit, skipped = [], []
    for window, cut in enumerate(cutoffs(h["ds"], frequency=frequency, horizon=horizon, windows=windows, step=step), 1):
        train = h.iloc[: cut + 1] if cut >= 0 else h.iloc[:0]
        test = h.iloc[cut + 1 : cut + 1 + horizon] if cut >= 0 else h.iloc[:0]
        open_test = test[test["y"].notna()]
        n_train = int(train["y"].notna().sum())
        facts = {"window": window, "cutoff": train["ds"].max() if len(train) else pd.NaT,
                 "n_train": n_train, "n_test": len(open_test), "actual_total": float(open_test["y"].abs().sum())}
        if n_train < 2 * m or open_test.empty:
            skipped.append(({**facts, "scale": np.nan},
                            f"window {window}: {n_train} training periods, {len(open_test)} open test periods"))
            continue
        facts["scale"] = seasonal_naive_scale(train["y"].to_numpy(), m)
        train = train.drop(columns="is_closed")
        fit.append(Window(facts, train, open_test, history_hash(train, open_test)))
    return fit, skipped


def history_hash(train: pd.DataFrame, test: pd.DataFrame) -> str:
    """A hash of a window's training periods (dates, demand, regressors) and its open test
    periods' dates: a fit of the same spec on the same hash forecasts the same."""
    h = hashlib.blake2b(digest_size=8)
    h.update(as_datetimes(train["ds"]).to_numpy("datetime64[ns]").view(np.int64).tobytes())
    for column in train.columns.drop("ds"):
        h.update(column.encode())
        h.update(train[column].to_numpy(dtype=float).tobytes())
    h.update(as_datetimes(test["ds"]).to_numpy("datetime64[ns]").view(np.int64).tobytes())
    return h.hexdigest()


def fit_all(fits: list[Fit], regressors: tuple[str, ...] = (), batched: bool = False) -> list[pd.DataFrame]:
    """The window forecasts of ``fits`` (one spec's): each fitted on its window's training
    periods and forecasting its open test periods, or failed with the reason. ``batched``: the
    family fits them all in one call (``fit_many``) and forecasts them in one (``predict_many``,
    where it has one); each fit's seconds are its share of those calls."""
    columns = ["ds", "y", *regressors]
    models = [f.make() for f in fits]
    family = type(models[0]) if models else None
    if batched and family is not None and hasattr(family, "fit_many"):
        started = time.perf_counter()
        results = family.fit_many(models, [f.window.train[columns] for f in fits])
        shares = [(time.perf_counter() - started) / len(fits)] * len(fits)
    else:
        results, shares = [], []
        for f, model in zip(fits, models):
            started = time.perf_counter()
            try:
                results.append(model.fit(f.window.train[columns]))
            except ModelFailure as exc:
                results.append(exc)
            shares.append(time.perf_counter() - started)
    forecasts: list[pd.DataFrame | ModelFailure | None] = [None] * len(fits)
    fitted_ok = [i for i, r in enumerate(results) if not isinstance(r, ModelFailure)]
    if batched and family is not None and hasattr(family, "predict_many") and fitted_ok:
        started = time.perf_counter()
        made = family.predict_many([results[i] for i in fitted_ok], [fits[i].window.test[["ds"]] for i in fitted_ok],
                                   [f"{fits[i].segment}|{fits[i].window.facts['cutoff']:%Y-%m-%d}" for i in fitted_ok])
        for i, forecast in zip(fitted_ok, made):
            forecasts[i] = forecast
            shares[i] += (time.perf_counter() - started) / len(fitted_ok)
    out = []
    for f, result, share, forecast in zip(fits, results, shares, forecasts):
        facts = {**f.window.facts, "segment_id": f.segment, "model": f.name, "spec_hash": f.key,
                 "history_hash": f.window.history_hash if f.key else None}
        started = time.perf_counter()
        try:
            if isinstance(result, ModelFailure):
                raise result
            if forecast is None:
                forecast = result.predict(f.window.test[["ds"]])
            if isinstance(forecast, ModelFailure):
                raise forecast
        except ModelFailure as exc:
            out.append(pd.DataFrame([{**facts, "status": "failed", "reason": str(exc),
                                      "seconds": share + time.perf_counter() - started}]))
            continue
        how = getattr(result, "fitted_by", None)
        test = f.window.test
        out.append(pd.DataFrame({
            **facts, "status": "ok", "reason": how if how not in (None, "batch", "stan") else None,
            "seconds": share + time.perf_counter() - started, "ds": test["ds"].to_numpy(),
            "actual": test["y"].to_numpy(), **{c: forecast[c].to_numpy(dtype=float) for c in VALUES}}))
    return out


def as_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """``cutoff`` and ``ds`` as dates, None where a row has none: a column with no date at all
    (a segment whose windows were all skipped) must not reach Arrow as floats."""
    for column in ("cutoff", "ds"):
        if column in frame:
            frame[column] = pd.Series([v.date() if pd.notna(v) else None for v in pd.to_datetime(frame[column])],
                                      index=frame.index, dtype=object)
    return frame
