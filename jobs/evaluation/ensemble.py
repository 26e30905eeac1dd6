"""Ensemble selection per demand class (Caruana, Niculescu-Mizil, Crew and Ksikes, 2004):
greedy forward selection with replacement over the candidates' backtest forecasts.

Start from an empty ensemble; in each round add the member (again, if it is already in) whose
addition gives the lowest loss of the equally weighted mean of the selected members' forecasts,
pooled over every segment of the class; the weights are the members' shares of the best round.
Learning across all segments of a class instead of per segment is what makes the weights stable:
a segment has only a few noisy windows. A member that did not forecast a period (it failed, or
it is not a candidate of that segment) is left out there and the others' weights renormalised.

The windows are few, so one selection still overfits them: it puts most of the weight on the
one or two members that happened to lead there. The weights are therefore bagged over members,
the third of the paper's remedies for overfitting ("bagged ensemble selection"): the selection
runs on ``BAGS`` random draws of half the members, and the weights are the mean of the bags'.
The draws are fixed by a seed, so a rerun learns the same weights.

The losses are the configured metric's, pooled per segment and window as the backtest metrics
are: ``mase`` (MAE / the window's seasonal-naive scale), ``mae``, ``rmse``, ``wape``, ``smape``,
``cost``; ``pinball`` selects on MASE (the ensemble's point forecast is what is selected).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

ROUNDS = 25
BAGS = 20  # draws of members (Caruana et al., 2004: 20 bags of half the models)
BAG_SHARE = 0.5


def _loss_of(actual: np.ndarray, groups: np.ndarray, n_groups: int, scale: np.ndarray, metric: str,
             cost_under: float, cost_over: float) -> Callable[[np.ndarray], float]:
    """The loss of a forecast of ``actual``: the mean over (segment, window) groups of the metric
    (NaN-free groups). What does not depend on the forecast is counted once here, not per call."""
    count = np.bincount(groups, minlength=n_groups)
    per_count = np.maximum(count, 1)
    total = np.bincount(groups, np.abs(actual), n_groups)

    def loss(forecast: np.ndarray) -> float:
        err = forecast - actual
        if metric == "rmse":
            per = np.sqrt(np.bincount(groups, err**2, n_groups) / per_count)
        elif metric == "wape":
            per = np.divide(np.bincount(groups, np.abs(err), n_groups), total, out=np.full(n_groups, np.nan),
                            where=total > 0)
        elif metric == "smape":
            denom = np.abs(actual) + np.abs(forecast)
            terms = np.divide(2 * np.abs(err), denom, out=np.zeros_like(err), where=denom > 0)
            per = np.bincount(groups, terms, n_groups) / per_count
        elif metric == "cost":
            terms = cost_under * np.maximum(-err, 0) + cost_over * np.maximum(err, 0)
            per = np.bincount(groups, terms, n_groups) / per_count
        else:
            per = np.bincount(groups, np.abs(err), n_groups) / per_count
            if metric != "mae":  # mase (and pinball: selected on MASE)
                per = per / scale
        per = per[np.isfinite(per) & (count > 0)]
        return float(per.mean()) if per.size else np.nan

    return loss


def greedy_weights(forecasts: pd.DataFrame, members: list[str], *, metric: str, cost_under: float = 1.0,
                   cost_over: float = 1.0, rounds: int = ROUNDS, bags: int = BAGS,
                   share: float = BAG_SHARE) -> tuple[dict[str, float], float]:
    """Member -> weight (summing to 1), and the loss of the weighted ensemble, learned on
    ``forecasts`` (rows ``segment_id``, ``window``, ``ds``, ``model``, ``actual``, ``yhat``,
    ``scale``): the mean of the greedy selection's weights over ``bags`` draws of ``share`` of the
    members (at least two; ``bags=1, share=1``: one selection over all of them). Only the periods
    every member forecast are learned on; with none, or no finite loss, the weights are equal (the
    mean of the members) and the loss NaN. Ties go to the member listed first (list the simpler
    first)."""
    rows = forecasts[forecasts["model"].isin(members)]
    table = rows.pivot_table(index=["segment_id", "window", "ds"], columns="model", values="yhat", aggfunc="first")
    present = [m for m in members if m in table.columns]
    table = table[present].dropna()
    equal = {m: 1 / len(members) for m in members}
    if table.empty or not present:
        return equal, np.nan
    facts = rows.drop_duplicates(["segment_id", "window", "ds"]).set_index(["segment_id", "window", "ds"])
    facts = facts.loc[table.index]
    group_keys = pd.MultiIndex.from_arrays([table.index.get_level_values(0), table.index.get_level_values(1)])
    groups, uniques = pd.factorize(group_keys)
    scale = facts.groupby(group_keys.to_flat_index(), sort=False)["scale"].first().reindex(
        uniques.to_flat_index()).to_numpy(dtype=float)
    loss = _loss_of(facts["actual"].to_numpy(dtype=float), groups, len(uniques), scale, metric, cost_under,
                    cost_over)
    matrix = table.to_numpy(dtype=float)
    size = min(len(present), max(2, round(share * len(present))))
    draws = np.random.default_rng(0)
    weights, learned = np.zeros(len(present)), 0
    for _ in range(bags):
        columns = np.sort(draws.choice(len(present), size=size, replace=False))
        counts = _greedy(matrix[:, columns], loss, rounds)
        if counts is not None:
            weights[columns] += counts / counts.sum()
            learned += 1
    if not learned:
        return equal, np.nan
    weights /= learned
    out = dict(zip(present, weights.tolist()))
    return {m: out.get(m, 0.0) for m in members}, loss(matrix @ weights)


def _greedy(matrix: np.ndarray, loss: Callable[[np.ndarray], float], rounds: int) -> np.ndarray | None:
    """How often each column is selected in the best round of greedy forward selection with
    replacement (None when no selection has a finite loss)."""
    counts = np.zeros(matrix.shape[1])
    total = np.zeros(matrix.shape[0])
    best_loss, best_counts = np.inf, None
    for _ in range(rounds):
        n = counts.sum() + 1
        losses = [loss((total + matrix[:, j]) / n) for j in range(matrix.shape[1])]
        finite = [(value, j) for j, value in enumerate(losses) if np.isfinite(value)]
        if not finite:
            break
        value, j = min(finite)
        counts[j] += 1
        total += matrix[:, j]
        if value < best_loss - 1e-12:
            best_loss, best_counts = value, counts.copy()
    return best_counts


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
