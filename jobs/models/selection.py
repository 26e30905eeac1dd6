"""Choosing a segment's model from its backtest, and the promotion gate (plain pandas, no Spark).

The champion is the candidate with the lowest mean score over the backtest windows, among the
candidates that forecast every window; ties go to the simpler family. The gate then compares it
with the model in production on the same windows: the champion is promoted only when its score
is at most production's score x (1 + tolerance). ``force`` promotes anyway and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PRODUCTION = "production"  # candidate name of a production model whose settings differ from config
BASELINE = "seasonal_naive"


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
) -> Choice:
    """Champion and gate decision for one segment.

    Args:
        backtest: the segment's backtest rows (``model``, ``window``, ``status``, ``reason``,
            the metric columns, ``cost``).
        rank: candidate name -> simplicity (0 = simplest); ``production`` ranks as its family.
        production: the candidate name that stands for the production model (a configured
            family when its settings are unchanged, else :data:`PRODUCTION`), or None.
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
    base = {"scores": scores, "costs": costs, "n_windows": n_windows, "champion": champion}
    if champion is None:
        return Choice("fallback", BASELINE, f"every candidate failed{failed}", **base)
    said = f"champion {champion} {metric} {_fmt(scores[champion])} over {n_windows} windows{failed}"
    if production is None:
        return Choice("promoted", champion, f"{said}; no model in production", **base)
    if production not in scores:
        return Choice("promoted", champion, f"{said}; production model failed the backtest", **base)
    prod_score = scores[production]
    base["production_score"] = prod_score
    if production == champion:
        return Choice("kept", champion, f"{said}; production is the champion", **base)
    versus = f"production {_fmt(prod_score)}, tolerance {tolerance:.0%}"
    limit = prod_score * (1 + tolerance)
    if math.isfinite(scores[champion]) and (not math.isfinite(prod_score) or scores[champion] <= limit):
        return Choice("promoted", champion, f"{said}; not worse than {versus}", **base)
    if force:
        return Choice("forced", champion, f"{said}; worse than {versus}; promoted by --force", **base)
    return Choice("refused", production, f"{said}; worse than {versus}: production kept", **base)
