"""Ensemble selection per demand class (Caruana, Niculescu-Mizil, Crew and Ksikes, 2004):
greedy forward selection with replacement over the candidates' backtest forecasts.

Start from an empty ensemble; in each round add the member (again, if it is already in) whose
addition gives the lowest loss of the equally weighted mean of the selected members' forecasts,
pooled over every segment of the class; the weights are the members' shares of the best round.
Learning across all segments of a class instead of per segment is what makes the weights stable:
a segment has only a few noisy windows. A member that did not forecast a period (it failed, or
it is not a candidate of that segment) is left out there and the others' weights renormalised.

The losses are the configured metric's, pooled per segment and window as the backtest metrics
are: ``mase`` (MAE / the window's seasonal-naive scale), ``mae``, ``rmse``, ``wape``, ``smape``,
``cost``; ``pinball`` selects on MASE (the ensemble's point forecast is what is selected).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROUNDS = 25


def _loss(actual: np.ndarray, forecast: np.ndarray, groups: np.ndarray, n_groups: int, scale: np.ndarray,
          metric: str, cost_under: float, cost_over: float) -> float:
    """The mean over (segment, window) groups of the metric of ``forecast`` (NaN-free groups)."""
    err = forecast - actual
    count = np.bincount(groups, minlength=n_groups)
    if metric == "rmse":
        per = np.sqrt(np.bincount(groups, err**2, n_groups) / np.maximum(count, 1))
    elif metric == "wape":
        total = np.bincount(groups, np.abs(actual), n_groups)
        per = np.divide(np.bincount(groups, np.abs(err), n_groups), total, out=np.full(n_groups, np.nan),
                        where=total > 0)
    elif metric == "smape":
        denom = np.abs(actual) + np.abs(forecast)
        terms = np.divide(2 * np.abs(err), denom, out=np.zeros_like(err), where=denom > 0)
        per = np.bincount(groups, terms, n_groups) / np.maximum(count, 1)
    elif metric == "cost":
        terms = cost_under * np.maximum(-err, 0) + cost_over * np.maximum(err, 0)
        per = np.bincount(groups, terms, n_groups) / np.maximum(count, 1)
    else:
        per = np.bincount(groups, np.abs(err), n_groups) / np.maximum(count, 1)
        if metric != "mae":  # mase (and pinball: selected on MASE)
            per = per / scale
    per = per[np.isfinite(per) & (count > 0)]
    return float(per.mean()) if per.size else np.nan


def greedy_weights(forecasts: pd.DataFrame, members: list[str], *, metric: str, cost_under: float = 1.0,
                   cost_over: float = 1.0, rounds: int = ROUNDS) -> tuple[dict[str, float], float]:
    """Member -> weight (summing to 1), and the loss of the weighted ensemble, learned on
    ``forecasts`` (rows ``segment_id``, ``window``, ``ds``, ``model``, ``actual``, ``yhat``,
    ``scale``). Only the periods every member forecast are learned on; with none, or no finite
    loss, the weights are equal (the mean of the members) and the loss NaN. Ties go to the member
    listed first (list the simpler first)."""
    rows = forecasts[forecasts["model"].isin(members)]
    table = rows.pivot_table(index=["segment_id", "window", "ds"], columns="model", values="yhat", aggfunc="first")
    present = [m for m in members if m in table.columns]
    table = table[present].dropna()
    equal = {m: 1 / len(members) for m in members}
    if table.empty or not present:
        return equal, np.nan
    facts = rows.drop_duplicates(["segment_id", "window", "ds"]).set_index(["segment_id", "window", "ds"])
    facts = facts.loc[table.index]
    actual = facts["actual"].to_numpy(dtype=float)
    group_keys = pd.MultiIndex.from_arrays([table.index.get_level_values(0), table.index.get_level_values(1)])
    groups, uniques = pd.factorize(group_keys)
    n_groups = len(uniques)
    scale = facts.groupby(group_keys.to_flat_index(), sort=False)["scale"].first().reindex(
        uniques.to_flat_index()).to_numpy(dtype=float)
    matrix = table.to_numpy(dtype=float)
    counts = np.zeros(len(present))
    total = np.zeros(len(actual))
    best_loss, best_counts = np.inf, None
    for _ in range(rounds):
        n = counts.sum() + 1
        losses = [_loss(actual, (total + matrix[:, j]) / n, groups, n_groups, scale, metric, cost_under, cost_over)
                  for j in range(len(present))]
        finite = [(loss, j) for j, loss in enumerate(losses) if np.isfinite(loss)]
        if not finite:
            break
        loss, j = min(finite)
        counts[j] += 1
        total += matrix[:, j]
        if loss < best_loss - 1e-12:
            best_loss, best_counts = loss, counts.copy()
    if best_counts is None:
        return equal, np.nan
    weights = {m: float(c / best_counts.sum()) for m, c in zip(present, best_counts)}
    return {m: weights.get(m, 0.0) for m in members}, float(best_loss)


def learn_ensembles(
    forecasts: pd.DataFrame, members: dict[str, list[str]], *, metric: str, gap: int, cost_under: float = 1.0,
    cost_over: float = 1.0,
) -> tuple[dict[tuple[str, int], tuple[float, ...]], dict[str, tuple[float, ...]], dict[tuple[str, int], str]]:
    """Each demand class's weights, learned the honest way for the backtest and on everything for
    training.

    Args:
        forecasts: the members' backtest forecasts (``segment_id``, ``demand_class``, ``window``,
            ``ds``, ``model``, ``actual``, ``yhat``, ``scale``).
        members: demand class -> its members, simplest first.
        gap: windows back to the latest one whose test periods ended by a window's cutoff.

    Returns:
        (class, window) -> the weights window's ensemble uses, learned only on the windows that
        ended by its cutoff (equal weights before any); class -> the weights learned on every
        window (what train fits); (class, window) -> in words, what the window's weights are.
    """
    by_window, final, why = {}, {}, {}
    windows = sorted(forecasts["window"].unique())
    for demand_class, names in members.items():
        rows = forecasts[forecasts["demand_class"] == demand_class]
        for window in windows:
            earlier = rows[rows["window"] <= window - gap]
            if earlier.empty:
                by_window[demand_class, window] = tuple(1 / len(names) for _ in names)
                why[demand_class, window] = "equal weights: no earlier window to learn on"
                continue
            weights, loss = greedy_weights(earlier, names, metric=metric, cost_under=cost_under, cost_over=cost_over)
            by_window[demand_class, window] = tuple(weights[n] for n in names)
            span = sorted(earlier["window"].unique())
            why[demand_class, window] = f"weights learned on windows {span[0]}-{span[-1]}: " + describe(weights)
        if not rows.empty:
            weights, _ = greedy_weights(rows, names, metric=metric, cost_under=cost_under, cost_over=cost_over)
            final[demand_class] = tuple(weights[n] for n in names)
    return by_window, final, why


def describe(weights: dict[str, float]) -> str:
    """``theta 0.40, ets 0.60`` (members with weight zero left out)."""
    return ", ".join(f"{n} {w:.2f}" for n, w in weights.items() if w > 0)
