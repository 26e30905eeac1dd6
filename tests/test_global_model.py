"""The global model (one LightGBM across segments): real fits, persistence without pickle, its
groups, and the chain on a slice of the real data with it as a candidate."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs.evaluate import evaluate
from jobs.evaluation.global_forecasts import group_forecasts, last_origins, window_origins
from jobs.models import GlobalLGBM, GlobalPath, GlobalSettings, build_model, load_model
from jobs.score import score
from jobs.train import train
from tests.conftest import DENSE, slice_lake

RUN_DATE = dt.date(2011, 12, 9)
SETTINGS = GlobalSettings("daily", 14, 0.8, params={"n_estimators": 60})


def panel(n_segments: int = 12, days: int = 200, seed: int = 0) -> pd.DataFrame:
    """Weekly-seasonal counts of very different sizes (a factor of 100 between segments)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2011-01-03", periods=days, freq="D")
    frames = []
    for i in range(n_segments):
        level = 2.0 * 10 ** (i % 3)
        season = 1 + 0.5 * np.sin(2 * np.pi * ds.dayofweek / 7)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(level * season).astype(float)}))
    return pd.concat(frames, ignore_index=True)


def test_a_saved_model_loads_from_its_text_format_and_forecasts_exactly_as_fitted():
    data = panel()
    model = GlobalLGBM(SETTINGS).fit(data)
    fitted = model.forecast(14)
    payload = model.to_json()
    assert "lightgbm" in json.loads(payload)["libraries"] and json.loads(payload)["model"].startswith("tree")
    loaded = GlobalLGBM.from_json(payload, data)
    pd.testing.assert_frame_equal(loaded.forecast(14), fitted)
    # one model serves every size: each segment's forecast is near its own level, not the group's
    level = data.groupby("unique_id")["y"].mean()
    mean = fitted.groupby("unique_id")["yhat"].mean()
    assert ((mean / level).between(0.6, 1.6)).all(), (mean / level).to_dict()
    # conformal intervals around the forecast, wider for the bigger segments
    assert (fitted["yhat_lower"] <= fitted["yhat"]).all() and (fitted["yhat"] <= fitted["yhat_upper"]).all()
    width = (fitted["yhat_upper"] - fitted["yhat_lower"]).groupby(fitted["unique_id"]).mean()
    assert width["s2"] > 10 * width["s0"]


def test_static_features_are_categories_kept_in_the_text_model_and_unseen_values_still_forecast():
    data = panel()
    data["kind"] = np.where(data["unique_id"].str[1:].astype(int) % 2 == 0, "even", "odd")
    model = GlobalLGBM(replace(SETTINGS, static_features=("kind",))).fit(data)
    fitted = model.forecast(14)
    payload = model.to_json()
    assert json.loads(payload)["settings"]["static_features"] == ["kind"]
    assert "pandas_categorical" in json.loads(payload)["model"]  # LightGBM keeps the categories
    pd.testing.assert_frame_equal(GlobalLGBM.from_json(payload, data).forecast(14), fitted)
    # a segment the model never saw: its own history and its category give it the fitted forecast
    copy = data[data["unique_id"] == "s1"].assign(unique_id="new")
    again = GlobalLGBM.from_json(payload, copy).forecast(14)
    assert again["yhat"].to_numpy() == pytest.approx(fitted.loc[fitted["unique_id"] == "s1", "yhat"].to_numpy())
    unseen = GlobalLGBM.from_json(payload, copy.assign(kind="neither")).forecast(14)
    assert len(unseen) == 14 and np.isfinite(unseen["yhat"]).all()


def test_a_segment_with_a_short_history_still_gets_a_forecast():
    data = panel()
    short = pd.DataFrame({"unique_id": "new", "ds": data["ds"].drop_duplicates().iloc[-5:], "y": [3.0, 0, 4, 2, 5]})
    forecast = GlobalLGBM(SETTINGS).fit(pd.concat([data, short])).forecast(14)
    own = forecast[forecast["unique_id"] == "new"]
    assert len(own) == 14 and np.isfinite(own["yhat"]).all()


def test_group_forecasts_serve_each_segment_its_windows_and_record_what_failed():
    data = panel(days=120).rename(columns={"unique_id": "segment_id"}).assign(is_closed=False)
    spec = GlobalPath.for_settings(SETTINGS, 30).spec()
    origins = window_origins(data, frequency="daily", horizon=14, windows=2, step=14)
    rows = group_forecasts(data, origins, {"global_lgbm": spec}, 14)
    # the windows end on the grid of every 14th day: the last at 2011-04-28 (day 15,092 since
    # 1970), four days before the calendar's last day, the other 14 days before
    assert sorted(rows["origin"].unique()) == [dt.date(2011, 3, 31), dt.date(2011, 4, 14)]
    assert len(rows) == 12 * 2 * 14 and rows["reason"].isna().all()
    # the segment's model takes its path from the origin it is fitted to, and fails where none was made
    model = build_model(spec, {spec: rows[rows["segment_id"] == "s1"]})
    history = data[(data["segment_id"] == "s1") & (data["ds"] <= "2011-04-14")]
    future = pd.DataFrame({"ds": pd.date_range("2011-04-15", periods=14)})
    assert model.fit(history).predict(future)["yhat"].tolist() == pytest.approx(
        rows[(rows["segment_id"] == "s1") & (rows["origin"] == dt.date(2011, 4, 14))]["yhat"].tolist())
    assert load_model("global_lgbm", model.to_json()).predict(future).equals(model.predict(future))
    with pytest.raises(Exception, match="no_global_forecast"):
        build_model(spec, {spec: rows[rows["segment_id"] == "s1"]}).fit(history.iloc[:-3])


@pytest.fixture(scope="module")
def lake(spark, slice_csv, tmp_path_factory):
    return slice_lake(spark, slice_csv, tmp_path_factory.mktemp("global"), RUN_DATE)


def test_the_chain_backtests_trains_and_scores_the_global_model_per_training_group(spark, lake):
    evaluation = {"candidates": ["seasonal_naive", "global_lgbm", "combo_median"], "intermittent_candidates": ["tsb"],
                  "windows": 2, "rule": "per_segment", "race": {"enabled": False}}
    cfg = lake("chain", {"evaluation": evaluation,
                         "model": {"global_lgbm": {"params": {"n_estimators": 60}, "group_by": "item_id",
                                                   "static_features": ["item_id"]}}})
    evaluate(spark, cfg, RUN_DATE, "evaluate-global")
    backtest = spark.table("gold.backtest_metrics").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    own = backtest[backtest["model"] == "global_lgbm"]
    assert set(own.loc[own["status"] == "ok", "segment_id"]) >= set(DENSE)
    assert (own.loc[own["status"] == "ok", "seconds"] > 0).all()
    # a group per item: each segment's window forecasts are those of a model fitted on it alone
    forecasts = spark.table("gold.backtest_forecasts").filter(
        (F.col("run_date") == F.lit(RUN_DATE)) & (F.col("model") == "global_lgbm")).toPandas()
    demand = spark.table("silver.demand").filter(F.col("segment_id") == DENSE[0]).toPandas()
    alone = group_forecasts(demand[["segment_id", "ds", "y", "is_closed", "item_id"]],
                            window_origins(demand, frequency="daily", horizon=28, windows=2, step=28), {"global_lgbm": _configured_spec(cfg)},
                            28)
    mine = forecasts[forecasts["segment_id"] == DENSE[0]].sort_values(["cutoff", "ds"])
    merged = mine.merge(alone.rename(columns={"origin": "cutoff"}), on=["cutoff", "ds"], suffixes=("", "_alone"))
    assert len(merged) == len(mine) > 0
    assert merged["yhat"].to_numpy() == pytest.approx(merged["yhat_alone"].to_numpy())
    # train fits the global model where it was promoted (alone or inside a combination); score uses it
    train(spark, cfg, RUN_DATE, "train-global")
    models = spark.table("gold.models").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    chosen = spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    uses = chosen[chosen["promoted_spec"].fillna("").str.contains("global_lgbm")]
    assert len(uses), "the global model was promoted nowhere on the slice"
    fitted = models[models["segment_id"].isin(uses["segment_id"])]
    assert (fitted["status"] == "ok").all(), fitted[["segment_id", "reason"]]
    assert all(_holds_fitted_global(j) for j in fitted["model_json"])
    score(spark, cfg, RUN_DATE, "score-global")
    out = spark.table("gold.forecasts").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    assert set(out["segment_id"]) >= set(uses["segment_id"])
    assert np.isfinite(out["yhat"]).all()


def _holds_fitted_global(model_json: str) -> bool:
    """A stored model is a fitted global path, or a combination with one among its fitted members."""
    d = json.loads(model_json)
    if "fitted" in d:
        return any(m["family"] == "global_lgbm" and _holds_fitted_global(m["model"]) for m in d["fitted"])
    return len(d["path"]["mean"]) == d["path_periods"]


def _configured_spec(cfg) -> str:
    from jobs.evaluate import candidates_of

    return candidates_of(cfg).specs["global_lgbm"]


def test_odd_segments_get_a_forecast_or_a_recorded_reason_never_an_exception():
    ds = pd.date_range("2011-01-03", periods=120)
    shapes = {"all_zero": pd.DataFrame({"ds": ds, "y": 0.0}), "constant": pd.DataFrame({"ds": ds, "y": 5.0}),
              "one_point": pd.DataFrame({"ds": ds[-1:], "y": [3.0]}),
              "stopped": pd.DataFrame({"ds": ds[:30], "y": 2.0})}
    data = pd.concat([f.assign(segment_id=name) for name, f in shapes.items()]).assign(is_closed=False)
    spec = GlobalPath.for_settings(SETTINGS, 30).spec()
    rows = group_forecasts(data, last_origins(data), {"global_lgbm": spec}, 14)
    for name in shapes:
        own = rows[rows["segment_id"] == name]
        forecast = own[own["ds"].notna()]
        assert (len(forecast) == 14 and np.isfinite(forecast["yhat"]).all()) or (
            len(own) == 1 and own["reason"].iloc[0].startswith("global_failed")), (name, own)
    # the stopped segment's origin has no row to learn from: its fit failed, recorded with why
    assert rows.loc[rows["segment_id"] == "stopped", "reason"].iloc[0].startswith("global_failed: ")
    assert (rows.loc[rows["segment_id"] == "all_zero", "yhat"] == 0).all()


def test_train_keeps_the_global_model_and_score_serves_segments_new_since_training_with_it(spark, lake):
    evaluation = {"candidates": ["seasonal_naive", "global_lgbm"], "intermittent_candidates": [],
                  "windows": 1, "rule": "per_segment", "race": {"enabled": False}}
    cfg = lake("served", {"evaluation": evaluation, "model": {"global_lgbm": {"params": {"n_estimators": 60}}}})
    evaluate(spark, cfg, RUN_DATE, "evaluate-served")
    for attempt in ("train-served", "train-served-again"):  # a rerun replaces the run date's model
        train(spark, cfg, RUN_DATE, attempt)
    saved = spark.table("gold.global_models").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    eligible = spark.table("silver.demand").filter("eligible").select("segment_id").distinct().count()
    assert len(saved) == 1 and saved["group"].iloc[0] == "all" and saved["segments"].iloc[0] == eligible
    assert saved["run_id"].iloc[0] == "train-served-again"
    assert json.loads(saved["model_json"].iloc[0])["model"].startswith("tree")

    # two segments appear after training: a copy of one the model forecast, and one with a single day
    models = spark.table("gold.models").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    served = models[(models["model"] == "global_lgbm") & models["segment_id"].isin(DENSE)]
    assert len(served), "the global model was promoted for no dense segment of the slice"
    original = served["segment_id"].iloc[0]
    demand = spark.table("silver.demand")
    copy = demand.filter(F.col("segment_id") == original)
    one_day = copy.filter(F.col("ds") == copy.agg(F.max("ds")).first()[0])
    new = (copy.withColumn("segment_id", F.lit("NEW-COPY")).withColumn("item_id", F.lit("NEW-COPY"))
           .unionByName(one_day.withColumn("segment_id", F.lit("NEW-ONE")).withColumn("item_id", F.lit("NEW-ONE"))))
    new.write.format("delta").mode("append").save(cfg.table("demand").path)
    try:
        score(spark, cfg, RUN_DATE, "score-served")
        out = spark.table("gold.forecasts").filter(F.col("run_date") == F.lit(RUN_DATE)).toPandas()
    finally:
        spark.sql(f"DELETE FROM {cfg.table('demand').name} WHERE segment_id LIKE 'NEW-%'")
    for segment in ("NEW-COPY", "NEW-ONE"):
        own = out[out["segment_id"] == segment]
        assert len(own) == 28 and np.isfinite(own["yhat"]).all()
        assert (own["model"] == "global_lgbm").all() and (own["status"] == "fallback").all()
        assert own["reason"].iloc[0].startswith("new: ") and "global model" in own["reason"].iloc[0]
        assert (own["model_version"] == saved["model_version"].iloc[0]).all()
    # loaded from its text and given only the segment's history, the model forecasts the copy
    # exactly as it forecast the original when it was fitted in training
    mine = out[out["segment_id"] == "NEW-COPY"].sort_values("ds")
    theirs = out[out["segment_id"] == original].sort_values("ds")
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        assert mine[column].to_numpy() == pytest.approx(theirs[column].to_numpy()), column
