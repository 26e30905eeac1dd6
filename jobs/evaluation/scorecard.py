"""The scorecard of an evaluation: how each family and each way of choosing did on the backtests.

:func:`summarise` is the in-sample view (every window, choices made on the same windows: it
flatters the choice); :func:`held_out_strategies` the honest one (the last window, every choice
made only on windows that ended by its cutoff). :func:`print_scorecard` prints both. Undefined
figures (a pooled ratio over zero actuals) are NaN, never an exception.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from jobs.core.names import BASELINE, COMBINATIONS, PRODUCTION
from jobs.evaluation.selection import Rule, champion_of


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is zero (an undefined pooled ratio)."""
    return float(numerator) / float(denominator) if denominator else math.nan


def summarise(backtest: pd.DataFrame, selection: pd.DataFrame, rank: dict[str, int]) -> dict[str, Any]:
    """Per family: segments, WAPE (pooled), mean MASE, cost, share of wins; overall value added.

    Every figure is over the segments where each of their candidates forecast every window, so
    the families are compared on the same series (the methods for intermittent demand: on the
    intermittent ones among them).

    Args:
        backtest: the run's backtest rows (``segment_id``, ``model``, ``window``, ``status``,
            ``mae``, ``n_test``, ``actual_total``, ``mase``, ``cost``).
        selection: the run's choices (``segment_id``, ``champion``, ``promoted_model``, ``decision``).
        rank: candidate name -> simplicity, for the order of the rows.
    """
    judged = backtest[(backtest["status"] != "skipped") & (backtest["model"] != PRODUCTION)]
    bad = (judged["status"] != "ok").groupby(judged["segment_id"]).sum()
    complete = set(bad.index[bad == 0])
    ok = backtest[(backtest["status"] == "ok") & backtest["segment_id"].isin(complete)]
    per_segment = (
        ok.assign(abs_error=ok["mae"] * ok["n_test"])
        .groupby(["model", "segment_id"], as_index=False)
        .agg(abs_error=("abs_error", "sum"), actual=("actual_total", "sum"), mase=("mase", "mean"),
             cost=("cost", "mean"))
    )
    chosen = selection[selection["segment_id"].isin(complete)]
    wins = chosen["champion"].value_counts()

    def pooled(rows: pd.DataFrame) -> dict[str, Any]:
        return {"segments": len(rows), "wape": _ratio(rows["abs_error"].sum(), rows["actual"].sum()),
                "mase": rows["mase"].mean() if len(rows) else None,
                "cost": rows["cost"].mean() if len(rows) else None}

    families = pd.DataFrame(
        [{"model": model, **pooled(rows), "wins": int(wins.get(model, 0))}
         for model, rows in per_segment[per_segment["model"] != PRODUCTION].groupby("model")],
        columns=["model", "segments", "wape", "mase", "cost", "wins"],
    )
    promoted = pooled(chosen.merge(per_segment.rename(columns={"model": "promoted_model"}),
                                   on=["segment_id", "promoted_model"]))
    if len(families):
        families["win_share"] = families["wins"] / max(int(families["wins"].sum()), 1)
        families["rank"] = families["model"].map(rank)
        families = families.sort_values("rank").drop(columns="rank").reset_index(drop=True)
    naive = families[families["model"] == BASELINE]
    overall: dict[str, Any] = {"chosen": promoted}
    if len(naive) and promoted["mase"] is not None:
        n = naive.iloc[0]
        overall["value_added_mase"] = 1 - _ratio(promoted["mase"], n["mase"])
        overall["value_added_wape"] = 1 - _ratio(promoted["wape"], n["wape"])
        overall["value_added_cost"] = 1 - _ratio(promoted["cost"], n["cost"])
    decisions = {str(k): int(v) for k, v in selection["decision"].value_counts().items()}
    return {"families": families, "overall": overall, "decisions": decisions}


def print_scorecard(summary: dict[str, Any], run_date: dt.date, metric: str) -> None:
    """The in-sample table, the held-out table (``summary["overall"]["held_out"]``), value added
    and the gate's decisions, as the evaluate job prints them."""
    families, overall = summary["families"], summary["overall"]
    chosen = overall["chosen"]
    print(f"\nevaluate {run_date}: backtest over {chosen['segments'] or 0:,} segments where each of their "
          f"candidates forecast every window (choice on {metric})")
    print(f"  {'model':<16}{'segments':>9}{'WAPE':>8}{'MASE':>8}{'cost':>9}{'wins':>7}")
    for r in families.itertuples():
        print(f"  {r.model:<16}{r.segments:>9,}{r.wape:>8.3f}{r.mase:>8.3f}{r.cost:>9.3f}{r.win_share:>7.0%}")
    if chosen["segments"]:
        print(f"  {'chosen':<16}{chosen['segments']:>9,}{chosen['wape']:>8.3f}{chosen['mase']:>8.3f}"
              f"{chosen['cost']:>9.3f}   (picked and scored on the same windows: flattering)")
    held = overall.get("held_out")
    if held is not None and len(held):
        print(f"  held out: the last window alone, every choice made on the earlier windows that ended by its cutoff "
              f"({held.attrs['segments']:,} segments that every configured candidate forecast)")
        print(format_strategies(held, indent="  "))
    if "value_added_mase" in overall:
        print(f"  in-sample value added over seasonal naive: MASE {overall['value_added_mase']:+.1%}, "
              f"WAPE {overall['value_added_wape']:+.1%}, cost {overall['value_added_cost']:+.1%}")
    print("  decisions: " + ", ".join(f"{d} {n:,}" for d, n in sorted(summary["decisions"].items())))


# The row of :func:`held_out_strategies` that each rule's choices make.
RULE_ROWS = {"per_segment": "per-segment choice", "portfolio": "portfolio rule", "ensemble": "ensemble rule"}


def strategy_of(rule: str) -> str:
    """The row of :func:`held_out_strategies` that a configured ``rule`` stands for."""
    return RULE_ROWS[rule]


def held_out_strategies(per_window: pd.DataFrame, *, metric: str, rank: dict[str, int], margin: float,
                        gap: int = 1, rule: str = "portfolio") -> pd.DataFrame:
    """How each strategy does on the last window when every choice is made on the windows before
    it whose test periods ended by its cutoff: windows up to ``last - gap``, where ``gap`` =
    ceil(horizon / step) (overlapping windows would show the choice some of the actuals it is
    judged on).

    ``per_window``: the ok backtest rows (``segment_id``, ``demand_class``, ``model``, ``window``,
    the metrics, ``mae``, ``n_test``, ``actual_total``, ``seconds``). Strategies: every single
    candidate, ``per-segment, families`` (each segment's best single family on the earlier
    windows: plain selection), and the choices of the rules (:class:`Rule`, the same the real
    choice makes, its class strategies also from the earlier windows): ``per-segment choice`` (the
    champion among every candidate, the combinations included), ``portfolio rule`` and, when it is
    the configured ``rule``, ``ensemble rule``. Scored on the segments where every candidate scored
    every window. Columns: segments, mean and median MASE, WAPE (pooled), bias (pooled: sum of
    errors / sum of actuals), coverage (mean), seconds (fit time on the last window of what the
    strategy needs: a choice needs every candidate), and ``rule_mase``: the configured ``rule``'s
    mean MASE on the same segments (a family made for intermittent demand covers only those
    segments).
    """
    if per_window.empty or per_window["window"].max() <= gap:
        return pd.DataFrame()
    last = per_window["window"].max()
    full = per_window.groupby(["segment_id", "model"])["window"].transform("nunique") == last
    present = per_window.groupby("model")["segment_id"].nunique()
    common = set(present.index[present == per_window["segment_id"].nunique()])  # every segment's
    rows = per_window[full]
    models_of = rows.groupby("segment_id")["model"].agg(set)
    complete = models_of.index[models_of.map(common.issubset)]
    rows = rows[rows["segment_id"].isin(complete)]
    earlier, final = rows[rows["window"] <= last - gap], rows[rows["window"] == last]
    if earlier.empty:
        return pd.DataFrame()
    past = earlier.groupby(["segment_id", "model"])[metric].mean().rename("score").reset_index()
    classes = rows.groupby("segment_id")["demand_class"].first()
    rules = {name: Rule(name, metric, margin, rank) for name in dict.fromkeys(("per_segment", "portfolio", rule))}
    best = {name: r.best(earlier) for name, r in rules.items()}
    windows_of: dict[str, dict[str, dict[int, float]]] = {}
    for segment, model, window, value in zip(earlier["segment_id"], earlier["model"], earlier["window"],
                                             earlier[metric]):
        windows_of.setdefault(segment, {}).setdefault(model, {})[int(window)] = float(value)
    families_only: dict[str, str] = {}
    picks_of: dict[str, dict[str, str]] = {name: {} for name in rules}
    for segment, scores in past.groupby("segment_id"):
        own_scores = dict(zip(scores["model"], scores["score"]))
        own = champion_of(own_scores, rank)
        fitted = scores[~scores["model"].isin(COMBINATIONS)]
        families_only[segment] = champion_of(dict(zip(fitted["model"], fitted["score"])), rank)
        for name, r in rules.items():
            picks_of[name][segment] = r.pick(windows_of[segment], own_scores, own, best[name].get(classes[segment]))[0]
    picks = {name: final[final["model"] == name] for name in sorted(final["model"].unique(), key=rank.get)}
    every = final[~final["model"].isin(COMBINATIONS)].groupby("segment_id")["seconds"].sum()
    strategies = [("per-segment, families", families_only)] + [(RULE_ROWS[n], picks_of[n]) for n in rules]
    for name, chosen in strategies:
        wanted = pd.Series(chosen).rename("model").rename_axis("segment_id").reset_index()
        picks[name] = final.merge(wanted).assign(seconds=lambda f: f["segment_id"].map(every))
    configured = strategy_of(rule)
    by_rule = picks[configured].set_index("segment_id")["mase"] if configured in picks else pd.Series(dtype=float)
    out = pd.DataFrame(
        {name: {"segments": f["segment_id"].nunique(), "mean_mase": f["mase"].mean(),
                "median_mase": f["mase"].median(),
                "wape": _ratio((f["mae"] * f["n_test"]).sum(), f["actual_total"].sum()),
                "bias": _ratio((f["bias"] * f["n_test"]).sum(), f["actual_total"].sum()),
                "coverage": f["coverage"].mean(), "seconds": f["seconds"].sum(),
                "rule_mase": by_rule[by_rule.index.isin(f["segment_id"])].mean()}
         for name, f in picks.items()}
    ).T
    out.attrs["segments"] = len(complete)
    out.attrs["portfolio"] = best["portfolio"]
    return out


def format_strategies(table: pd.DataFrame, indent: str = "") -> str:
    """The strategies table as fixed-width text."""
    width = max([22, *(len(str(name)) + 1 for name in table.index)])
    lines = [f"{indent}{'strategy':<{width}}{'segments':>9}{'MASE':>8}{'median':>8}{'WAPE':>8}{'bias':>8}"
             f"{'cover':>7}{'seconds':>9}{'rule here':>11}"]
    for name, r in table.iterrows():
        lines.append(f"{indent}{name:<{width}}{int(r.segments):>9,}{r.mean_mase:>8.3f}{r.median_mase:>8.3f}"
                     f"{r.wape:>8.3f}{r.bias:>+8.3f}{r.coverage:>7.0%}{r.seconds:>9.1f}{r.rule_mase:>11.3f}")
    return "\n".join(lines)
