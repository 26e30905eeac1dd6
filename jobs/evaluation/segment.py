"""One segment's evaluation, the two functions the evaluate job runs per group: its backtest
rows (:func:`backtest_rows`) and its choice and gate decision (:func:`selection_row`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial

import pandas as pd

from jobs.core.names import BASELINE, COMBINATIONS, ENSEMBLE, POOL, PRODUCTION
from jobs.evaluation.backtest import FORECAST_COLUMNS, RESULT_COLUMNS, backtest_with_forecasts
from jobs.evaluation.candidates import (
    EvaluationSettings,
    candidates_for,
    combination_members,
    ensemble_members,
    fitted,
    production_combination,
    production_name,
    resolve_ensemble,
    resolve_pool,
)
from jobs.evaluation.metrics import window_metrics
from jobs.evaluation.selection import choose
from jobs.models import MODELS, build_model, family_of
from jobs.models.base import Forecaster
from jobs.models.combination import VALUES, combine


# Which kind of row :func:`backtest_rows` returns: a window's metrics or one forecast period.
METRICS_ROW, FORECAST_ROW = "metrics", "forecast"
BACKTEST_COLUMNS = list(dict.fromkeys(["kind", *RESULT_COLUMNS, *FORECAST_COLUMNS]))


def backtest_rows(pdf: pd.DataFrame, settings: EvaluationSettings,
                  make: Callable[[str, str], Callable[[], Forecaster]] | None = None,
                  global_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One segment's backtest: its metrics rows (``kind`` = ``metrics``: candidate and window)
    and its forecast rows (``kind`` = ``forecast``: candidate, window and period), in one frame
    with the columns of both (the evaluate job splits them into their tables); none for an
    ineligible segment.

    ``pdf``: the segment's calendar (keys, ``segment_id``, ``ds``, ``y``, ``is_closed``,
    ``eligible``, the regressors) with its ``demand_class`` and ``production_spec``. ``make``:
    candidate name and spec -> a factory of a fresh model (default: the spec's family).
    ``global_rows``: the global candidates' forecasts of the segment from its windows' cutoffs
    (:func:`~jobs.evaluation.global_forecasts.group_forecasts`).
    """
    keys, regressors = list(settings.keys), list(settings.regressors)
    out_columns = [*keys, "segment_id", *BACKTEST_COLUMNS, "run_date", "run_id"]
    if not bool(pdf["eligible"].iloc[0]):
        return pd.DataFrame(columns=out_columns)
    specs = candidates_for(settings, pdf["demand_class"].iloc[0])
    # the ensemble is scored after every segment's backtest: its weights are learned across them
    combinations = {n: (MODELS[n].method, combination_members(n, fitted(list(specs)))) for n in specs
                    if n in COMBINATIONS and n not in (POOL, ENSEMBLE)}
    pool = fitted(list(specs)) if POOL in specs else None
    production = pdf["production_spec"].iloc[0]
    if production_name(production, specs) == PRODUCTION:
        combined = production_combination(production, specs)
        if combined:
            combinations[PRODUCTION] = combined
        else:
            specs[PRODUCTION] = production
    paths = ({specs[n]: rows for n, rows in global_rows.groupby("model") if n in specs}
             if global_rows is not None and len(global_rows) else {})
    metrics, forecasts = backtest_with_forecasts(
        pdf[["ds", "y", "is_closed", *regressors]],
        {name: (make or partial(_factory, paths=paths))(name, spec) for name, spec in specs.items()
         if name not in COMBINATIONS and name not in combinations},
        combinations=combinations,
        pool=pool,
        margin=settings.margin,
        metric=settings.metric,
        frequency=settings.frequency,
        horizon=settings.horizon,
        windows=settings.windows,
        step=settings.step,
        interval_width=settings.interval_width,
        regressors=tuple(regressors),
        cost_under=settings.cost_under,
        cost_over=settings.cost_over,
    )
    parts = [metrics.assign(kind=METRICS_ROW)] + ([forecasts.assign(kind=FORECAST_ROW)] if len(forecasts) else [])
    out = _as_dates(pd.concat(parts, ignore_index=True).reindex(columns=BACKTEST_COLUMNS))
    for k in keys:
        out[k] = pdf[k].iloc[0]
    out["segment_id"] = pdf["segment_id"].iloc[0]
    return out.assign(run_date=settings.run_date, run_id=settings.run_id)[out_columns]


def _factory(name: str, spec: str, paths: Mapping[str, pd.DataFrame]) -> Callable[[], Forecaster]:
    return partial(build_model, spec, paths)


def ensemble_rows(rows: pd.DataFrame, settings: EvaluationSettings, weights: Mapping[tuple[str, int], tuple[float, ...]],
                  why: Mapping[tuple[str, int], str]) -> pd.DataFrame:
    """One segment's ensemble rows, both kinds as :func:`backtest_rows` returns them, made from its
    members' backtest forecasts with each window's weights (no fits).

    ``rows``: the segment's backtest rows (both kinds) with its ``demand_class``.
    """
    keys = list(settings.keys)
    out_columns = [*keys, "segment_id", *BACKTEST_COLUMNS, "run_date", "run_id"]
    demand_class = rows["demand_class"].iloc[0]
    members = ensemble_members(settings, demand_class)
    scored = rows[rows["kind"] == METRICS_ROW]
    forecasts = rows[(rows["kind"] == FORECAST_ROW) & rows["model"].isin(members)]
    out = []
    for window, in_window in scored.groupby("window"):
        base = {c: in_window[c].iloc[0] for c in ("window", "cutoff", "n_train", "n_test", "actual_total")}
        if (in_window["status"] == "skipped").all():
            out.append({**base, "kind": METRICS_ROW, "model": ENSEMBLE, "status": "skipped",
                        "reason": in_window["reason"].iloc[0]})
            continue
        seconds = float(in_window.loc[in_window["model"].isin(fitted(members)), "seconds"].sum())
        own = {m: f.sort_values("ds") for m, f in forecasts[forecasts["window"] == window].groupby("model")}
        available = [m for m in members if m in own]
        if not available:
            out.append({**base, "kind": METRICS_ROW, "model": ENSEMBLE, "status": "failed",
                        "reason": "combination_failed: every member failed", "seconds": seconds})
            continue
        w = dict(zip(members, weights[demand_class, window]))
        used = [w[m] for m in available]
        reason = why[demand_class, window]
        if sum(used) <= 0:
            used, reason = [1.0] * len(available), f"{reason}; its members failed here: mean of the others"
        first = own[available[0]]
        combined = combine([own[m][["ds", *VALUES]] for m in available], "weighted", used)
        scale = float(first["scale"].iloc[0])
        metrics = window_metrics(first["actual"].to_numpy(), *(combined[c].to_numpy() for c in VALUES),
                                 scale=scale, interval_width=settings.interval_width,
                                 cost_under=settings.cost_under, cost_over=settings.cost_over)
        out.append({**base, "kind": METRICS_ROW, "model": ENSEMBLE, "status": "ok", "reason": reason, **metrics,
                    "seconds": seconds})
        out.extend({**{c: base[c] for c in ("window", "cutoff")}, "kind": FORECAST_ROW, "model": ENSEMBLE,
                    "ds": ds, "actual": actual, "yhat": yhat, "yhat_lower": low, "yhat_upper": high, "scale": scale}
                   for ds, actual, yhat, low, high in zip(first["ds"], first["actual"], combined["yhat"],
                                                          combined["yhat_lower"], combined["yhat_upper"]))
    frame = _as_dates(pd.DataFrame(out, columns=BACKTEST_COLUMNS))
    for k in keys:
        frame[k] = rows[k].iloc[0]
    frame["segment_id"] = rows["segment_id"].iloc[0]
    return frame.assign(run_date=settings.run_date, run_id=settings.run_id)[out_columns]


def _as_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """``cutoff`` and ``ds`` as dates, None where a row has none: a column with no date at all
    (a segment whose windows were all skipped) must not reach Arrow as floats."""
    for column in ("cutoff", "ds"):
        frame[column] = [v.date() if pd.notna(v) else None for v in pd.to_datetime(frame[column])]
    return frame


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def selection_row(segment: pd.DataFrame, backtest: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """One segment's choice and gate decision, as its ``gold.model_selection`` row.

    ``segment``: one row (keys, ``segment_id``, ``eligible``, ``ineligible_reason``,
    ``demand_class``, ``production_spec``); ``backtest``: the segment's backtest rows.
    """
    s = segment.iloc[0]
    specs = candidates_for(settings, s["demand_class"])
    portfolio, margin = settings.portfolio.get(s["demand_class"]) if settings.rule == "portfolio" else None, settings.margin
    if settings.rule == ENSEMBLE and ENSEMBLE in specs:  # the class's ensemble, unless a champion is exact
        portfolio, margin = ENSEMBLE, 1.0
    production_spec = s["production_spec"] if isinstance(s["production_spec"], str) else None
    production = production_name(production_spec, specs)
    if production == PRODUCTION:
        specs[PRODUCTION] = production_spec
    rank = {**settings.rank, PRODUCTION: settings.rank.get(family_of(production_spec), 99)}
    if not bool(s["eligible"]):
        decision, promoted, reason = "fallback", BASELINE, str(s["ineligible_reason"])
        scores, costs, n_windows, champion, production_score = {}, {}, 0, None, None
    else:
        c = choose(backtest, rank=rank, production=production, metric=settings.metric,
                   tolerance=settings.tolerance, force=settings.force, portfolio=portfolio, margin=margin)
        decision, promoted, reason = c.decision, c.promoted, c.reason
        scores, costs, n_windows, champion = c.scores, c.costs, c.n_windows, c.champion
        production_score = c.production_score
    uses_pool = promoted == POOL or (promoted == ENSEMBLE and POOL in ensemble_members(settings, s["demand_class"]))
    if uses_pool and POOL in specs:
        specs[POOL], why = resolve_pool(specs, backtest, settings)
        reason += f"; {why}"
    if promoted == ENSEMBLE:
        specs[ENSEMBLE] = resolve_ensemble(specs, settings, s["demand_class"])
    promoted_score = _finite(scores.get(promoted))
    naive_score = _finite(scores.get(BASELINE))
    value_added = 1 - promoted_score / naive_score if promoted_score is not None and naive_score else None
    return pd.DataFrame(
        [
            {
                **{k: s[k] for k in settings.keys},
                "segment_id": s["segment_id"],
                "demand_class": s["demand_class"],
                "metric": settings.metric,
                "scores": {n: v for n, v in scores.items() if math.isfinite(v)},
                "n_windows": n_windows,
                "champion": champion,
                "portfolio_model": portfolio,
                "ensemble_weights": dict(zip(ensemble_members(settings, s["demand_class"]),
                                             settings.ensemble[s["demand_class"]]))
                if s["demand_class"] in settings.ensemble else None,
                "champion_score": _finite(scores.get(champion)) if champion else None,
                "production_model": family_of(production_spec),
                "production_score": _finite(production_score),
                "decision": decision,
                "promoted_model": promoted,
                "promoted_spec": specs[promoted],
                "promoted_score": promoted_score,
                "naive_score": naive_score,
                "value_added": value_added,
                "promoted_cost": _finite(costs.get(promoted)),
                "naive_cost": _finite(costs.get(BASELINE)),
                "reason": reason,
                "run_date": settings.run_date,
                "run_id": settings.run_id,
            }
        ]
    )
