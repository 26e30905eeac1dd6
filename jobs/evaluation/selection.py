"""Choosing a segment's model from its scored windows, and the promotion gate (plain pandas, no
Spark, no model family).

The champion is the candidate with the lowest mean score over the backtest windows, among the
candidates that forecast every window; ties go to the simpler family. A choice made on a few
noisy windows overfits, so a :class:`Rule` says what a segment gets instead: under ``portfolio``
the portfolio's best strategy (best mean score over all segments of its demand class) unless its
own champion beats that by ``margin`` in every window; under ``ensemble`` its class's ensemble
unless its own champion is exact in every window; under ``per_segment`` its champion. The same
rule makes the real choice (:func:`selection_rows`), the held-out scorecard's
(:mod:`jobs.evaluation.scorecard`) and the race's (:mod:`jobs.evaluation.race`). The gate then
compares the pick with the model in production on the same windows: it is promoted only when its
score is at most production's score x (1 + tolerance). ``force`` promotes anyway and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jobs.core.names import BASELINE, ENSEMBLE, POOL, PRODUCTION
from jobs.core.specs import family_of
from jobs.evaluation.candidates import Candidates, JudgeSettings

# model -> window -> score: one segment's scored windows, of the candidates that scored them all
WindowScores = Mapping[str, Mapping[int, float]]


@dataclass(frozen=True)
class Rule:
    """How a segment's model is picked from its windows: see the module's docstring."""

    name: str
    metric: str
    margin: float
    rank: Mapping[str, int]

    @classmethod
    def of(cls, settings: JudgeSettings, name: str | None = None) -> Rule:
        return cls(name or settings.rule, settings.metric, settings.margin, settings.rank)

    @property
    def threshold(self) -> float:
        """By how much the own champion must beat the rule's strategy in every window to be kept."""
        return 1.0 if self.name == ENSEMBLE else self.margin

    def best(self, per_window: pd.DataFrame) -> dict[str, str]:
        """Demand class -> the strategy the rule prefers for the class, judged on ``per_window``
        (ok rows: ``segment_id``, ``demand_class``, ``model``, ``window``, the metric); none under
        ``per_segment``."""
        if self.name == "portfolio":
            return portfolios(per_window, self.metric, self.rank)
        if self.name == ENSEMBLE:
            return {c: ENSEMBLE for c in sorted(per_window["demand_class"].unique())}
        return {}

    def pick(self, windows: WindowScores, scores: Mapping[str, float], champion: str,
             best: str | None) -> tuple[str, bool | None]:
        """The segment's pick, and whether its champion beat the rule's strategy in every window
        (None: there was no other strategy to beat)."""
        if best is None or best == champion or best not in scores:
            return champion, None
        if beats(windows.get(champion, {}), windows.get(best, {}), self.threshold):
            return champion, True
        return best, False


@dataclass
class Choice:
    """What the gate decided for one segment; ``promoted`` is a candidate name."""

    decision: str
    promoted: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    n_windows: int = 0
    champion: str | None = None
    production_score: float | None = None
    portfolio: str | None = None


@dataclass
class Backtest:
    """One segment's scored windows, as the choice reads them: the windows judged, each
    candidate's mean score and cost (the candidates that scored every window), the first failure
    of the others, and the scores by window."""

    n_windows: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    windows: dict[str, dict[int, float]] = field(default_factory=dict)


def backtests(scored: pd.DataFrame, metric: str) -> dict[str, Backtest]:
    """Segment -> its :class:`Backtest`, from scored window rows (``segment_id``, ``model``,
    ``window``, ``status``, ``reason``, the metric, ``cost``)."""
    judged = scored[scored["status"] != "skipped"].sort_values(["segment_id", "model", "window"], kind="stable")
    out = {s: Backtest(int(n)) for s, n in judged.groupby("segment_id")["window"].nunique().items()}
    bad = judged["status"] != "ok"
    failing = bad.groupby([judged["segment_id"], judged["model"]]).transform("any")
    for (segment, model), reason in judged[bad].groupby(["segment_id", "model"])["reason"].first().items():
        out[segment].failures[model] = str(reason).split(":")[0]
    ok = judged[~failing]
    keys = [ok["segment_id"].to_numpy(), ok["model"].to_numpy()]
    scores, costs = finite_means(keys, ok[metric]), finite_means(keys, ok["cost"])
    for (segment, model), value in scores.items():
        out[segment].scores[model] = value
        out[segment].costs[model] = costs[(segment, model)]
    for segment, model, window, value in zip(ok["segment_id"], ok["model"], ok["window"], ok[metric]):
        out[segment].windows.setdefault(model, {})[int(window)] = float(value)
    return out


def finite_means(keys: list[np.ndarray], values: pd.Series) -> dict[tuple, float]:
    """Key -> the mean of its finite values (NaN when none), the same number as pandas' mean of
    them one key at a time (rows of equal length are summed along contiguous rows)."""
    frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)}).assign(v=values.to_numpy(dtype=float))
    names = [c for c in frame.columns if c != "v"]
    out = {tuple(k): math.nan for k in frame[names].drop_duplicates().itertuples(index=False)}
    finite = frame[np.isfinite(frame["v"])]
    if finite.empty:
        return out
    order = finite.groupby(names, sort=True).ngroup().to_numpy()
    finite = finite.iloc[np.argsort(order, kind="stable")]
    order = np.sort(order)
    sizes = np.bincount(order)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    firsts = finite.iloc[starts][names].itertuples(index=False)
    values_ = finite["v"].to_numpy()
    means = np.empty(len(sizes))
    for n in np.unique(sizes):
        chosen = np.flatnonzero(sizes == n)
        means[chosen] = values_[starts[chosen][:, None] + np.arange(n)].sum(axis=1) / n
    out.update({tuple(k): float(m) for k, m in zip(firsts, means)})
    return out


def _fmt(score: float | None) -> str:
    return "undefined" if score is None or not math.isfinite(score) else f"{score:.4g}"


def champion_of(scores: Mapping[str, float], rank: Mapping[str, int]) -> str | None:
    """Lowest finite score; ties (within 1e-9 relative) and undefined scores go to the simplest."""
    if not scores:
        return None
    finite = {n: s for n, s in scores.items() if math.isfinite(s)}
    if not finite:
        return min(scores, key=lambda n: rank[n])
    best = min(finite.values())
    tied = [n for n, s in finite.items() if s <= best + 1e-9 * abs(best) + 1e-12]
    return min(tied, key=lambda n: rank[n])


def choose(backtest: Backtest, *, rule: Rule, best: str | None, production: str | None, tolerance: float,
           force: bool = False) -> Choice:
    """Champion, the rule's pick and the gate's decision for one segment.

    Args:
        backtest: the segment's scored windows (:func:`backtests`).
        rule: how the pick is made; ``best``: the rule's strategy for the segment's demand class.
        production: the candidate name that stands for the production model (a configured
            candidate when its strategy is unchanged, else :data:`PRODUCTION`), or None; it ranks
            in ``rule.rank`` as its family.
    """
    if not backtest.n_windows:
        return Choice("fallback", BASELINE, "not backtested: too little history for any window")
    scores, costs, n_windows, metric = backtest.scores, backtest.costs, backtest.n_windows, rule.metric
    failed = (f"; failed: {', '.join(f'{n} ({r})' for n, r in sorted(backtest.failures.items()))}"
              if backtest.failures else "")
    champion = champion_of({n: s for n, s in scores.items() if n != PRODUCTION}, rule.rank)
    base = {"scores": scores, "costs": costs, "n_windows": n_windows, "champion": champion, "portfolio": best}
    if champion is None:
        return Choice("fallback", BASELINE, f"every candidate failed{failed}", **base)
    pick, beaten = rule.pick(backtest.windows, scores, champion, best)
    said = f"champion {champion} {metric} {_fmt(scores[champion])} over {n_windows} windows"
    if beaten is not None:
        versus = f"portfolio best {best} {_fmt(scores[best])}"
        if beaten:
            said += f"; beats {versus} by {rule.threshold:.0%} in every window"
        else:
            said = (f"{versus}; own champion {champion} {_fmt(scores[champion])} does not beat it by "
                    f"{rule.threshold:.0%} in every window")
    said += failed
    if production is None:
        return Choice("promoted", pick, f"{said}; no model in production", **base)
    if production not in scores:
        return Choice("promoted", pick, f"{said}; production model failed the backtest", **base)
    prod_score = scores[production]
    base["production_score"] = prod_score
    if production == pick:
        return Choice("kept", pick, f"{said}; production is the pick", **base)
    versus = f"production {_fmt(prod_score)}, tolerance {tolerance:.0%}"
    limit = prod_score * (1 + tolerance)
    if math.isfinite(scores[pick]) and (not math.isfinite(prod_score) or scores[pick] <= limit):
        return Choice("promoted", pick, f"{said}; not worse than {versus}", **base)
    if force:
        return Choice("forced", pick, f"{said}; worse than {versus}; promoted by --force", **base)
    return Choice("refused", production, f"{said}; worse than {versus}: production kept", **base)


def beats(own: Mapping[int, float], other: Mapping[int, float], margin: float) -> bool:
    """True when ``own`` scores at most (1 - margin) x ``other``'s score in every window either
    scored (both must have scored each): a margin that holds across windows, not on average only."""
    windows = {w for w, v in own.items() if not math.isnan(v)} | {w for w, v in other.items() if not math.isnan(v)}
    if not windows:
        return False
    for w in windows:
        a, b = own.get(w, math.nan), other.get(w, math.nan)
        if math.isnan(a) or math.isnan(b) or not a <= (1 - margin) * b:
            return False
    return True


def portfolio_best(scores: pd.DataFrame, rank: Mapping[str, int]) -> str | None:
    """The candidate with the lowest mean score over the segments where every candidate scored.

    ``scores``: one row per segment and candidate, columns ``segment_id``, ``model``, ``score``
    (non-finite = did not score)."""
    table = scores.pivot_table(index="segment_id", columns="model", values="score", aggfunc="first")
    table = table.replace([np.inf, -np.inf], np.nan).dropna()
    if table.empty:
        return None
    return champion_of(table.mean().to_dict(), rank)


def portfolios(per_window: pd.DataFrame, metric: str, rank: Mapping[str, int]) -> dict[str, str]:
    """Demand class -> :func:`portfolio_best` over the class's segments (a segment's score: its
    mean over the windows, counted only when the candidate scored all the windows it has)."""
    out = {}
    for demand_class, rows in per_window.groupby("demand_class"):
        scored = rows.groupby(["segment_id", "model"]).agg(score=(metric, "mean"), n=("window", "nunique"))
        scored = scored.reset_index()
        best = portfolio_best(scored[scored["n"] == scored.groupby("segment_id")["n"].transform("max")], rank)
        if best:
            out[demand_class] = best
    return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def selection_rows(scored: pd.DataFrame, segments: pd.DataFrame, candidates: Candidates, settings: JudgeSettings,
                   best: Mapping[str, str], ensemble: Mapping[str, tuple[float, ...]],
                   pools: Mapping[str, tuple[list[str], str]]) -> pd.DataFrame:
    """Every segment's choice and gate decision, as its ``gold.model_selection`` row.

    Args:
        scored: the segments' scored windows, every candidate's (the production model's too).
        segments: a row per segment (keys, ``segment_id``, ``eligible``, ``ineligible_reason``,
            ``demand_class``, ``production_spec``).
        best: demand class -> the rule's strategy (:meth:`Rule.best`); ``ensemble``: demand class
            -> the ensemble's weights learned on every window; ``pools``: segment -> the pool's
            members chosen on every window, and why (what train fits).
    """
    rule = Rule.of(settings)
    summaries = backtests(scored, settings.metric)
    rows = []
    for s in segments.to_dict("records"):
        demand_class = s["demand_class"]
        production_spec = s["production_spec"] if isinstance(s["production_spec"], str) else None
        weights = ensemble.get(demand_class, ())
        members, why = pools.get(s["segment_id"], ([], None))
        specs = candidates.specs_for(demand_class, weights)
        production = candidates.production(production_spec, demand_class)
        if production is not None and production.name == PRODUCTION:
            specs[PRODUCTION] = production_spec
        portfolio = ENSEMBLE if rule.name == ENSEMBLE and ENSEMBLE in specs else best.get(demand_class)
        if not bool(s["eligible"]):
            c = Choice("fallback", BASELINE, str(s["ineligible_reason"]))
        else:
            rank = {**settings.rank, PRODUCTION: settings.rank.get(family_of(production_spec), 99)}
            c = choose(summaries.get(s["segment_id"], Backtest()), rule=Rule(rule.name, rule.metric, rule.margin, rank),
                       best=portfolio, production=production.name if production else None,
                       tolerance=settings.tolerance, force=settings.force)
        reason = c.reason
        uses_pool = c.promoted == POOL or (c.promoted == ENSEMBLE and POOL in candidates.ensemble_members(demand_class))
        if uses_pool and POOL in specs:
            specs = {**specs, **{k: v for k, v in candidates.specs_for(demand_class, weights, members).items()
                                 if k in (POOL, ENSEMBLE)}}
            reason += f"; {why}"
        promoted_score = _finite(c.scores.get(c.promoted))
        naive_score = _finite(c.scores.get(BASELINE))
        rows.append({
            **{k: s[k] for k in settings.keys},
            "segment_id": s["segment_id"],
            "demand_class": demand_class,
            "metric": settings.metric,
            "scores": {n: c.scores[n] for n in sorted(c.scores, key=lambda n: (settings.rank.get(n, 99), n))
                       if math.isfinite(c.scores[n])},
            "n_windows": c.n_windows,
            "champion": c.champion,
            "portfolio_model": portfolio if rule.name != "per_segment" else None,
            "ensemble_weights": dict(zip(candidates.ensemble_members(demand_class), weights))
            if demand_class in ensemble else None,
            "champion_score": _finite(c.scores.get(c.champion)) if c.champion else None,
            "production_model": family_of(production_spec),
            "production_score": _finite(c.production_score),
            "decision": c.decision,
            "promoted_model": c.promoted,
            "promoted_spec": specs[c.promoted],
            "promoted_score": promoted_score,
            "naive_score": naive_score,
            "value_added": 1 - promoted_score / naive_score if promoted_score is not None and naive_score else None,
            "promoted_cost": _finite(c.costs.get(c.promoted)),
            "naive_cost": _finite(c.costs.get(BASELINE)),
            "reason": reason,
            "run_date": settings.run_date,
            "run_id": settings.run_id,
        })
    return pd.DataFrame(rows)
