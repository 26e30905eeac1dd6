"""Racing the candidates on a sample (pandas, real model fits): the replay reproduces the backtest,
a family the rule needs is kept, one it can do without is dropped, and every decision is the one
its recorded figures say."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from jobs.evaluation.candidates import EvaluationSettings, candidate_specs, candidates_for, members_of
from jobs.evaluation.race import RaceSettings, local_replayer, race, replayed, rule_score, sample_shares
from jobs.evaluation.segment import METRICS_ROW, backtest_rows

FAMILIES = ["seasonal_naive", "dot", "theta"]
SETTINGS = EvaluationSettings(
    keys=("item_id",), regressors=(), frequency="daily", horizon=7, windows=3, step=7, interval_width=0.8,
    cost_under=1.0, cost_over=1.0, metric="mase", tolerance=0.0, rule="portfolio", margin=0.1,
    specs=candidate_specs(FAMILIES, frequency="daily", horizon=7, interval_width=0.8, prophet={},
                          holidays_country=None, regressors=()),
    smooth=tuple(FAMILIES), intermittent=(), combinations=("combo_median", "pool", "ensemble"),
    run_date=dt.date(2011, 6, 1), run_id="race-test")
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
    backtest = pd.concat([backtest_rows(h, SETTINGS) for _, h in history.groupby("segment_id")], ignore_index=True)
    return history, backtest


def test_the_replay_of_a_sampled_backtest_gives_its_rows_without_a_fit(sample):
    history, backtest = sample
    # a segment whose production model (ETS) is not a configured candidate: backtested beside them
    h = history[history["segment_id"] == "S3"].assign(production_spec=ETS)
    rows = backtest_rows(h, SETTINGS)
    assert "production" in set(rows["model"])
    again = replayed(h, rows, SETTINGS, production=True)
    columns = ["kind", "model", "window", "ds", "status", "mase", "wape", "coverage", "yhat", "yhat_lower", "seconds"]
    order = ["kind", "model", "window", "ds"]
    expected = rows[columns].sort_values(order, na_position="first")
    got = again[columns].sort_values(order, na_position="first")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    # the race leaves production out: it judges the configured candidates
    assert "production" not in set(replayed(h, rows, SETTINGS)["model"])
    # without theta: no theta rows, and the median combination is recombined from the two left
    trial = dataclasses.replace(SETTINGS, dropped={"smooth": ("theta",)})
    fewer = replayed(h, backtest[backtest["segment_id"] == "S3"], trial)
    assert "theta" not in set(fewer["model"]) and "theta" not in candidates_for(trial, "smooth")
    assert members_of(trial, "smooth") == ["seasonal_naive", "dot"]
    own = fewer[(fewer["kind"] == "forecast") & (fewer["window"] == 3)].pivot_table(
        index="ds", columns="model", values="yhat")
    assert own["combo_median"].to_numpy() == pytest.approx(own[["seasonal_naive", "dot"]].mean(axis=1).to_numpy())


def run_race(history, backtest, race_settings=RACE):
    fits = backtest[backtest["kind"] == METRICS_ROW].assign(demand_class="smooth")
    fits = fits[fits["model"].isin(FAMILIES)]
    (result,) = race(fits, SETTINGS, race_settings, local_replayer(history, backtest))
    return result


def score(history, backtest, dropped=()):
    settings = dataclasses.replace(SETTINGS, dropped={"smooth": tuple(dropped)})
    return rule_score(local_replayer(history, backtest)(settings, "smooth"), "smooth", settings)


def test_the_race_keeps_what_the_rule_needs_and_records_why(sample):
    history, backtest = sample
    result = run_race(history, backtest)
    assert result.raced and result.sampled == 8
    tried = {t["family"]: t for t in result.trials}
    assert set(tried) == {"dot", "theta"}  # the baseline is never raced
    assert [t["family"] for t in result.trials] == sorted(tried, key=lambda f: -tried[f]["seconds"])
    for t in result.trials:  # each decision is the one its figures say (tolerance 0)
        assert (t["decision"] == "dropped") == (t["without"] <= result.full_score)
    # on trends, without both Theta families only seasonal naive is left: far worse, so one stays
    assert len(result.dropped) < 2
    assert score(history, backtest, ["dot", "theta"]) > 1.5 * result.full_score
    # the figures are the held-out rule scores of the candidate lists they describe
    assert result.full_score == pytest.approx(score(history, backtest))
    assert result.score == pytest.approx(score(history, backtest, result.dropped))


def test_a_loose_tolerance_drops_what_costs_and_small_classes_are_not_raced(sample):
    history, backtest = sample
    loose = run_race(history, backtest, dataclasses.replace(RACE, tolerance=10.0))
    assert loose.dropped == [t["family"] for t in loose.trials] and set(loose.dropped) == {"dot", "theta"}
    cheap_only = run_race(history, backtest, dataclasses.replace(RACE, tolerance=10.0, min_cost_share=0.99))
    assert cheap_only.raced and cheap_only.trials == [] and cheap_only.dropped == []
    shares, unraced = sample_shares({"smooth": 601, "intermittent": 600}, dataclasses.replace(RACE, sample_segments=300))
    assert shares == {"smooth": pytest.approx(300 / 601)}
    assert [(r.demand_class, r.raced) for r in unraced] == [("intermittent", False)]
    assert "at most twice the sample of 300" in unraced[0].reason
