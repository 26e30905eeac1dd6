"""Racing the candidates: spend the backtest's fits where they can matter (plain pandas, no Spark,
no model family).

Before fitting every segment, the evaluate job fits every candidate on a sample of each demand
class's segments. On that sample this module judges the class's held-out evaluation
(:func:`~jobs.evaluation.scorecard.held_out_strategies`: the last window, every choice made on the
windows that ended by its cutoff, with the configured :class:`~jobs.evaluation.selection.Rule`)
first with every candidate, then without each costly family in turn, the costliest first, in
rounds until a round drops nothing (a family kept beside another may go once that one has): the
judge stage (:func:`~jobs.evaluation.judge.judge`) runs again on the sample's window forecasts
without the family's, so no fit is repeated, and the combinations, the pool and the ensemble are
derived again without it. A family is dropped for the class when, without it and the families
dropped before it, the rule's held-out mean MASE is at most ``tolerance`` (relative) worse than
with every candidate: ``tolerance`` is the whole accuracy the class may give up for speed, on the
sample. The class's other segments are then fitted, combined, chosen and trained without it, and
the sample's own window forecasts are kept without it (:func:`kept_rows`). It neither wins there
nor earns the combinations anything measurable. What was dropped, for which class, and the figures
it was judged on are the :class:`ClassRace` records the job prints and writes to the run log.

A race's decisions are kept for ``renew_days`` days: a later evaluation with the same candidates
and settings (:func:`candidates_key`) takes them from the run log instead of racing again, so a
retraining night fits only its new windows, and the families in play do not flip between nights on
a sample's noise.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jobs.core.names import BASELINE, PRODUCTION
from jobs.evaluation.candidates import Candidates, JudgeSettings
from jobs.evaluation.judge import judge
from jobs.evaluation.scorecard import held_out_strategies


@dataclass(frozen=True)
class RaceSettings:
    """``evaluation.race`` of the config (its defaults are there)."""

    enabled: bool
    sample_segments: int
    tolerance: float
    min_cost_share: float
    renew_days: int = 28


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
    judge_seconds: float = 0.0  # wall time of the judging that decided

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

    @classmethod
    def carried(cls, record: Mapping[str, Any], source: str) -> ClassRace:
        """An earlier run's race of a class (its :meth:`record`), kept by this run: its drops hold,
        and ``reason`` says where they come from."""
        fields = {f.name for f in dataclasses.fields(cls)}
        race = cls(**{k: v for k, v in record.items() if k in fields})
        race.reason = f"{race.reason if not race.raced else 'raced'}; carried from {source}"
        race.fit_seconds, race.judge_seconds = 0.0, 0.0
        return race


def rule_score(rows: pd.DataFrame, segments: pd.DataFrame, demand_class: str, candidates: Candidates,
               settings: JudgeSettings) -> float:
    """The configured rule's held-out mean MASE over a class's sampled segments judged with
    ``candidates`` (their fitted families' window forecasts from ``rows``; the production model
    left out: the race judges the configured candidates), NaN when there is no held-out window."""
    own = segments[segments["demand_class"] == demand_class].assign(production_spec=None)
    fits = rows[rows["segment_id"].isin(set(own["segment_id"])) & rows["model"].isin(candidates.fitted(demand_class))]
    judged = judge(fits, own, candidates, settings)
    scored = judged.scored
    per_window = scored[(scored["status"] == "ok") & (scored["model"] != PRODUCTION)].assign(demand_class=demand_class)
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


def race(rows: pd.DataFrame, segments: pd.DataFrame, candidates: Candidates, settings: JudgeSettings,
         race_settings: RaceSettings) -> list[ClassRace]:
    """Each sampled demand class's race.

    Args:
        rows: the sample's window forecasts (the fit stage's, every candidate fitted).
        segments: the sampled segments: ``segment_id``, ``demand_class``.
    """
    races = []
    fits = rows.drop_duplicates(["segment_id", "model", "window"]).merge(segments[["segment_id", "demand_class"]])
    for demand_class, own in fits.groupby("demand_class"):
        started = time.perf_counter()
        sampled = own["segment_id"].nunique()
        cost = own[own["model"].isin(candidates.fitted(demand_class))].groupby("model")["seconds"].sum()
        share = cost / cost.sum() if cost.sum() > 0 else cost * 0
        full = rule_score(rows, segments, demand_class, candidates, settings)
        if not math.isfinite(full):
            races.append(ClassRace(demand_class, sampled, False, "no held-out window to judge on"))
            continue
        result = ClassRace(demand_class, sampled, True, "raced", score=full, full_score=full,
                           fit_seconds=float(cost.sum()))
        dropped: list[str] = list(candidates.dropped.get(demand_class, ()))
        costly = [f for f in sorted(share.index, key=lambda f: -share[f])
                  if f != BASELINE and share[f] >= race_settings.min_cost_share]
        for round_ in range(1, len(costly) + 1):  # again while a round drops one: a family kept
            dropped_before = len(dropped)        # beside another may go once that one has gone
            for family in (f for f in costly if f not in dropped):
                trial = candidates.without(demand_class, (*dropped, family))
                without = rule_score(rows, segments, demand_class, trial, settings)
                drop = math.isfinite(without) and without <= full * (1 + race_settings.tolerance)
                result.trials.append({"family": family, "round": round_, "cost_share": float(share[family]),
                                      "seconds": float(cost[family]), "with": full, "without": without,
                                      "decision": "dropped" if drop else "kept"})
                if drop:
                    dropped.append(family)
                    result.score = without
            if len(dropped) == dropped_before:
                break
        result.dropped = [f for f in dropped if f not in candidates.dropped.get(demand_class, ())]
        result.judge_seconds = time.perf_counter() - started
        races.append(result)
    return races


def candidates_key(candidates: Candidates, settings: JudgeSettings, race_settings: RaceSettings) -> str:
    """What a race's decisions depend on besides the data: the candidates and how they are judged
    and raced (an evaluation with another key races again)."""
    import hashlib
    import json

    what = {"specs": dict(candidates.specs), "smooth": candidates.smooth, "intermittent": candidates.intermittent,
            "combinations": candidates.combinations, "margin": candidates.margin, "rule": settings.rule,
            "metric": settings.metric, "gap": settings.gap,
            "race": [race_settings.sample_segments, race_settings.tolerance, race_settings.min_cost_share]}
    return hashlib.sha1(json.dumps(what, sort_keys=True, default=list).encode()).hexdigest()[:16]


def raced(candidates: Candidates, races: list[ClassRace]) -> Candidates:
    """The candidates without what each class's race dropped."""
    for r in races:
        if r.dropped:
            candidates = candidates.without(r.demand_class, (*candidates.dropped.get(r.demand_class, ()), *r.dropped))
    return candidates


def kept_rows(rows: pd.DataFrame, segments: pd.DataFrame, before: Candidates, after: Candidates) -> pd.DataFrame:
    """The sample's window forecasts (fitted with ``before``) as the fit stage gives them with
    ``after``: without the families dropped, and the production model's own where it was one of
    them (it is then fitted in its own right: its rows are the family's)."""
    out = []
    for demand_class, own in segments.groupby("demand_class"):
        mine = rows[rows["segment_id"].isin(set(own["segment_id"]))]
        dropped = set(before.fitted(demand_class)) - set(after.fitted(demand_class))
        if not dropped:
            out.append(mine)
            continue
        keep = mine[~mine["model"].isin(dropped)]
        stand_ins = []
        for segment, spec in zip(own["segment_id"], own["production_spec"]):
            was = before.production(spec if isinstance(spec, str) else None, demand_class)
            now = after.production(spec if isinstance(spec, str) else None, demand_class)
            if was is not None and now is not None and now.fitted and was.name in dropped:
                stand_ins.append(mine[(mine["segment_id"] == segment) & (mine["model"] == was.name)].assign(
                    model=PRODUCTION))
        out.extend([keep, *stand_ins])
    return pd.concat(out, ignore_index=True) if out else rows.iloc[:0]
