"""Racing the candidates on a sample (pandas, real model fits): judging again without a family
derives the combinations from the others with no fit, a family the rule needs is kept, one it can
do without is dropped, and every decision is the one its recorded figures say."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from jobs.evaluation.candidates import Candidates, FitSettings, JudgeSettings
from jobs.evaluation.fitting import candidate_specs, window_forecasts
from jobs.evaluation.judge import judge
from jobs.evaluation.race import RaceSettings, kept_rows, race, raced, rule_score, sample_shares

FAMILIES = ["seasonal_naive", "dot", "theta"]
CANDIDATES = Candidates(
    specs=candidate_specs(FAMILIES, frequency="daily", horizon=7, interval_width=0.8, prophet={},
                          holidays_country=None, regressors=()),
    smooth=tuple(FAMILIES), intermittent=(), combinations=("combo_median", "pool", "ensemble"), margin=0.1)
FIT = FitSettings(regressors=(), frequency="daily", horizon=7, windows=3, step=7, candidates=CANDIDATES)
JUDGE = JudgeSettings(keys=("item_id",), metric="mase", margin=0.1, tolerance=0.0, rule="portfolio", cost_under=1.0,
                      cost_over=1.0, interval_width=0.8, gap=1, run_date=dt.date(2011, 6, 1), run_id="race-test")
ETS = candidate_specs(["ets"], frequency="daily", horizon=7, interval_width=0.8, prophet={},
                      holidays_country=None, regressors=())["ets"]
RACE = RaceSettings(enabled=True, sample_segments=3, tolerance=0.0, min_cost_share=0.05)


def trending(n_segments: int, seed: int = 0) -> pd.DataFrame:
    """Daily series with a strong trend and noise: seasonal naive lags the trend, Theta follows it."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2011-01-03", periods=84, freq="D")
    frames = []
    for i in range(n_segments):
        y = 20 + (1 + i / 4) * np.arange(len(ds)) + rng.normal(0, 3, len(ds))
        frames.append(pd.DataFrame({"item_id": f"S{i}", "segment_id": f"S{i}", "ds": ds.date, "y": y,
                                    "is_closed": False, "eligible": True, "demand_class": "smooth",
                                    "production_spec": None}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def sample():
    history = trending(8)
    rows = pd.concat([window_forecasts(h, FIT) for _, h in history.groupby("segment_id")], ignore_index=True)
    segments = history.drop_duplicates("segment_id")[["segment_id", "demand_class", "production_spec"]]
    return segments, rows


def test_judging_without_a_family_derives_the_combinations_from_the_others_without_a_fit(sample):
    segments, rows = sample
    without = CANDIDATES.without("smooth", ["theta"])
    assert without.fitted("smooth") == ["seasonal_naive", "dot"] and "theta" not in without.specs_for("smooth")
    judged = judge(rows[rows["model"] != "theta"], segments, without, JUDGE)
    assert "theta" not in set(judged.scored["model"])
    forecasts = judged.windows.forecasts()
    own = forecasts[(forecasts["segment_id"] == "S3") & (forecasts["window"] == 3)].pivot_table(
        index="ds", columns="model", values="yhat")
    assert own["combo_median"].to_numpy() == pytest.approx(own[["seasonal_naive", "dot"]].mean(axis=1).to_numpy())
    # with every candidate the median is of the three, so the derived rows are not the ones above
    full = judge(rows, segments, CANDIDATES, JUDGE).windows.forecasts()
    again = full[(full["segment_id"] == "S3") & (full["window"] == 3)].pivot_table(
        index="ds", columns="model", values="yhat")
    assert again["combo_median"].to_numpy() == pytest.approx(
        again[["seasonal_naive", "dot", "theta"]].median(axis=1).to_numpy())


def test_the_production_model_is_fitted_unless_a_candidate_stands_for_it(sample):
    history = trending(8)
    # ETS is not a configured candidate: the fit stage fits it beside them, as "production"
    h = history[history["segment_id"] == "S3"].assign(production_spec=ETS)
    assert "production" in set(window_forecasts(h, FIT)["model"])
    # theta in production is the theta candidate; once the race drops theta, its rows stand for it
    segments, rows = sample
    theta = CANDIDATES.specs["theta"]
    with_production = segments.assign(production_spec=np.where(segments["segment_id"] == "S3", theta, None))
    kept = kept_rows(rows, with_production, CANDIDATES, CANDIDATES.without("smooth", ["theta"]))
    assert "theta" not in set(kept["model"])
    stand_in = kept[kept["model"] == "production"]
    assert set(stand_in["segment_id"]) == {"S3"}
    mine = rows[(rows["segment_id"] == "S3") & (rows["model"] == "theta")]
    assert stand_in["yhat"].to_numpy() == pytest.approx(mine["yhat"].to_numpy())


def run_race(segments, rows, race_settings=RACE):
    (result,) = race(rows, segments, CANDIDATES, JUDGE, race_settings)
    return result


def score(segments, rows, dropped=()):
    return rule_score(rows, segments, "smooth", CANDIDATES.without("smooth", list(dropped)), JUDGE)


def test_the_race_keeps_what_the_rule_needs_and_records_why(sample):
    segments, rows = sample
    result = run_race(segments, rows)
    assert result.raced and result.sampled == 8
    tried = {t["family"]: t for t in result.trials}
    assert set(tried) == {"dot", "theta"}  # the baseline is never raced
    first = [t["family"] for t in result.trials if t["round"] == 1]
    assert first == sorted(tried, key=lambda f: -tried[f]["seconds"])  # the costliest first
    # a family kept in a round is tried again only after a round that dropped one
    rounds = max(t["round"] for t in result.trials)
    assert all(any(t["decision"] == "dropped" for t in result.trials if t["round"] == r) for r in range(1, rounds))
    for t in result.trials:  # each decision is the one its figures say (tolerance 0)
        assert (t["decision"] == "dropped") == (t["without"] <= result.full_score)
    # on trends, without both Theta families only seasonal naive is left: far worse, so one stays
    assert len(result.dropped) < 2
    assert score(segments, rows, ["dot", "theta"]) > 1.5 * result.full_score
    # the figures are the held-out rule scores of the candidate lists they describe
    assert result.full_score == pytest.approx(score(segments, rows))
    assert result.score == pytest.approx(score(segments, rows, result.dropped))
    assert raced(CANDIDATES, [result]).fitted("smooth") == [f for f in FAMILIES if f not in result.dropped]


def test_a_loose_tolerance_drops_what_costs_and_small_classes_are_not_raced(sample):
    segments, rows = sample
    loose = run_race(segments, rows, dataclasses.replace(RACE, tolerance=10.0))
    assert loose.dropped == [t["family"] for t in loose.trials] and set(loose.dropped) == {"dot", "theta"}
    cheap_only = run_race(segments, rows, dataclasses.replace(RACE, tolerance=10.0, min_cost_share=0.99))
    assert cheap_only.raced and cheap_only.trials == [] and cheap_only.dropped == []
    shares, unraced = sample_shares({"smooth": 601, "intermittent": 600}, dataclasses.replace(RACE, sample_segments=300))
    assert shares == {"smooth": pytest.approx(300 / 601)}
    assert [(r.demand_class, r.raced) for r in unraced] == [("intermittent", False)]
    assert "at most twice the sample of 300" in unraced[0].reason
