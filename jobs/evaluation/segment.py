"""One segment's evaluation, the two functions the evaluate job runs per group: its backtest
rows (:func:`backtest_rows`) and its choice and gate decision (:func:`selection_row`)."""

from __future__ import annotations

import math
from functools import partial

import pandas as pd

from jobs.core.names import BASELINE, COMBINATIONS, POOL, PRODUCTION
from jobs.evaluation.backtest import RESULT_COLUMNS, backtest_segment
from jobs.evaluation.candidates import (
    EvaluationSettings,
    candidates_for,
    fitted,
    production_combination,
    production_name,
    resolve_pool,
)
from jobs.evaluation.selection import choose
from jobs.models import MODELS, build_model, family_of


def backtest_rows(pdf: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """One segment's backtest rows; none for an ineligible segment.

    ``pdf``: the segment's calendar (keys, ``segment_id``, ``ds``, ``y``, ``is_closed``,
    ``eligible``, the regressors) with its ``demand_class`` and ``production_spec``.
    """
    keys, regressors = list(settings.keys), list(settings.regressors)
    out_columns = [*keys, "segment_id", *RESULT_COLUMNS, "run_date", "run_id"]
    if not bool(pdf["eligible"].iloc[0]):
        return pd.DataFrame(columns=out_columns)
    specs = candidates_for(settings, pdf["demand_class"].iloc[0])
    combinations = {n: (MODELS[n].method, fitted(list(specs))) for n in specs if n in COMBINATIONS and n != POOL}
    pool = fitted(list(specs)) if POOL in specs else None
    production = pdf["production_spec"].iloc[0]
    if production_name(production, specs) == PRODUCTION:
        combined = production_combination(production, specs)
        if combined:
            combinations[PRODUCTION] = combined
        else:
            specs[PRODUCTION] = production
    out = backtest_segment(
        pdf[["ds", "y", "is_closed", *regressors]],
        {name: partial(build_model, spec) for name, spec in specs.items()
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
    out["cutoff"] = pd.to_datetime(out["cutoff"]).dt.date
    for k in keys:
        out[k] = pdf[k].iloc[0]
    out["segment_id"] = pdf["segment_id"].iloc[0]
    return out.assign(run_date=settings.run_date, run_id=settings.run_id)[out_columns]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def selection_row(segment: pd.DataFrame, backtest: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """One segment's choice and gate decision, as its ``gold.model_selection`` row.

    ``segment``: one row (keys, ``segment_id``, ``eligible``, ``ineligible_reason``,
    ``demand_class``, ``production_spec``); ``backtest``: the segment's backtest rows.
    """
    s = segment.iloc[0]
    specs = candidates_for(settings, s["demand_class"])
    portfolio = settings.portfolio.get(s["demand_class"]) if settings.rule == "portfolio" else None
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
                   tolerance=settings.tolerance, force=settings.force, portfolio=portfolio,
                   margin=settings.margin)
        decision, promoted, reason = c.decision, c.promoted, c.reason
        scores, costs, n_windows, champion = c.scores, c.costs, c.n_windows, c.champion
        production_score = c.production_score
    if promoted == POOL:
        specs[POOL], why = resolve_pool(specs, backtest, settings)
        reason += f"; {why}"
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
