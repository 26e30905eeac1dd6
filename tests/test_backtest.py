"""Rolling-origin backtest of one segment (pandas, real model fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.models import ProphetForecaster, SeasonalNaive
from jobs.evaluation.backtest import backtest_segment, cutoffs
from jobs.evaluation.metrics import seasonal_naive_scale, window_metrics


def calendar(values, closed=()):
    ds = pd.date_range("2011-01-03", periods=len(values), freq="D")
    closed_mask = np.isin(np.arange(len(values)), list(closed))
    return pd.DataFrame({"ds": ds, "y": np.where(closed_mask, np.nan, values), "is_closed": closed_mask})


def test_cutoffs_end_the_last_window_at_the_last_period():
    # 100 periods, horizon 7, 3 windows 7 apart: they test 79-85, 86-92 and 93-99
    assert cutoffs(100, horizon=7, windows=3, step=7) == [78, 85, 92]


def test_seasonal_naive_window_metrics_match_a_direct_computation():
    rng = np.random.default_rng(5)
    values = rng.poisson(20, 70).astype(float)
    h = calendar(values, closed=[20, 27, 66])
    out = backtest_segment(
        h, {"seasonal_naive": lambda: SeasonalNaive("daily")},
        frequency="daily", horizon=7, windows=2, step=7, interval_width=0.8,
    )
    assert out["window"].tolist() == [1, 2] and set(out["status"]) == {"ok"}
    # window 2: train on positions 0..62, test 63..69 without the closed 66
    train = h.iloc[:63].copy()
    model = SeasonalNaive("daily").fit(train[["ds", "y"]])
    test = h.iloc[63:70][~h.iloc[63:70]["is_closed"]]
    f = model.predict(test[["ds"]])
    expected = window_metrics(test["y"].to_numpy(), f["yhat"].to_numpy(), f["yhat_lower"].to_numpy(),
                              f["yhat_upper"].to_numpy(),
                              scale=seasonal_naive_scale(train["y"].to_numpy(), 7), interval_width=0.8)
    row = out[out["window"] == 2].iloc[0]
    assert row["n_test"] == 6 and row["cutoff"] == h["ds"][62]
    for metric, value in expected.items():
        assert row[metric] == pytest.approx(value)


def test_a_failing_candidate_is_recorded_and_the_others_still_scored():
    rng = np.random.default_rng(6)
    h = calendar(rng.poisson(30, 84).astype(float))
    candidates = {
        "prophet": lambda: ProphetForecaster({"growth": "logistic", "uncertainty_samples": 0}),  # no cap
        "seasonal_naive": lambda: SeasonalNaive("daily"),
    }
    out = backtest_segment(h, candidates, frequency="daily", horizon=14, windows=2, step=14,
                           interval_width=0.8)
    failed = out[out["model"] == "prophet"]
    assert set(failed["status"]) == {"failed"} and failed["reason"].str.startswith("prophet_failed").all()
    assert failed["mase"].isna().all()
    ok = out[out["model"] == "seasonal_naive"]
    assert set(ok["status"]) == {"ok"} and ok["mase"].notna().all()


def test_windows_without_enough_history_are_skipped_not_invented():
    h = calendar(np.arange(20, dtype=float))
    out = backtest_segment(h, {"seasonal_naive": lambda: SeasonalNaive("daily")},
                           frequency="daily", horizon=7, windows=2, step=7, interval_width=0.8)
    assert out["status"].tolist() == ["skipped", "skipped"]
    assert out["mae"].isna().all()


def test_the_pool_is_chosen_only_on_windows_that_ended_before_its_cutoff():
    # Two candidates with fixed forecasts: "low" forecasts 10, "high" 30; demand is about 10.
    # horizon 6, step 3: each window overlaps the one before.
    class Flat(SeasonalNaive):
        def __init__(self, level):
            super().__init__("daily")
            self.level = level

        def predict(self, future):
            n = len(future)
            return pd.DataFrame({"ds": pd.to_datetime(future["ds"]).to_numpy(), "yhat": [self.level] * n,
                                 "yhat_lower": [self.level - 1] * n, "yhat_upper": [self.level + 1] * n})

    values = np.full(60, 10.0) + np.tile([0.0, 1.0], 30)
    out = backtest_segment(
        calendar(values), {"low": lambda: Flat(10.0), "high": lambda: Flat(30.0)},
        frequency="daily", horizon=6, windows=4, step=3, interval_width=0.8,
        pool=["low", "high"], margin=0.1, metric="mae",
    )
    pool = out[out["model"] == "pool"].set_index("window")
    # windows 1 and 2: no window ended by their cutoff -> median (= mean of the two) of both
    assert pool.loc[1, "reason"].startswith("median of every candidate: no earlier window")
    assert pool.loc[2, "reason"].startswith("median of every candidate")
    # window 3 judges on window 1 only (window 2 overlaps it), window 4 on windows 1-2
    assert pool.loc[3, "reason"] == "pool low: within 10% of the best mae on window 1"
    assert pool.loc[4, "reason"] == "pool low: within 10% of the best mae on windows 1-2"
    low = out[out["model"] == "low"].set_index("window")
    assert pool.loc[4, "mae"] == pytest.approx(low.loc[4, "mae"])
    assert pool.loc[4, "seconds"] == pytest.approx(out[(out["window"] == 4) & out["model"].isin(["low", "high"])]["seconds"].sum())


def test_a_segment_whose_windows_are_all_skipped_gives_rows_arrow_can_take():
    import datetime as dt

    import pyarrow as pa

    from jobs.evaluation.candidates import EvaluationSettings
    from jobs.evaluation.segment import backtest_rows, ensemble_rows

    settings = EvaluationSettings(
        keys=("item_id",), regressors=(), frequency="daily", horizon=7, windows=2, step=7, interval_width=0.8,
        cost_under=1.0, cost_over=1.0, metric="mase", tolerance=0.0, rule="ensemble", margin=0.1,
        specs={"seasonal_naive": SeasonalNaive("daily").spec()}, smooth=("seasonal_naive",), intermittent=(),
        combinations=("ensemble",), run_date=dt.date(2011, 1, 20), run_id="test")
    ds = pd.date_range("2011-01-01", periods=20, freq="D")
    pdf = pd.DataFrame({"item_id": "A", "segment_id": "A", "ds": ds.date, "y": 1.0, "is_closed": False,
                        "eligible": True, "demand_class": "smooth", "production_spec": None})
    rows = backtest_rows(pdf, settings)  # 20 days: too short for a window of two weekly seasons
    assert set(rows["status"]) == {"skipped"} and rows["ds"].isna().all()
    ensemble = ensemble_rows(rows.assign(demand_class="smooth"), settings, {}, {})
    for frame in (rows, ensemble):
        table = pa.Table.from_pandas(frame[["cutoff", "ds"]], schema=pa.schema([("cutoff", pa.date32()),
                                                                               ("ds", pa.date32())]))
        assert table.num_rows == len(frame)
