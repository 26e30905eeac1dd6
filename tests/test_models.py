"""Model families and the per-segment training function, on plain pandas with real Prophet fits."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jobs.models import AutoETSForecaster, AutoThetaForecaster, ModelFailure, ProphetForecaster, SeasonalNaive, load_model
from jobs.train import fit_segment

RUN_DATE = dt.date(2011, 3, 31)


def daily_history(values, start="2011-01-01", closed=()):
    ds = pd.date_range(start, periods=len(values), freq="D")
    y = pd.Series(values, dtype=float)
    y[list(closed)] = np.nan
    return pd.DataFrame({"ds": ds, "y": y})


PROPHET_SETTINGS = {"weekly_seasonality": True, "yearly_seasonality": False, "uncertainty_samples": 100}
PROPHET_SPEC = ProphetForecaster(PROPHET_SETTINGS).spec()


def segment_frame(y, closed=(), eligible=True, reason=None, item="A", spec=PROPHET_SPEC):
    h = daily_history(y, closed=closed)
    return pd.DataFrame(
        {
            "item_id": item,
            "segment_id": item,
            "ds": h["ds"].dt.date,
            "y": h["y"],
            "is_closed": h["y"].isna() if closed else False,
            "eligible": eligible,
            "ineligible_reason": reason,
            "promoted_spec": spec,
        }
    )


PARAMS = {
    "keys": ["item_id"],
    "regressors": [],
    "frequency": "daily",
    "interval_width": 0.8,
    "run_date": RUN_DATE,
    "run_id": "test",
    "library_versions": "{}",
}


def test_seasonal_naive_repeats_the_last_season_by_phase():
    # two weeks; the last week is 10..16, with day 15 (index 12) closed
    values = list(range(1, 8)) + list(range(10, 17))
    model = SeasonalNaive("daily").fit(daily_history(values, closed=[12]))
    future = pd.DataFrame({"ds": pd.date_range("2011-01-15", periods=9, freq="D")})
    out = model.predict(future)
    # phase of the closed day falls back to the previous week's value (6)
    assert out["yhat"].tolist() == [10, 11, 12, 13, 14, 6, 16, 10, 11]
    # seasonal differences are all 9 (constant): sigma 0, so the interval collapses
    assert (out["yhat_upper"] - out["yhat_lower"]).abs().max() == pytest.approx(0.0)


def test_seasonal_naive_interval_widens_each_season():
    rng = np.random.default_rng(0)
    model = SeasonalNaive("daily", 0.8).fit(daily_history(rng.poisson(20, 70)))
    out = model.predict(pd.DataFrame({"ds": pd.date_range("2011-03-12", periods=14, freq="D")}))
    width = (out["yhat_upper"] - out["yhat_lower"]).to_numpy()
    assert width[0] > 0 and width[7] == pytest.approx(width[0] * np.sqrt(2))


def test_seasonal_naive_monthly_phase_and_json_round_trip():
    h = pd.DataFrame({"ds": pd.date_range("2010-01-01", periods=24, freq="MS"), "y": range(24)})
    model = SeasonalNaive("monthly").fit(h)
    future = pd.DataFrame({"ds": pd.date_range("2012-01-01", periods=3, freq="MS")})
    assert model.predict(future)["yhat"].tolist() == [12, 13, 14]
    again = SeasonalNaive.from_json(model.to_json())
    pd.testing.assert_frame_equal(again.predict(future), model.predict(future))


def test_prophet_json_round_trip_gives_identical_predictions():
    rng = np.random.default_rng(1)
    t = np.arange(120)
    y = 50 + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, len(t))
    model = ProphetForecaster({"yearly_seasonality": False, "uncertainty_samples": 0}).fit(daily_history(y))
    future = pd.DataFrame({"ds": pd.date_range("2011-05-01", periods=28, freq="D")})
    restored = load_model("prophet", model.to_json())
    pd.testing.assert_frame_equal(restored.predict(future), model.predict(future))
    assert json.loads(model.to_json())["model"]


def test_prophet_fit_leaves_no_cmdstan_temp_files():
    import cmdstanpy

    ProphetForecaster({"uncertainty_samples": 0}).fit(daily_history(np.arange(60) % 7 + 1.0))
    assert list(Path(cmdstanpy._TMPDIR).iterdir()) == []


def bundled_daily(slice_csv, codes):
    """Daily units (zero-filled, cancellations netted, at least zero) of products of the bundled data."""
    raw = pd.read_csv(slice_csv, dtype={"StockCode": str})
    raw["ds"] = pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.normalize()
    out = {}
    for code in codes:
        y = raw[raw["StockCode"] == code].groupby("ds")["Quantity"].sum().clip(lower=0)
        days = pd.date_range(y.index.min(), raw["ds"].max())
        out[code] = y.reindex(days, fill_value=0).rename("y").rename_axis("ds").reset_index().astype({"y": float})
    return out


def test_prophet_fitted_in_batches_reaches_stans_posterior_and_forecasts_alike(slice_csv):
    from jobs.evaluation.metrics import seasonal_naive_scale
    from jobs.models.prophet_model import log_posterior
    from tests.conftest import DENSE

    settings = {"yearly_seasonality": "auto", "weekly_seasonality": "auto", "daily_seasonality": False,
                "changepoint_prior_scale": 0.05, "uncertainty_samples": 300, "interval_width": 0.8}
    histories, tests = [], []
    for series in bundled_daily(slice_csv, DENSE[:3]).values():
        for end in (len(series) - 56, len(series) - 28):  # two backtest cutoffs a horizon apart
            histories.append(series.iloc[:end])
            tests.append(series.iloc[end:end + 28][["ds"]])
    stan = [ProphetForecaster(settings, "GB").fit(h) for h in histories]
    batch = ProphetForecaster.fit_many([ProphetForecaster(settings, "GB") for _ in histories], histories)
    gaps = []
    for s, b, h, future in zip(stan, batch, histories, tests):
        assert b.fitted_by == "batch"
        # the same posterior, solved exactly: never below Stan's L-BFGS, which stops short of it
        assert log_posterior(b, h) >= log_posterior(s, h) - 1e-6 * abs(log_posterior(s, h))
        ys, yb = s.predict(future), b.predict(future)
        assert (yb["yhat_upper"] >= yb["yhat_lower"]).all()
        # how far apart the two forecasts are, in MASE's units (the series' seasonal-naive error)
        gaps.append((yb["yhat"] - ys["yhat"]).abs().mean() / seasonal_naive_scale(h["y"].to_numpy(), 7))
    # measured on these segments: 0.004-0.17 (where Stan stops farthest from the optimum), median 0.01
    assert max(gaps) < 0.25 and np.median(gaps) < 0.05
    # forecast in one call: predict's point forecast; the bounds drawn per model, reproducibly
    keys = [f"window {i}" for i in range(len(batch))]
    many = ProphetForecaster.predict_many(batch, tests, keys)
    reversed_ = ProphetForecaster.predict_many(batch[::-1], tests[::-1], keys[::-1])[::-1]
    for model, one, again, future in zip(batch, many, reversed_, tests):
        assert one["yhat"].to_numpy() == pytest.approx(model.predict(future)["yhat"].to_numpy(), rel=1e-9)
        pd.testing.assert_frame_equal(one, again)
    # what the batch cannot fit is fitted by Stan, with the reason; what Stan cannot fit fails in place
    logistic = ProphetForecaster({**settings, "growth": "logistic"}, "GB")
    failed, ok, short = ProphetForecaster.fit_many(
        [logistic, ProphetForecaster(settings, "GB"), ProphetForecaster(settings, "GB")],
        [histories[0], histories[1], histories[1].iloc[:1]])
    assert isinstance(failed, ModelFailure) and failed.reason == "prophet_failed"  # no cap column
    assert ok.fitted_by == "batch" and isinstance(short, ModelFailure) and short.reason == "too_short"


@pytest.mark.parametrize(
    "y, closed, eligible, reason, expected",
    [
        ([0.0] * 60, (), True, None, "all_zero"),
        ([3.0] * 60, (), True, None, "constant"),
        ([1.0] + [np.nan] * 59, tuple(range(1, 60)), True, None, "too_short"),
        ([1.0, np.nan, 2.0] * 20, (), True, None, "nan_values"),  # missing on open days
        ([1.0, 2.0] * 30, (), False, "too_sparse: 2 periods with demand < 8", "too_sparse"),
    ],
)
def test_degenerate_segments_get_a_fallback_model_and_a_reason(y, closed, eligible, reason, expected):
    row = fit_segment(segment_frame(y, closed, eligible, reason), PARAMS).iloc[0]
    assert (row.model, row.status) == ("seasonal_naive", "fallback")
    assert row.reason.startswith(expected)
    forecast = load_model(row.model, row.model_json).predict(
        pd.DataFrame({"ds": pd.date_range("2011-04-01", periods=7, freq="D")})
    )
    assert len(forecast) == 7 and np.isfinite(forecast["yhat"]).all()


def test_a_failing_prophet_fit_falls_back_with_the_error_recorded():
    # logistic growth without a 'cap' column: Prophet itself raises during fit
    spec = ProphetForecaster({**PROPHET_SETTINGS, "growth": "logistic"}).spec()
    row = fit_segment(segment_frame([1.0, 5.0, 3.0, 8.0] * 20, spec=spec), PARAMS).iloc[0]
    assert (row.model, row.status) == ("seasonal_naive", "fallback")
    assert row.reason.startswith("prophet_failed: ValueError") and "cap" in row.reason
    assert json.loads(row.model_spec)["family"] == "seasonal_naive"


def test_train_fits_the_promoted_family_and_says_when_none_was_chosen():
    y = [1.0, 5.0, 3.0, 8.0] * 20
    theta = AutoThetaForecaster("daily", 0.8).spec()
    row = fit_segment(segment_frame(y, spec=theta), PARAMS).iloc[0]
    assert (row.model, row.status, row.model_spec) == ("theta", "ok", theta)
    naive = SeasonalNaive("daily", 0.8).spec()
    row = fit_segment(segment_frame([0.0] * 60, spec=naive), PARAMS).iloc[0]
    assert (row.model, row.status, row.reason) == ("seasonal_naive", "ok", None)  # chosen, not a fallback
    row = fit_segment(segment_frame(y, spec=None), PARAMS).iloc[0]
    assert (row.model, row.status) == ("seasonal_naive", "fallback") and row.reason.startswith("not_evaluated")


def test_a_healthy_segment_gets_prophet_with_its_metadata():
    rng = np.random.default_rng(2)
    row = fit_segment(segment_frame(list(rng.poisson(30, 90).astype(float)), closed=(5, 12)), PARAMS).iloc[0]
    assert (row.model, row.status, row.reason, row.model_spec) == ("prophet", "ok", None, PROPHET_SPEC)
    assert row.n_obs == 88
    assert (row.train_start, row.train_end) == (dt.date(2011, 1, 1), dt.date(2011, 3, 31))
    assert row.model_version.startswith("20110331-")
    assert SeasonalNaive.from_json(row.fallback_json).anchor is not None


def test_train_fits_a_tasks_prophet_models_in_one_batch_members_of_combinations_included():
    from jobs.core.specs import model_spec
    from jobs.train import fit_segments

    rng = np.random.default_rng(4)
    naive = SeasonalNaive("daily", 0.8).spec()
    combo = model_spec("combo_median", {"members": [naive, PROPHET_SPEC]})
    task = pd.concat([segment_frame(list(rng.poisson(30, 90).astype(float)), item="P"),
                      segment_frame(list(rng.poisson(10, 90).astype(float)), item="C", spec=combo),
                      segment_frame([0.0] * 90, item="Z")], ignore_index=True)  # all zero: falls back
    calls = []
    original = ProphetForecaster.fit_many

    def counted(models, histories):
        calls.append(len(models))
        return original(models, histories)

    ProphetForecaster.fit_many = staticmethod(counted)
    try:
        batched = fit_segments(task, {**PARAMS, "batched": ("prophet",)}).set_index("segment_id")
    finally:
        ProphetForecaster.fit_many = staticmethod(original)
    assert calls == [2]  # the prophet of P and the prophet member of C's combination (Z's is not fitted)
    stan = fit_segments(task, PARAMS).set_index("segment_id")
    assert list(batched["status"]) == list(stan["status"]) == ["ok", "ok", "fallback"]
    future = pd.DataFrame({"ds": pd.date_range("2011-04-01", periods=14, freq="D")})
    for segment in ("P", "C"):
        a = load_model(batched.loc[segment, "model"], batched.loc[segment, "model_json"]).predict(future)
        b = load_model(stan.loc[segment, "model"], stan.loc[segment, "model_json"]).predict(future)
        assert (a["yhat"] - b["yhat"]).abs().mean() < 0.05 * b["yhat"].abs().mean()


def test_prophet_with_a_regressor_predicts_with_its_last_value_carried_forward():
    rng = np.random.default_rng(3)
    history = daily_history(rng.poisson(20, 90).astype(float))
    history["price"] = np.linspace(1.0, 2.0, len(history))
    model = ProphetForecaster({"uncertainty_samples": 0}, None, ("price",)).fit(history)
    future = pd.DataFrame({"ds": pd.date_range("2011-04-01", periods=5, freq="D")})
    restored = load_model("prophet", model.to_json())
    carried = restored.predict(future)
    explicit = restored.predict(future.assign(price=2.0))
    pd.testing.assert_frame_equal(carried, explicit)
    assert restored.last_regressors == {"price": 2.0}


@pytest.mark.parametrize("family", [AutoETSForecaster, AutoThetaForecaster])
def test_statistical_families_round_trip_and_refuse_periods_past_their_path(family):
    rng = np.random.default_rng(4)
    t = np.arange(120)
    history = daily_history(40 + 8 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, len(t)), closed=[5, 12])
    model = family("daily", 0.8, path_periods=30).fit(history)
    future = pd.DataFrame({"ds": pd.date_range("2011-05-01", periods=28, freq="D")})
    out = model.predict(future)
    assert np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    pd.testing.assert_frame_equal(load_model(family.name, model.to_json()).predict(future), out)
    with pytest.raises(ModelFailure, match="stores 30 periods"):
        model.predict(pd.DataFrame({"ds": pd.date_range("2011-05-31", periods=2, freq="D")}))
    with pytest.raises(ModelFailure, match="two full seasons"):
        family("daily").fit(daily_history([1.0, 2.0, 3.0]))


def test_a_combination_averages_its_members_and_round_trips_through_json():
    import numpy as np

    from jobs.models import build_model, load_model, model_spec
    from jobs.core.combine import combine
    from jobs.models.naive import SeasonalNaive
    from jobs.models.stats import AutoThetaForecaster, CrostonForecaster

    rng = np.random.default_rng(7)
    ds = pd.date_range("2011-01-03", periods=140, freq="D")
    history = pd.DataFrame({"ds": ds, "y": rng.poisson(3, len(ds)).astype(float)})
    future = pd.DataFrame({"ds": pd.date_range(ds[-1] + pd.Timedelta(days=1), periods=14, freq="D")})
    members = [AutoThetaForecaster("daily").spec(), CrostonForecaster("daily").spec(),
               SeasonalNaive("daily").spec()]
    spec = model_spec("combo_median", {"members": members})
    model = build_model(spec).fit(history)
    alone = [build_model(m).fit(history).predict(future) for m in members]
    got = model.predict(future)
    want = combine(alone, "median")
    pd.testing.assert_frame_equal(got, want)
    assert np.allclose(got["yhat"], np.median([f["yhat"] for f in alone], axis=0))
    assert (got["yhat_lower"] <= got["yhat"]).all() and (got["yhat"] <= got["yhat_upper"]).all()
    again = load_model("combo_median", model.to_json()).predict(future)
    pd.testing.assert_frame_equal(again, got)
    assert model.spec() == spec


def test_intermittent_methods_give_a_flat_rate_with_an_interval_around_it():
    import numpy as np

    from jobs.models.stats import ADIDAForecaster, CrostonForecaster, TSBForecaster

    rng = np.random.default_rng(3)
    ds = pd.date_range("2011-01-03", periods=200, freq="D")
    y = np.where(rng.random(len(ds)) < 0.15, rng.integers(1, 6, len(ds)), 0).astype(float)
    history = pd.DataFrame({"ds": ds, "y": y})
    future = pd.DataFrame({"ds": pd.date_range(ds[-1] + pd.Timedelta(days=1), periods=10, freq="D")})
    for family in (CrostonForecaster, TSBForecaster, ADIDAForecaster):
        f = family("daily").fit(history).predict(future)
        assert f["yhat"].nunique() == 1 and 0 < f["yhat"].iloc[0] < y.max()
        assert (f["yhat_lower"] <= f["yhat"]).all() and (f["yhat_upper"] > f["yhat"]).all()


def test_a_pool_fits_its_members_only_and_round_trips_through_json():
    from jobs.core.names import POOL
    from jobs.models import build_model, load_model, model_spec, strategy
    from jobs.core.combine import combine, pool_members
    from jobs.models.stats import AutoThetaForecaster

    assert pool_members({"a": 1.0, "b": 1.09, "c": 1.2, "d": float("nan")}, 0.1) == ["a", "b"]
    assert pool_members({"a": float("nan")}, 0.1) == []
    rng = np.random.default_rng(11)
    ds = pd.date_range("2011-01-03", periods=120, freq="D")
    history = pd.DataFrame({"ds": ds, "y": rng.poisson(8, len(ds)).astype(float)})
    future = pd.DataFrame({"ds": pd.date_range(ds[-1] + pd.Timedelta(days=1), periods=7, freq="D")})
    theta, naive = AutoThetaForecaster("daily").spec(), SeasonalNaive("daily").spec()
    universe = [theta, naive, PROPHET_SPEC]
    unresolved = build_model(model_spec(POOL, {"members": [], "candidates": universe, "margin": 0.1}))
    with pytest.raises(ModelFailure, match="pool_unresolved"):
        unresolved.fit(history)
    spec = model_spec(POOL, {"members": [theta, naive], "candidates": universe, "margin": 0.1})
    model = build_model(spec).fit(history)
    assert [m.name for m in model.fitted] == ["theta", "seasonal_naive"]  # prophet is not fitted
    want = combine([build_model(m).fit(history).predict(future) for m in (theta, naive)], "mean")
    pd.testing.assert_frame_equal(model.predict(future), want)
    pd.testing.assert_frame_equal(load_model(POOL, model.to_json()).predict(future), want)
    # the gate sees one strategy whatever members a backtest picks
    assert strategy(spec) == strategy(unresolved.spec()) and spec != unresolved.spec()


def test_an_ensemble_fits_only_its_weighted_members_and_round_trips_through_json():
    from jobs.models import Ensemble, build_model, load_model, model_spec

    rng = np.random.default_rng(3)
    ds = pd.date_range("2011-01-03", periods=140, freq="D")
    history = pd.DataFrame({"ds": ds, "y": rng.poisson(5, len(ds)).astype(float)})
    naive, theta, ets = (SeasonalNaive("daily").spec(), AutoThetaForecaster("daily").spec(),
                         AutoETSForecaster("daily").spec())
    model = build_model(model_spec("ensemble", {"members": [naive, theta, ets], "weights": [0.25, 0.0, 0.75]}))
    assert isinstance(model, Ensemble)
    model.fit(history)
    assert [m.name for m in model.fitted] == ["seasonal_naive", "ets"]  # theta's weight is zero: not fitted
    future = pd.DataFrame({"ds": pd.date_range(history["ds"].max() + pd.Timedelta(days=1), periods=14)})
    want = (0.25 * SeasonalNaive("daily").fit(history).predict(future)["yhat"]
            + 0.75 * AutoETSForecaster("daily").fit(history).predict(future)["yhat"])
    got = model.predict(future)
    assert got["yhat"].to_numpy() == pytest.approx(want.to_numpy())
    pd.testing.assert_frame_equal(load_model("ensemble", model.to_json()).predict(future), got)
    with pytest.raises(ModelFailure, match="ensemble_unresolved"):
        build_model(model_spec("ensemble", {"members": [naive], "weights": []})).fit(history)
