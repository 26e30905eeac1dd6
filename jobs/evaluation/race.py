"""Racing the candidates: spend the backtest's fits where they can matter (plain pandas, no Spark).

Before backtesting every segment, the evaluate job backtests every candidate on a sample of each
demand class's segments. On that sample this module replays the class's held-out evaluation
(:func:`~jobs.evaluation.scorecard.held_out_strategies`: the last window, every choice made on the
windows that ended by its cutoff) with the configured rule, first with every candidate, then
without each costly family in turn, the costliest first, from the sample's own window forecasts:
no fit is repeated, the combinations, the pool and the ensemble are recombined without the
family. A family is dropped for the class when, without it and the families dropped before it,
the rule's held-out mean MASE is at most ``tolerance`` (relative) worse than with every candidate:
``tolerance`` is the whole accuracy the class may give up for speed, on the sample. The class's
other segments are then backtested, combined, chosen and trained without it, and the sample's own
rows are the replay without it. It neither wins there nor earns the combinations
anything measurable. What was dropped, for which class, and the figures it was judged on are
the :class:`ClassRace` records the job prints and writes to the run log.

The sample is about ``sample_segments`` segments per class (a fixed size: the decision's
precision depends on it, not on the class's size, so the race costs the same on ten thousand
segments as on a thousand). Families that cost less than ``min_cost_share`` of the class's fit
time on the sample are not raced (dropping them saves nothing); the baseline is never dropped. A
class with at most twice the sample's segments, or with no held-out window, is not raced.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jobs.core.names import BASELINE, ENSEMBLE, PRODUCTION
from jobs.evaluation.candidates import EvaluationSettings, ensemble_members, fitted, members_of
from jobs.evaluation.ensemble import learn_ensembles
from jobs.evaluation.scorecard import held_out_strategies
from jobs.evaluation.segment import FORECAST_ROW, METRICS_ROW, backtest_rows, ensemble_rows
from jobs.models.base import ModelFailure


@dataclass(frozen=True)
class RaceSettings:
    """``evaluation.race`` of the config (its defaults are there)."""

    enabled: bool
    sample_segments: int
    tolerance: float
    min_cost_share: float


@dataclass
class ClassRace:
    """One demand class's race: the sample, the rule's held-out score with every candidate, and per
    raced family its cost and the score without it and the families dropped before it."""

    demand_class: str
    sampled: int
    raced: bool
    reason: str
    score: float | None = None  # the rule's held-out mean MASE with the candidates finally kept
    full_score: float | None = None  # ... with every candidate
    dropped: list[str] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    fit_seconds: float = 0.0  # the sample's fits
    replay_seconds: float = 0.0  # wall time of the replays that judged the families

    def describe(self) -> str:
        if not self.raced:
            return f"{self.demand_class}: not raced ({self.reason})"
        tried = "; ".join(
            f"{t['family']} {t['decision']} ({t['cost_share']:.0%} of the fit time; rule MASE without it "
            f"{t['without']:.4f}, with every candidate {t['with']:.4f})" for t in self.trials)
        return (f"{self.demand_class}: raced on {self.sampled:,} sampled segments; "
                f"{tried or 'no family costly enough to race'}")

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Replay:
    """A stand-in model that forecasts what a candidate forecast in the sample's backtest window
    (found by the window's cutoff), or fails as it failed there, and reports the seconds its fit
    took there."""

    def __init__(self, rows: pd.DataFrame) -> None:
        scored = rows[rows["kind"] == METRICS_ROW]
        self.recorded = dict(zip(scored["cutoff"], zip(scored["status"], scored["reason"], scored["seconds"])))
        forecasts = rows[rows["kind"] == FORECAST_ROW]
        self.forecasts = {c: f.set_index("ds")[["yhat", "yhat_lower", "yhat_upper"]]
                          for c, f in forecasts.groupby("cutoff")}
        self.cutoff = None
        self.replayed_seconds: float | None = None

    def fit(self, history: pd.DataFrame) -> _Replay:
        self.cutoff = pd.Timestamp(history["ds"].max()).date()
        status, reason, self.replayed_seconds = self.recorded.get(self.cutoff, ("failed", "no backtest row", 0.0))
        if status != "ok":
            raise ModelFailure(str(reason))  # the reason it failed with, word for word
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        ds = pd.to_datetime(future["ds"])
        out = self.forecasts[self.cutoff].reindex(ds.dt.date).reset_index(drop=True)
        return out.assign(ds=ds.reset_index(drop=True))[["ds", "yhat", "yhat_lower", "yhat_upper"]]


def replayed(history: pd.DataFrame, rows: pd.DataFrame, settings: EvaluationSettings,
             production: bool = False) -> pd.DataFrame:
    """A segment's backtest rows (both kinds) under ``settings``, its fitted candidates replayed
    from ``rows`` (its backtest under the full candidate list, the production model's rows
    included): what backtesting it with the settings' candidates gives, without a fit. ``history``
    as :func:`backtest_rows` takes it; its production model is left out unless ``production`` (the
    race judges the configured candidates)."""
    by_spec = {settings.specs[n]: n for n in fitted(list(settings.specs))}
    own = {name: r for name, r in rows.groupby("model")}
    empty = rows.iloc[:0]

    def make(name: str, spec: str) -> Callable[[], _Replay]:
        stored = own.get(by_spec.get(spec, name), empty)
        return lambda: _Replay(stored)

    return backtest_rows(history if production else history.assign(production_spec=None), settings, make=make)


# settings and a demand class -> the class's sampled segments replayed under the settings
Replayer = Callable[[EvaluationSettings, str], pd.DataFrame]


def local_replayer(history: pd.DataFrame, backtest: pd.DataFrame) -> Replayer:
    """A :data:`Replayer` that replays the sample one segment after the other, in this process
    (the evaluate job spreads the same function over its Spark tasks)."""
    rows = dict(tuple(backtest.groupby("segment_id")))

    def replay(settings: EvaluationSettings, demand_class: str) -> pd.DataFrame:
        own = history[history["demand_class"] == demand_class]
        return pd.concat([replayed(h, rows[s], settings) for s, h in own.groupby("segment_id") if s in rows],
                         ignore_index=True)

    return replay


def rule_score(rows: pd.DataFrame, demand_class: str, settings: EvaluationSettings) -> float:
    """The configured rule's held-out mean MASE over a class's backtest rows (both kinds, the
    ensemble not yet among them), NaN when there is no held-out window."""
    out = rows.assign(demand_class=demand_class)
    if ENSEMBLE in settings.combinations:
        members = {demand_class: ensemble_members(settings, demand_class)}
        learn = out[(out["kind"] == FORECAST_ROW) & out["model"].isin(members[demand_class])]
        by_window, _, why = learn_ensembles(learn, members, metric=settings.metric, gap=settings.gap,
                                            cost_under=settings.cost_under, cost_over=settings.cost_over)
        ensembles = [ensemble_rows(seg, settings, by_window, why) for _, seg in out.groupby("segment_id")]
        out = pd.concat([out, *ensembles], ignore_index=True).assign(demand_class=demand_class)
    per_window = out[(out["kind"] == METRICS_ROW) & (out["status"] == "ok") & (out["model"] != PRODUCTION)]
    held = held_out_strategies(per_window, metric=settings.metric, rank=settings.rank, margin=settings.margin,
                               gap=settings.gap, rule=settings.rule)
    if held.empty:
        return math.nan
    # the baseline's row covers every segment scored: its "rule here" is the rule's mean over them
    return float(held.loc[BASELINE, "rule_mase"] if BASELINE in held.index else held["rule_mase"].iloc[0])


def sample_shares(class_sizes: Mapping[str, int], race_settings: RaceSettings) -> tuple[dict[str, float], list[ClassRace]]:
    """Demand class -> the share of its eligible segments to sample (about ``sample_segments``),
    and the records of the classes not raced: those with at most twice as many segments as the
    sample, where a race would cost about what it can save."""
    shares, unraced = {}, []
    for demand_class, n in sorted(class_sizes.items()):
        if n > 2 * race_settings.sample_segments:
            shares[demand_class] = race_settings.sample_segments / n
        else:
            unraced.append(ClassRace(demand_class, 0, False, f"{n:,} segments: at most twice the sample of "
                                                             f"{race_settings.sample_segments:,}"))
    return shares, unraced


def race(fits: pd.DataFrame, settings: EvaluationSettings, race_settings: RaceSettings,
         replay: Replayer) -> list[ClassRace]:
    """Each sampled demand class's race.

    Args:
        fits: the sample's backtest metrics rows of the fitted candidates (``segment_id``,
            ``demand_class``, ``model``, ``seconds``), under ``settings``.
        replay: replays a class's sampled segments under other settings (:func:`local_replayer`).
    """
    races = []
    for demand_class, own in fits.groupby("demand_class"):
        started = time.perf_counter()
        sampled = own["segment_id"].nunique()
        cost = own[own["model"].isin(members_of(settings, demand_class))].groupby("model")["seconds"].sum()
        share = cost / cost.sum() if cost.sum() > 0 else cost * 0
        full = rule_score(replay(settings, demand_class), demand_class, settings)
        if not math.isfinite(full):
            races.append(ClassRace(demand_class, sampled, False, "no held-out window to judge on"))
            continue
        result = ClassRace(demand_class, sampled, True, "raced", score=full, full_score=full,
                           fit_seconds=float(cost.sum()))
        dropped: list[str] = []
        for family in sorted(share.index, key=lambda f: -share[f]):
            if family == BASELINE or share[family] < race_settings.min_cost_share:
                continue
            trial = dataclasses.replace(settings, dropped={**settings.dropped, demand_class: (*dropped, family)})
            without = rule_score(replay(trial, demand_class), demand_class, trial)
            drop = math.isfinite(without) and without <= full * (1 + race_settings.tolerance)
            result.trials.append({"family": family, "cost_share": float(share[family]),
                                  "seconds": float(cost[family]), "with": full, "without": without,
                                  "decision": "dropped" if drop else "kept"})
            if drop:
                dropped.append(family)
                result.score = without
        result.dropped = dropped
        result.replay_seconds = time.perf_counter() - started
        races.append(result)
    return races
