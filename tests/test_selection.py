"""The champion choice and the promotion gate on hand-made backtest rows."""

from __future__ import annotations

import math

import pandas as pd

from jobs.models import MODELS
from jobs.models.selection import PRODUCTION, champion_of, choose

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


def test_champion_is_the_lowest_mean_score_and_ties_go_to_the_simpler_model():
    assert champion_of({"prophet": 0.8, "ets": 0.9, "seasonal_naive": 1.0}, RANK) == "prophet"
    assert champion_of({"prophet": 0.9, "ets": 0.9, "seasonal_naive": 1.0}, RANK) == "ets"
    assert champion_of({"prophet": math.nan, "theta": math.nan}, RANK) == "theta"
    c = choose(rows({"seasonal_naive": [1.0, 1.2], "ets": [0.9, 0.7], "prophet": [0.6, 1.0]}),
               rank=RANK, production=None, metric="mase", tolerance=0.0)
    # means: naive 1.1, ets 0.8, prophet 0.8 -> tie, ets is simpler
    assert (c.champion, c.decision, c.promoted, c.n_windows) == ("ets", "promoted", "ets", 2)
    assert c.scores == {"seasonal_naive": 1.1, "ets": 0.8, "prophet": 0.8}
    assert c.costs["ets"] == 1.6 and "no model in production" in c.reason


def test_gate_refuses_a_champion_worse_than_production_and_force_overrides_it():
    backtest = rows({"seasonal_naive": [1.0, 1.0], "theta": [0.9, 0.9], PRODUCTION: [0.7, 0.7]})
    refused = choose(backtest, rank=RANK, production=PRODUCTION, metric="mase", tolerance=0.1)
    assert refused.champion == "theta"  # production is not a candidate for champion
    assert (refused.decision, refused.promoted) == ("refused", PRODUCTION)
    assert "worse than production 0.7" in refused.reason and "production kept" in refused.reason
    assert refused.production_score == 0.7
    forced = choose(backtest, rank=RANK, production=PRODUCTION, metric="mase", tolerance=0.1, force=True)
    assert (forced.decision, forced.promoted) == ("forced", "theta") and "--force" in forced.reason
    # within the tolerance, the champion is promoted: 0.9 <= 0.85 x 1.1
    close = rows({"seasonal_naive": [1.0, 1.0], "theta": [0.9, 0.9], PRODUCTION: [0.85, 0.85]})
    assert choose(close, rank=RANK, production=PRODUCTION, metric="mase", tolerance=0.1).decision == "promoted"
    assert choose(close, rank=RANK, production=PRODUCTION, metric="mase", tolerance=0.0).decision == "refused"


def test_production_that_is_a_configured_candidate_is_kept_when_it_is_the_champion():
    backtest = rows({"seasonal_naive": [1.0], "ets": [0.5], "prophet": [0.6]})
    kept = choose(backtest, rank=RANK, production="ets", metric="mase", tolerance=0.0)
    assert (kept.decision, kept.promoted) == ("kept", "ets")
    replaced = choose(backtest, rank=RANK, production="prophet", metric="mase", tolerance=0.0)
    assert (replaced.decision, replaced.promoted, replaced.production_score) == ("promoted", "ets", 0.6)


def test_a_candidate_failing_any_window_cannot_win_and_the_reason_says_so():
    c = choose(rows({"seasonal_naive": [1.0, 1.0], "theta": [0.9, 0.95]}, failed={"prophet": "prophet_failed"}),
               rank=RANK, production="prophet", metric="mase", tolerance=0.0)
    assert "prophet" not in c.scores and c.champion == "theta"
    assert c.decision == "promoted" and "production model failed the backtest" in c.reason
    assert "failed: prophet (prophet_failed)" in c.reason


def test_no_window_or_no_working_candidate_falls_back_to_seasonal_naive():
    skipped = pd.DataFrame([{"model": "prophet", "window": 1, "status": "skipped", "reason": "short",
                             "mase": math.nan, "cost": math.nan}])
    c = choose(skipped, rank=RANK, production=None, metric="mase", tolerance=0.0)
    assert (c.decision, c.promoted) == ("fallback", "seasonal_naive") and "too little history" in c.reason
    c = choose(rows({}, failed={"prophet": "prophet_failed", "seasonal_naive": "odd"}),
               rank=RANK, production=None, metric="mase", tolerance=0.0)
    assert (c.decision, c.promoted) == ("fallback", "seasonal_naive") and "every candidate failed" in c.reason
