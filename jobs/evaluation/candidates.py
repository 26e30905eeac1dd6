"""What a segment is evaluated with: the evaluation settings and the candidate catalogue.

A candidate is a name and a model spec (family and settings as canonical JSON). Every segment
gets the configured families; an intermittent one also the families for intermittent demand;
then the combinations of all of these, and the pool, whose members a backtest chooses.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jobs.core.errors import ConfigError
from jobs.core.names import (
    COMBINATIONS,
    ENSEMBLE,
    FAMILIES,
    ENSEMBLE_COMBINATIONS,
    INTERMITTENT,
    POOL,
    PRODUCTION,
    SCUM,
    SCUM_MEMBERS,
)
from jobs.evaluation.backtest import pooled
from jobs.models import (
    MODELS,
    GlobalPath,
    GlobalSettings,
    ProphetForecaster,
    SeasonalNaive,
    StatsForecaster,
    model_spec,
    strategy,
)


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything the per-segment evaluation needs, as plain picklable values (Spark ships
    them to its Python workers). ``portfolio`` (demand class -> the class's best strategy) is
    known only after the backtests: the job makes a copy with it for the choice."""

    keys: tuple[str, ...]
    regressors: tuple[str, ...]
    frequency: str
    horizon: int
    windows: int
    step: int
    interval_width: float
    cost_under: float
    cost_over: float
    metric: str
    tolerance: float
    rule: str
    margin: float
    specs: Mapping[str, str]  # every configured fitted candidate -> spec
    smooth: tuple[str, ...]  # fitted candidates of every segment
    intermittent: tuple[str, ...]  # fitted candidates of intermittent segments only
    combinations: tuple[str, ...]  # combinations and the pool, if configured
    run_date: dt.date
    run_id: str
    force: bool = False
    portfolio: Mapping[str, str] = field(default_factory=dict)
    # demand class -> the ensemble's weights, one per member of candidates_for's ensemble
    ensemble: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # demand class -> fitted candidates the race dropped for it (jobs.evaluation.race)
    dropped: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def rank(self) -> dict[str, int]:
        """Candidate name -> simplicity (0 = simplest): ties go to the simpler family."""
        return {name: i for i, name in enumerate(FAMILIES)}

    @property
    def gap(self) -> int:
        """Windows back to the latest one whose test periods ended by a window's cutoff."""
        return math.ceil(self.horizon / self.step)


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


def fitted(names: list[str] | tuple[str, ...]) -> list[str]:
    """The candidates that are fitted (not combinations, not the production stand-in)."""
    return [n for n in names if n not in COMBINATIONS and n != PRODUCTION]


def candidates_for(settings: EvaluationSettings, demand_class: str) -> dict[str, str]:
    """A segment's candidates (name -> spec): the configured families, the intermittent ones for
    intermittent segments, and the combinations, the pool and the ensemble of all of these (the
    pool's members are chosen from the backtest and the ensemble's weights learned from it:
    unresolved here until the settings carry them)."""
    names = members_of(settings, demand_class)
    specs = {n: settings.specs[n] for n in names}
    members = [specs[n] for n in names]
    # the fixed combinations, then the pool, then the ensemble, which may draw on all of them
    for combo in sorted(settings.combinations, key=lambda c: (c == ENSEMBLE, c == POOL)):
        if combo == POOL:
            specs[POOL] = model_spec(POOL, {"members": [], "candidates": members, "margin": settings.margin})
        elif combo == ENSEMBLE:
            weights = list(settings.ensemble.get(demand_class, ()))
            specs[ENSEMBLE] = model_spec(ENSEMBLE, {"members": [specs[n] for n in ensemble_members(settings, demand_class)],
                                                    "weights": weights})
        elif combination_members(combo, names):
            specs[combo] = model_spec(combo, {"members": [specs[n] for n in combination_members(combo, names)]})
    return specs


def members_of(settings: EvaluationSettings, demand_class: str) -> list[str]:
    """The fitted candidates of a demand class: what its combinations draw on, in this order
    (without those the race dropped for the class)."""
    names = list(settings.smooth) + (list(settings.intermittent) if demand_class == INTERMITTENT else [])
    return [n for n in names if n not in settings.dropped.get(demand_class, ())]


def combination_members(combination: str, fitted_names: list[str]) -> list[str]:
    """What a combination with fixed members combines: SCUM its families that are candidates, the
    others every fitted candidate."""
    return [n for n in fitted_names if combination != SCUM or n in SCUM_MEMBERS]


def ensemble_members(settings: EvaluationSettings, demand_class: str) -> list[str]:
    """What the ensemble of a demand class selects from: its fitted candidates, the configured
    combinations with fixed members, and the pool."""
    names = members_of(settings, demand_class)
    return names + [c for c in ENSEMBLE_COMBINATIONS if c in settings.combinations and combination_members(c, names)]


def resolve_ensemble(specs: dict[str, str], settings: EvaluationSettings, demand_class: str) -> str:
    """The ensemble's spec for one segment: the pool among its members is the segment's own
    (resolved from its backtest: call after :func:`resolve_pool`)."""
    args = json.loads(specs[ENSEMBLE])["args"]
    return model_spec(ENSEMBLE, {**args, "members": [specs[n] for n in ensemble_members(settings, demand_class)]})


def resolve_pool(specs: dict[str, str], backtest: pd.DataFrame, settings: EvaluationSettings) -> tuple[str, str]:
    """The pool's spec with its members chosen on every backtest window, and why (when nothing
    scored, the pool is every candidate)."""
    universe = fitted(list(specs))
    members, why = pooled(backtest, universe, settings.margin, settings.metric)
    if not members:
        members, why = universe, f"every candidate ({why})"
    args = json.loads(specs[POOL])["args"]
    return model_spec(POOL, {**args, "members": [specs[n] for n in members]}), why


def production_name(spec: str | None, specs: Mapping[str, str]) -> str | None:
    """The candidate that stands for the production model: a configured one with the same
    strategy (spec, a pool's members aside), else :data:`PRODUCTION`; None when nothing is in
    production."""
    if not spec:
        return None
    return next((name for name, s in specs.items() if strategy(s) == strategy(spec)), PRODUCTION)


def production_combination(spec: str, specs: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """(method, member names) when production is a combination of configured candidates: it is
    then scored from their window forecasts, without fits of its own."""
    d = json.loads(spec)
    if d["family"] not in COMBINATIONS:
        return None
    by_spec = {s: n for n, s in specs.items() if n not in COMBINATIONS}
    members = [by_spec.get(m) for m in d["args"]["members"]]
    return (MODELS[d["family"]].method, members) if members and None not in members else None
