"""The champion choice and the promotion gate on hand-made backtest rows."""

from __future__ import annotations

import math

import pandas as pd

from jobs.models import MODELS
from jobs.core.names import PRODUCTION
from jobs.evaluation.scorecard import held_out_strategies
from jobs.evaluation.selection import Backtest, Rule, backtests, champion_of, choose, portfolio_best

RANK = {name: i for i, name in enumerate(MODELS)} | {PRODUCTION: list(MODELS).index("prophet")}


def rows(scores: dict[str, list[float]], failed: dict[str, str] | None = None) -> pd.DataFrame:
    """Backtest rows: one per candidate and window, mase = the given value, cost = 2 x mase."""
    out = []
    for model, values in scores.items():
        for window, value in enumerate(values, 1):
            out.append({"model": model, "window": window, "status": "ok", "reason": None,
                        "mase": value, "cost": 2 * value})
    for model, reason in (failed or {}).items():
        out.append({"model": model, "window": 1, "status": "failed", "reason": f"{reason}: boom",
                    "mase": math.nan, "cost": math.nan})
        out.append({"model": model, "window": 2, "status": "ok", "reason": None, "mase": 0.1, "cost": 0.2})
    return pd.DataFrame(out)


def decide(backtest: pd.DataFrame, *, production: str | None, tolerance: float, force: bool = False,
           portfolio: str | None = None, margin: float = 0.0):
    """The choice for one segment's rows under the portfolio rule (the per-segment rule without a
    portfolio)."""
    rule = Rule("portfolio" if portfolio else "per_segment", "mase", margin, RANK)
    scored = backtests(backtest.assign(segment_id="s"), "mase").get("s", Backtest())
    return choose(scored, rule=rule, best=portfolio, production=production, tolerance=tolerance, force=force)


def test_champion_is_the_lowest_mean_score_and_ties_go_to_the_simpler_model():
    assert champion_of({"prophet": 0.8, "ets": 0.9, "seasonal_naive": 1.0}, RANK) == "prophet"
    assert champion_of({"prophet": 0.9, "ets": 0.9, "seasonal_naive": 1.0}, RANK) == "ets"
    assert champion_of({"prophet": math.nan, "theta": math.nan}, RANK) == "theta"
    c = decide(rows({"seasonal_naive": [1.0, 1.2], "ets": [0.9, 0.7], "prophet": [0.6, 1.0]}),
               production=None, tolerance=0.0)
    # means: naive 1.1, ets 0.8, prophet 0.8 -> tie, ets is simpler
    assert (c.champion, c.decision, c.promoted, c.n_windows) == ("ets", "promoted", "ets", 2)
    assert c.scores == {"seasonal_naive": 1.1, "ets": 0.8, "prophet": 0.8}
    assert c.costs["ets"] == 1.6 and "no model in production" in c.reason


def test_gate_refuses_a_champion_worse_than_production_and_force_overrides_it():
    backtest = rows({"seasonal_naive": [1.0, 1.0], "theta": [0.9, 0.9], PRODUCTION: [0.7, 0.7]})
    refused = decide(backtest, production=PRODUCTION, tolerance=0.1)
    assert refused.champion == "theta"  # production is not a candidate for champion
    assert (refused.decision, refused.promoted) == ("refused", PRODUCTION)
    assert "worse than production 0.7" in refused.reason and "production kept" in refused.reason
    assert refused.production_score == 0.7
    forced = decide(backtest, production=PRODUCTION, tolerance=0.1, force=True)
    assert (forced.decision, forced.promoted) == ("forced", "theta") and "--force" in forced.reason
    # within the tolerance, the champion is promoted: 0.9 <= 0.85 x 1.1
    close = rows({"seasonal_naive": [1.0, 1.0], "theta": [0.9, 0.9], PRODUCTION: [0.85, 0.85]})
    assert decide(close, production=PRODUCTION, tolerance=0.1).decision == "promoted"
    assert decide(close, production=PRODUCTION, tolerance=0.0).decision == "refused"


def test_production_that_is_a_configured_candidate_is_kept_when_it_is_the_champion():
    backtest = rows({"seasonal_naive": [1.0], "ets": [0.5], "prophet": [0.6]})
    kept = decide(backtest, production="ets", tolerance=0.0)
    assert (kept.decision, kept.promoted) == ("kept", "ets")
    replaced = decide(backtest, production="prophet", tolerance=0.0)
    assert (replaced.decision, replaced.promoted, replaced.production_score) == ("promoted", "ets", 0.6)


def test_a_candidate_failing_any_window_cannot_win_and_the_reason_says_so():
    c = decide(rows({"seasonal_naive": [1.0, 1.0], "theta": [0.9, 0.95]}, failed={"prophet": "prophet_failed"}),
               production="prophet", tolerance=0.0)
    assert "prophet" not in c.scores and c.champion == "theta"
    assert c.decision == "promoted" and "production model failed the backtest" in c.reason
    assert "failed: prophet (prophet_failed)" in c.reason


def test_no_window_or_no_working_candidate_falls_back_to_seasonal_naive():
    skipped = pd.DataFrame([{"model": "prophet", "window": 1, "status": "skipped", "reason": "short",
                             "mase": math.nan, "cost": math.nan}])
    c = decide(skipped, production=None, tolerance=0.0)
    assert (c.decision, c.promoted) == ("fallback", "seasonal_naive") and "too little history" in c.reason
    c = decide(rows({}, failed={"prophet": "prophet_failed", "seasonal_naive": "odd"}),
               production=None, tolerance=0.0)
    assert (c.decision, c.promoted) == ("fallback", "seasonal_naive") and "every candidate failed" in c.reason


def test_portfolio_rule_keeps_the_portfolio_best_unless_the_champion_beats_it_in_every_window():
    # ets wins on average by 20 %, but not in window 2: the portfolio's combo_mean is the pick
    noisy = rows({"seasonal_naive": [1.0, 1.0], "combo_mean": [0.9, 0.6], "ets": [0.5, 0.7]})
    c = decide(noisy, production=None, tolerance=0.0, portfolio="combo_mean",
               margin=0.1)
    assert (c.champion, c.promoted, c.portfolio) == ("ets", "combo_mean", "combo_mean")
    assert "portfolio best combo_mean" in c.reason and "does not beat it" in c.reason
    # better in every window and by more than the margin: the segment keeps its own champion
    clear = rows({"seasonal_naive": [1.0, 1.0], "combo_mean": [0.9, 0.8], "ets": [0.5, 0.6]})
    own = decide(clear, production=None, tolerance=0.0, portfolio="combo_mean",
                 margin=0.1)
    assert own.promoted == "ets" and "beats portfolio best combo_mean" in own.reason
    # better by far on average and in every window, but by less than the margin in window 2
    uneven = rows({"seasonal_naive": [1.0, 1.0], "combo_mean": [0.9, 0.8], "ets": [0.5, 0.75]})
    assert decide(uneven, production=None, tolerance=0.0, portfolio="combo_mean",
                  margin=0.1).promoted == "combo_mean"
    # better in every window but by less than the margin: portfolio
    close = rows({"seasonal_naive": [1.0, 1.0], "combo_mean": [0.9, 0.8], "ets": [0.85, 0.78]})
    assert decide(close, production=None, tolerance=0.0, portfolio="combo_mean",
                  margin=0.1).promoted == "combo_mean"
    # per-segment rule (no portfolio): the champion
    assert decide(noisy, production=None, tolerance=0.0).promoted == "ets"


def test_portfolio_best_is_the_lowest_mean_over_segments_every_candidate_scored():
    scores = pd.DataFrame(
        [("a", "ets", 0.5), ("a", "theta", 0.6), ("b", "ets", 1.5), ("b", "theta", 0.9),
         ("c", "ets", 0.1), ("c", "theta", math.nan)],
        columns=["segment_id", "model", "score"],
    )
    assert portfolio_best(scores, RANK) == "theta"  # c is left out: theta did not score there
    assert portfolio_best(scores.iloc[:0], RANK) is None


def test_held_out_strategies_choose_on_earlier_windows_and_score_the_last():
    out = []
    # segment s1: ets best early, theta best in the last window; s2: theta best throughout
    table = {"s1": {"ets": [0.5, 0.5, 1.0], "theta": [0.9, 0.9, 0.4]},
             "s2": {"ets": [1.0, 1.0, 1.0], "theta": [0.5, 0.5, 0.5]}}
    for segment, models in table.items():
        for model, values in models.items():
            for window, value in enumerate(values, 1):
                out.append({"segment_id": segment, "demand_class": "smooth", "model": model, "window": window,
                            "mase": value, "mae": value, "n_test": 10, "actual_total": 10.0, "bias": 0.1,
                            "coverage": 0.8, "seconds": 1.0})
    result = held_out_strategies(pd.DataFrame(out), metric="mase", rank=RANK, margin=0.1)
    assert result.loc["ets", "mean_mase"] == 1.0 and result.loc["theta", "mean_mase"] == 0.45
    # per segment: s1 picks ets (0.5 early) -> 1.0 last; s2 theta -> 0.5
    assert result.loc["per-segment choice", "mean_mase"] == 0.75
    # portfolio (theta: mean 0.7 vs ets 0.75 early); s1's ets beats it by > 10 % in every window
    assert result.loc["portfolio rule", "mean_mase"] == 0.75
    assert result.loc["theta", "wape"] == 0.45 and result.loc["theta", "bias"] == 0.1
    assert result.loc["per-segment choice", "seconds"] == 4.0 and result.loc["theta", "seconds"] == 2.0
    assert result.attrs["portfolio"] == {"smooth": "theta"}


def test_evaluation_config_rejects_unknown_rules_and_misplaced_families(tmp_path):
    import pytest

    from jobs.common.config import DEFAULT_CONFIG, load_config
    from jobs.core.errors import ConfigError
    from tests.conftest import write_config

    for bad, message in (
        ({"rule": "best"}, "evaluation.rule = 'best': Input should be 'ensemble', 'portfolio' or 'per_segment'"),
        ({"margin": -0.1}, "evaluation.margin = -0.1: Input should be greater than or equal to 0"),
        ({"intermittent_candidates": ["theta"]}, "evaluation.intermittent_candidates = .*must be drawn from"),
        ({"candidates": ["theta"]}, "include seasonal_naive"),
    ):
        with pytest.raises(ConfigError, match=message):
            write_config(tmp_path / "bad", {"evaluation": bad})
    # every bundled config loads: another dataset is another file
    walmart = load_config(DEFAULT_CONFIG.parent / "walmart_weekly.yaml")
    assert walmart.dataset.frequency == "weekly" and walmart.dataset.segment_keys == ("store", "item_id")
    assert walmart.evaluation.rule == "portfolio" and "ensemble" in walmart.evaluation.candidates
    pbs = load_config(DEFAULT_CONFIG.parent / "pbs_monthly.yaml")
    assert pbs.dataset.frequency == "monthly" and pbs.dataset.missing_periods == "not_reported"
    with pytest.raises(ConfigError, match="rule ensemble needs ensemble among"):
        write_config(tmp_path / "bad", {"evaluation": {"rule": "ensemble", "candidates": ["seasonal_naive"]}})
    with pytest.raises(ConfigError, match="dataset.missing_periods = 'zero': Input should be 'no_demand' or 'not_reported'"):
        write_config(tmp_path / "bad", {"dataset": {"missing_periods": "zero"}})
    with pytest.raises(ConfigError, match="features.inactive_policy = 'drop': Input should be 'zero' or 'baseline'"):
        write_config(tmp_path / "bad", {"features": {"inactive_policy": "drop"}})


def test_held_out_choices_skip_earlier_windows_that_overlap_the_last_one():
    # ets looks best on window 1, theta on window 2; with horizon > step, window 2 overlaps the
    # last window (gap 2), so an honest choice sees window 1 only
    out = [{"segment_id": "s1", "demand_class": "smooth", "model": model, "window": window, "mase": value,
            "mae": value, "n_test": 10, "actual_total": 10.0, "bias": 0.0, "coverage": 0.8, "seconds": 1.0}
           for model, values in {"ets": [0.5, 2.0, 1.0], "theta": [0.9, 0.3, 0.4]}.items()
           for window, value in enumerate(values, 1)]
    leaky = held_out_strategies(pd.DataFrame(out), metric="mase", rank=RANK, margin=0.1, gap=1)
    honest = held_out_strategies(pd.DataFrame(out), metric="mase", rank=RANK, margin=0.1, gap=2)
    assert leaky.loc["per-segment choice", "mean_mase"] == 0.4
    assert honest.loc["per-segment choice", "mean_mase"] == 1.0
    assert held_out_strategies(pd.DataFrame(out), metric="mase", rank=RANK, margin=0.1, gap=3).empty
