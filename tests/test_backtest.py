"""Rolling-origin backtest of one segment in its two stages (pandas, real model fits): the fit
stage's window forecasts, then the judge's derived candidates and scores."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from jobs.evaluation.candidates import Candidates, FitSettings, JudgeSettings, gap_of
from jobs.core.specs import model_spec
from jobs.evaluation.fitting import cutoffs, window_forecasts
from jobs.evaluation.judge import judge
from jobs.evaluation.metrics import seasonal_naive_scale, window_metrics
from jobs.models import ProphetForecaster, SeasonalNaive


def calendar(values, closed=()):
    ds = pd.date_range("2011-01-03", periods=len(values), freq="D")
    closed_mask = np.isin(np.arange(len(values)), list(closed))
    return pd.DataFrame({"ds": ds, "y": np.where(closed_mask, np.nan, values), "is_closed": closed_mask})


def judge_settings(horizon: int, step: int, metric: str = "mase", rule: str = "per_segment") -> JudgeSettings:
    return JudgeSettings(keys=("item_id",), metric=metric, margin=0.1, tolerance=0.0, rule=rule, cost_under=1.0,
                         cost_over=1.0, interval_width=0.8, gap=gap_of(horizon, step), run_date=dt.date(2011, 6, 1),
                         run_id="test")


def backtest(history, models, *, horizon, windows, step, combinations=(), metric="mase"):
    """Fit ``models`` (name -> factory) on the windows of one segment, then judge them with
    ``combinations``: every candidate's scored windows."""
    candidates = Candidates(specs={n: model_spec(n, {}) for n in models}, smooth=tuple(models), intermittent=(),
                            combinations=tuple(combinations), margin=0.1)
    settings = FitSettings(regressors=(), frequency="daily", horizon=horizon, windows=windows, step=step,
                           candidates=candidates)
    pdf = history.assign(segment_id="A", eligible=True, demand_class="smooth", production_spec=None)
    rows = window_forecasts(pdf, settings, make=lambda name, spec: models[name])
    return judge(rows, pdf.iloc[:1], candidates, judge_settings(horizon, step, metric)).scored


def test_windows_end_on_a_fixed_calendar_grid_so_nearby_run_dates_share_them():
    # 100 days from 2011-01-03 (day 14,977 since 1970) to 2011-04-12 (day 15,076); with step 7 the
    # grid periods are the days divisible by 7: the last window ends at 15,071 = 2011-04-07 (position
    # 94), the three windows test positions 74-80, 81-87 and 88-94
    ds = pd.date_range("2011-01-03", periods=100, freq="D")
    assert cutoffs(ds, frequency="daily", horizon=7, windows=3, step=7) == [73, 80, 87]
    # a day more of history (to 2011-04-13): the same windows, reusable; two days (to 2011-04-14, day
    # 15,078 on the grid): a new last window, the oldest dropped
    assert cutoffs(pd.date_range("2011-01-03", periods=101, freq="D"), frequency="daily", horizon=7, windows=3,
                   step=7) == [73, 80, 87]
    assert cutoffs(pd.date_range("2011-01-03", periods=102, freq="D"), frequency="daily", horizon=7, windows=3,
                   step=7) == [80, 87, 94]
    # weekly and monthly periods: the grid is in their own periods
    weeks = pd.date_range("2011-01-03", periods=60, freq="W-MON")
    end = cutoffs(weeks, frequency="weekly", horizon=4, windows=1, step=8)[0] + 4
    assert ((weeks[end] - pd.Timestamp("1969-12-29")).days // 7) % 8 == 0 and len(weeks) - 1 - end < 8


def test_seasonal_naive_window_metrics_match_a_direct_computation():
    rng = np.random.default_rng(5)
    values = rng.poisson(20, 70).astype(float)
    h = calendar(values, closed=[20, 27, 66])
    out = backtest(h, {"seasonal_naive": lambda: SeasonalNaive("daily")}, horizon=7, windows=2, step=7)
    assert sorted(out["window"]) == [1, 2] and set(out["status"]) == {"ok"}
    # window 2 ends on the grid at position 66 (day 15,043 since 1970): train on positions 0..59,
    # test 60..66 without the closed 66
    cut = cutoffs(h["ds"], frequency="daily", horizon=7, windows=2, step=7)[1]
    assert cut == 59
    train = h.iloc[:cut + 1].copy()
    model = SeasonalNaive("daily").fit(train[["ds", "y"]])
    test = h.iloc[cut + 1:cut + 8][~h.iloc[cut + 1:cut + 8]["is_closed"]]
    f = model.predict(test[["ds"]])
    expected = window_metrics(test["y"].to_numpy(), f["yhat"].to_numpy(), f["yhat_lower"].to_numpy(),
                              f["yhat_upper"].to_numpy(),
                              scale=seasonal_naive_scale(train["y"].to_numpy(), 7), interval_width=0.8)
    row = out[out["window"] == 2].iloc[0]
    assert row["n_test"] == 6 and row["cutoff"] == h["ds"][cut].date()
    for metric, value in expected.items():
        assert row[metric] == value  # the judge scores many windows at once with the same numbers


def test_a_failing_candidate_is_recorded_and_the_others_still_scored():
    rng = np.random.default_rng(6)
    h = calendar(rng.poisson(30, 84).astype(float))
    candidates = {
        "prophet": lambda: ProphetForecaster({"growth": "logistic", "uncertainty_samples": 0}),  # no cap
        "seasonal_naive": lambda: SeasonalNaive("daily"),
    }
    out = backtest(h, candidates, horizon=14, windows=2, step=14, combinations=("combo_median",))
    failed = out[out["model"] == "prophet"]
    assert set(failed["status"]) == {"failed"} and failed["reason"].str.startswith("prophet_failed").all()
    assert failed["mase"].isna().all() and (failed["seconds"] > 0).all()
    ok = out[out["model"] == "seasonal_naive"]
    assert set(ok["status"]) == {"ok"} and ok["mase"].notna().all()
    # the combination leaves the failed member out: the median of the baseline alone is the baseline
    combo = out[out["model"] == "combo_median"].set_index("window")
    assert combo["mase"].to_dict() == ok.set_index("window")["mase"].to_dict()


def test_windows_without_enough_history_are_skipped_not_invented():
    h = calendar(np.arange(20, dtype=float))
    out = backtest(h, {"seasonal_naive": lambda: SeasonalNaive("daily")}, horizon=7, windows=2, step=7,
                   combinations=("combo_mean", "pool"))
    assert set(out["status"]) == {"skipped"} and len(out) == 6
    assert out["mae"].isna().all() and out["reason"].str.startswith("window ").all()


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
    out = backtest(calendar(values), {"low": lambda: Flat(10.0), "high": lambda: Flat(30.0)},
                   horizon=6, windows=4, step=3, combinations=("pool",), metric="mae")
    pool = out[out["model"] == "pool"].set_index("window")
    # windows 1 and 2: no window ended by their cutoff -> median (= mean of the two) of both
    assert pool.loc[1, "reason"].startswith("median of every candidate: no earlier window")
    assert pool.loc[2, "reason"].startswith("median of every candidate")
    assert pool.loc[1, "mae"] == pytest.approx(abs(20 - values[-15:-9]).mean())
    # window 3 judges on window 1 only (window 2 overlaps it), window 4 on windows 1-2
    assert pool.loc[3, "reason"] == "pool low: within 10% of the best mae on window 1"
    assert pool.loc[4, "reason"] == "pool low: within 10% of the best mae on windows 1-2"
    low = out[out["model"] == "low"].set_index("window")
    assert pool.loc[4, "mae"] == pytest.approx(low.loc[4, "mae"])
    assert pool.loc[4, "seconds"] == pytest.approx(out[(out["window"] == 4) & out["model"].isin(["low", "high"])]["seconds"].sum())


def test_a_segment_whose_windows_are_all_skipped_gives_rows_arrow_can_take():
    import pyarrow as pa

    settings = FitSettings(regressors=(), frequency="daily", horizon=7, windows=2, step=7, candidates=Candidates(
        specs={"seasonal_naive": SeasonalNaive("daily").spec()}, smooth=("seasonal_naive",), intermittent=(),
        combinations=("ensemble",)))
    ds = pd.date_range("2011-01-01", periods=20, freq="D")
    pdf = pd.DataFrame({"item_id": "A", "segment_id": "A", "ds": ds.date, "y": 1.0, "is_closed": False,
                        "eligible": True, "demand_class": "smooth", "production_spec": None})
    rows = window_forecasts(pdf, settings)  # 20 days: too short for a window of two weekly seasons
    assert set(rows["status"]) == {"skipped"} and rows["ds"].isna().all()
    nothing = window_forecasts(pdf.assign(eligible=False), settings)  # a task of ineligible segments only
    assert nothing.empty
    judged = judge(rows, pdf.iloc[:1], settings.candidates, judge_settings(7, 7, rule="ensemble"))
    assert set(judged.scored["model"]) == {"seasonal_naive", "ensemble"}
    assert set(judged.scored["status"]) == {"skipped"}
    for frame in (rows, nothing, judged.scored, judged.windows.forecasts()):
        columns = [c for c in ("cutoff", "ds") if c in frame]
        table = pa.Table.from_pandas(frame[columns], schema=pa.schema([(c, pa.date32()) for c in columns]))
        assert table.num_rows == len(frame)


def test_a_task_fits_a_batched_family_on_every_window_of_its_segments_in_one_call():
    rng = np.random.default_rng(7)
    frames = []
    for segment in ("A", "B"):
        t = np.arange(120)
        y = 30 + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, len(t)) + (segment == "B") * 20
        frames.append(calendar(y).assign(segment_id=segment, eligible=True, demand_class="smooth", production_spec=None))
    pdf = pd.concat(frames, ignore_index=True)
    prophet = ProphetForecaster({"yearly_seasonality": False, "uncertainty_samples": 50, "interval_width": 0.8}).spec()
    candidates = Candidates(specs={"prophet": prophet}, smooth=("prophet",), intermittent=(), combinations=())
    calls = []
    original = ProphetForecaster.fit_many

    def counted(models, histories):
        calls.append(len(models))
        return original(models, histories)

    settings = FitSettings(regressors=(), frequency="daily", horizon=7, windows=3, step=7, candidates=candidates)
    stan = window_forecasts(pdf, settings)
    ProphetForecaster.fit_many = staticmethod(counted)
    try:
        batch = window_forecasts(pdf, dataclasses.replace(settings, batched=("prophet",)))
    finally:
        ProphetForecaster.fit_many = staticmethod(original)
    assert calls == [6]  # two segments x three windows, one call
    assert set(batch["status"]) == {"ok"} and batch["reason"].isna().all()
    keys = ["segment_id", "window", "ds"]
    both = stan.merge(batch, on=keys, suffixes=("_stan", "_batch"))
    assert len(both) == len(stan) == len(batch) == 2 * 3 * 7
    assert (both["yhat_batch"] - both["yhat_stan"]).abs().mean() < 0.05 * both["yhat_stan"].abs().mean()


@pytest.mark.parametrize("frequency", ["daily", "weekly"])
def test_period_numbers_count_periods_whatever_the_dates_type_or_time_of_day(frequency):
    from jobs.core.calendar import period_number

    starts = pd.date_range("1969-12-01", periods=60, freq="D" if frequency == "daily" else "W-MON")
    expected = np.arange(60) + period_number(starts[:1], frequency)[0]
    as_given = {
        "nanoseconds": pd.Series(starts),
        "milliseconds": pd.Series(starts).astype("datetime64[ms]"),  # what Arrow dates may become
        "dates": pd.Series([d.date() for d in starts]),
        "strings": pd.Series(starts.strftime("%Y-%m-%d")),
        "noon": pd.Series(starts + pd.Timedelta(hours=12)),
        "index": starts,
    }
    for kind, ds in as_given.items():
        assert np.array_equal(period_number(ds, frequency), expected), kind
