"""The global model's forecasts of a training group (plain pandas, no Spark: the evaluate and train
jobs run it once per group, in one Spark task each).

A global model is fitted once per training origin on the history of every segment of its group up
to that origin, and forecasts each segment whose backtest window (or training) starts there.
Every segment then takes its forecasts as a :class:`~jobs.models.global_lgbm.GlobalPath`, so the
per-segment backtest, the combinations, the choice and scoring treat the global model like any
other candidate. A fit that fails leaves its segments a row with the reason (their backtest
records the candidate as failed, training falls back), never an exception.
"""

from __future__ import annotations

import time

import pandas as pd

from jobs.evaluation.fitting import cutoffs
from jobs.models import GlobalLGBM, ModelFailure, build_model

# One row per segment, candidate, origin and forecast period (``ds`` null and ``reason`` set when
# the group's model failed at that origin).
GLOBAL_COLUMNS = ["segment_id", "model", "origin", "ds", "yhat", "yhat_lower", "yhat_upper", "seconds", "reason"]


def window_origins(calendars: pd.DataFrame, *, frequency: str, horizon: int, windows: int, step: int,
                   window: int | None = None) -> pd.DataFrame:
    """``segment_id, origin``: the last training period of each backtest window of each segment
    (as :func:`~jobs.evaluation.fitting.cutoffs` places them on the segment's own calendar), or
    of window ``window`` (1 = the oldest) alone."""
    rows = []
    for segment, cal in calendars.groupby("segment_id"):
        ds = pd.to_datetime(cal["ds"]).sort_values().reset_index(drop=True)
        rows += [(segment, pd.Timestamp(ds[c])) for k, c in
                 enumerate(cutoffs(ds, frequency=frequency, horizon=horizon, windows=windows, step=step), 1)
                 if c >= 0 and window in (None, k)]
    return pd.DataFrame(rows, columns=["segment_id", "origin"])


def last_origins(calendars: pd.DataFrame) -> pd.DataFrame:
    """``segment_id, origin``: each segment's last period (training's origin)."""
    last = calendars.assign(ds=pd.to_datetime(calendars["ds"])).groupby("segment_id", as_index=False)["ds"].max()
    return last.rename(columns={"ds": "origin"})


def group_forecasts(calendars: pd.DataFrame, origins: pd.DataFrame, models: dict[str, str], periods: int,
                    fitted: dict[str, tuple[pd.Timestamp, str]] | None = None) -> pd.DataFrame:
    """Every global candidate's forecasts of a group's segments from their origins.

    Args:
        calendars: the group's segments: ``segment_id, ds, y, is_closed`` and the regressors.
        origins: ``segment_id, origin``: which segments to forecast from which origin.
        models: candidate name -> spec of a global family.
        periods: how many periods to forecast after each origin.
        fitted: when given, filled with candidate name -> (origin, model JSON) of its fit at the
            latest origin that succeeded (what training keeps).

    Returns:
        Columns :data:`GLOBAL_COLUMNS`; ``seconds`` is each forecast segment's share of the fit.
    """
    panel = _panel(calendars)
    out = []
    for name, spec in models.items():
        settings = build_model(spec).global_settings()
        for origin, who in origins.groupby("origin"):
            ids = sorted(who["segment_id"].unique())
            started = time.perf_counter()
            try:
                model = GlobalLGBM(settings).fit(panel[panel["ds"] <= origin])
                known = set(model.last)  # segments with history by the origin
                forecast = model.forecast(periods, ids=[i for i in ids if i in known])
                reason = None
                if fitted is not None:
                    fitted[name] = (pd.Timestamp(origin), model.to_json())
            except Exception as exc:  # noqa: BLE001 - LightGBMError and the rest: a failed group fit
                # is recorded for each of its segments, never fatal to the job
                forecast, reason = pd.DataFrame(columns=["unique_id"]), f"global_failed: {type(exc).__name__}: {exc}"[:300]
            seconds = (time.perf_counter() - started) / len(ids)
            # no history up to the origin (or the fit failed): a row with the reason
            forecast = _with_missing(forecast, ids, reason or f"global_failed: no history by {pd.Timestamp(origin).date()}")
            out.append(forecast.assign(model=name, origin=pd.Timestamp(origin), seconds=seconds))
    return _rows(out)


def saved_forecasts(calendars: pd.DataFrame, name: str, payload: str, periods: int) -> pd.DataFrame:
    """The forecasts of ``calendars``' segments (as :func:`group_forecasts` takes them) from each
    one's last period by a saved global model (``payload``: :meth:`GlobalLGBM.to_json`), nothing
    refitted: the features come from the segments' own recent history, so segments the model
    never saw are forecast too. A model that cannot forecast them leaves each a row with the reason.
    """
    panel = _panel(calendars)
    ids = sorted(panel["unique_id"].unique())
    try:
        forecast = GlobalLGBM.from_json(payload, panel).forecast(periods, ids=ids)
        reason = None
    except Exception as exc:  # noqa: BLE001 - recorded for each segment, never fatal to the job
        forecast, reason = pd.DataFrame(columns=["unique_id"]), f"global_failed: {type(exc).__name__}: {exc}"[:300]
    forecast = _with_missing(forecast, ids, reason or "global_failed: no forecast")
    last = panel.groupby("unique_id")["ds"].max()
    return _rows([forecast.assign(model=name, origin=forecast["segment_id"].map(last), seconds=0.0)])


def _with_missing(forecast: pd.DataFrame, ids: list[str], reason: str) -> pd.DataFrame:
    """``forecast`` (``unique_id`` renamed ``segment_id``) with a row holding ``reason`` for each
    of ``ids`` it has no forecast of."""
    forecast = forecast.rename(columns={"unique_id": "segment_id"})
    missing = sorted(set(ids) - set(forecast["segment_id"]))
    if not missing:
        return forecast
    return pd.concat([forecast, pd.DataFrame({"segment_id": missing, "reason": reason})])


def _panel(calendars: pd.DataFrame) -> pd.DataFrame:
    """The global model's input from segments' calendars: closed periods' demand unknown."""
    panel = calendars.rename(columns={"segment_id": "unique_id"}).assign(ds=lambda d: pd.to_datetime(d["ds"]))
    panel["y"] = panel["y"].where(~panel["is_closed"].astype(bool))
    return panel


def _rows(out: list[pd.DataFrame]) -> pd.DataFrame:
    if not out:
        return pd.DataFrame(columns=GLOBAL_COLUMNS)
    rows = pd.concat(out, ignore_index=True)
    if "reason" not in rows:
        rows["reason"] = None
    rows["origin"] = pd.to_datetime(rows["origin"]).dt.date
    rows["ds"] = pd.to_datetime(rows["ds"]).dt.date
    return rows.reindex(columns=GLOBAL_COLUMNS)
