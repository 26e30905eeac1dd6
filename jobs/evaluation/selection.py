"""Choosing a segment's model from its backtest, and the promotion gate (plain pandas, no Spark).

The champion is the candidate with the lowest mean score over the backtest windows, among the
candidates that forecast every window; ties go to the simpler family. A choice made on a few
noisy windows overfits, so under the ``portfolio`` rule the segment gets the portfolio's best
strategy (best mean score over all segments of its demand class) unless its own champion beats
that by ``margin`` in every window. The gate then compares
the pick with the model in production on the same windows: it is promoted only when its score
is at most production's score x (1 + tolerance). ``force`` promotes anyway and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jobs.core.names import BASELINE, PRODUCTION


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


def _mean(values: pd.Series) -> float:
    finite = values[np.isfinite(values.astype(float))]
    return float(finite.mean()) if len(finite) else math.nan


def _fmt(score: float | None) -> str:
    return "undefined" if score is None or not math.isfinite(score) else f"{score:.4g}"


def champion_of(scores: dict[str, float], rank: dict[str, int]) -> str | None:
    """Lowest finite score; ties (within 1e-9 relative) and undefined scores go to the simplest."""
    if not scores:
        return None
    finite = {n: s for n, s in scores.items() if math.isfinite(s)}
    if not finite:
        return min(scores, key=lambda n: rank[n])
    best = min(finite.values())
    tied = [n for n, s in finite.items() if s <= best + 1e-9 * abs(best) + 1e-12]
    return min(tied, key=lambda n: rank[n])


def choose(
    backtest: pd.DataFrame,
    *,
    rank: dict[str, int],
    production: str | None,
    metric: str,
    tolerance: float,
    force: bool = False,
    portfolio: str | None = None,
    margin: float = 0.0,
) -> Choice:
    """Champion and gate decision for one segment.

    Args:
        backtest: the segment's backtest rows (``model``, ``window``, ``status``, ``reason``,
            the metric columns, ``cost``).
        rank: candidate name -> simplicity (0 = simplest); ``production`` ranks as its family.
        production: the candidate name that stands for the production model (a configured
            family when its settings are unchanged, else :data:`PRODUCTION`), or None.
        portfolio: the portfolio's best strategy for the segment's demand class (None: the
            per-segment rule, the champion is the pick).
    """
    evaluated = backtest[backtest["status"] != "skipped"]
    if evaluated.empty:
        return Choice("fallback", BASELINE, "not backtested: too little history for any window")
    n_windows = int(evaluated["window"].nunique())
    scores, costs, failures = {}, {}, {}
    for name, rows in evaluated.groupby("model", sort=False):
        if (rows["status"] != "ok").any():
            failures[name] = str(rows.loc[rows["status"] != "ok", "reason"].iloc[0]).split(":")[0]
            continue
        scores[name] = _mean(rows[metric])
        costs[name] = _mean(rows["cost"])
    failed = f"; failed: {', '.join(f'{n} ({r})' for n, r in sorted(failures.items()))}" if failures else ""
    champion = champion_of({n: s for n, s in scores.items() if n != PRODUCTION}, rank)
    base = {"scores": scores, "costs": costs, "n_windows": n_windows, "champion": champion,
            "portfolio": portfolio}
    if champion is None:
        return Choice("fallback", BASELINE, f"every candidate failed{failed}", **base)
    pick, said = champion, f"champion {champion} {metric} {_fmt(scores[champion])} over {n_windows} windows"
    if portfolio is not None and portfolio != champion and portfolio in scores:
        versus = f"portfolio best {portfolio} {_fmt(scores[portfolio])}"
        if beats(evaluated, champion, portfolio, metric, margin):
            said += f"; beats {versus} by {margin:.0%} in every window"
        else:
            pick = portfolio
            said = f"{versus}; own champion {champion} {_fmt(scores[champion])} does not beat it by " \
                   f"{margin:.0%} in every window"
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


def beats(backtest: pd.DataFrame, own: str, other: str, metric: str, margin: float) -> bool:
    """True when ``own`` scores at most (1 - margin) x ``other``'s score in every window (both
    must have scored every window): a margin that holds across windows, not on average only."""
    table = backtest[backtest["model"].isin([own, other])].pivot_table(
        index="window", columns="model", values=metric, aggfunc="first")
    if table.isna().any().any() or own not in table or other not in table:
        return False
    return bool((table[own] <= (1 - margin) * table[other]).all())


def portfolio_best(scores: pd.DataFrame, rank: dict[str, int]) -> str | None:
    """The candidate with the lowest mean score over the segments where every candidate scored.

    ``scores``: one row per segment and candidate, columns ``segment_id``, ``model``, ``score``
    (non-finite = did not score)."""
    table = scores.pivot_table(index="segment_id", columns="model", values="score", aggfunc="first")
    table = table.replace([np.inf, -np.inf], np.nan).dropna()
    if table.empty:
        return None
    return champion_of(table.mean().to_dict(), rank)


def portfolios(per_window: pd.DataFrame, metric: str, rank: dict[str, int]) -> dict[str, str]:
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
