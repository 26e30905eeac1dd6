"""The evaluate job on a slice of the real data: backtests, choice, the gate and reruns."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from jobs import evaluate as evaluate_job
from jobs.evaluate import evaluate
from jobs.train import train
from tests.conftest import DENSE, QUICK_EVALUATION, slice_lake

RUN_DATE = dt.date(2011, 12, 9)


@pytest.fixture(scope="module")
def lake(spark, slice_csv, tmp_path_factory):
    """A lake with the slice ingested and its features built as of RUN_DATE; configs share it."""
    return slice_lake(spark, slice_csv, tmp_path_factory.mktemp("evaluate"), RUN_DATE)


def rows_of(spark, table, run_date, drop=("run_id",)):
    df = spark.table(table).filter(F.col("run_date") == F.lit(run_date))
    return sorted(tuple(r) for r in df.select(*[c for c in df.columns if c not in drop]).collect())


def test_a_segment_where_prophet_fails_is_still_evaluated_with_the_other_candidates(spark, lake):
    # logistic growth without a capacity column: every Prophet fit fails
    cfg = lake("prophet_fails", {"model": {"prophet": {"growth": "logistic", "uncertainty_samples": 0}}})
    evaluate(spark, cfg, RUN_DATE, "evaluate-fail")
    backtest = spark.table("gold.backtest_metrics").filter(F.col("segment_id").isin(DENSE)).toPandas()
    prophet = backtest[backtest["model"] == "prophet"]
    assert len(prophet) == len(DENSE) * cfg.evaluation.windows
    assert set(prophet["status"]) == {"failed"} and prophet["reason"].str.startswith("prophet_failed").all()
    others = backtest[backtest["model"] != "prophet"]
    survivors = {"seasonal_naive", "theta", "ets", "combo_mean", "combo_median"}
    assert set(others["model"]) >= survivors  # (+ the intermittent methods where flagged)
    assert set(others["status"]) == {"ok"} and others["mase"].notna().all()
    chosen = {r.segment_id: r for r in spark.table("gold.model_selection").collect()}
    for s in DENSE:
        assert chosen[s].champion != "prophet" and chosen[s].promoted_model != "prophet"
        assert "failed: prophet (prophet_failed)" in chosen[s].reason
        assert set(chosen[s].scores) >= survivors and "prophet" not in chosen[s].scores
    train(spark, cfg, RUN_DATE, "train-fail")
    models = {r.segment_id: r for r in spark.table("gold.models").collect()}
    for s in DENSE:
        assert models[s].status == "ok" and models[s].model == chosen[s].promoted_model
    # a combination of every candidate is trained without prophet, and says so
    holding = [m for m in models.values() if m.status == "ok" and m.model in ("combo_mean", "combo_median")]
    assert holding, "some segment should be promoted to a combination of every candidate"
    for m in holding:
        assert json.loads(m.model_json)["failed"] == {"prophet": "prophet_failed"}


def test_the_gate_refuses_a_worse_champion_keeps_production_and_force_overrides(spark, lake):
    first, second = dt.date(2011, 11, 21), dt.date(2011, 11, 28)
    default = lake("gate_default")
    evaluate(spark, default, first, "evaluate-first")
    train(spark, default, first, "train-first")
    production = {r.segment_id: r.model_spec for r in
                  spark.table("gold.models").filter(F.col("run_date") == F.lit(first)).collect()}

    # New config: only the baseline. Where production forecast better, the gate must keep it.
    naive_only = lake("gate_naive", {"evaluation": {"candidates": ["seasonal_naive"], "intermittent_candidates": []}})
    evaluate(spark, naive_only, second, "evaluate-second")
    chosen = {r.segment_id: r for r in
              spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(second)).collect()}
    refused = {s for s, r in chosen.items() if r.decision == "refused"}
    assert refused, "the best sellers' production models should beat seasonal naive somewhere"
    for s in DENSE:
        assert json.loads(production[s])["family"] != "seasonal_naive" or chosen[s].decision == "kept"
    for s in refused:
        r = chosen[s]
        assert r.production_score < r.champion_score and r.champion == "seasonal_naive"
        assert r.promoted_model == "production" and r.promoted_spec == production[s]
        assert "production kept" in r.reason
    # every gate decision is the one the scores call for (tolerance 0)
    gated = [r for r in chosen.values() if r.production_model is not None and r.decision != "fallback"]
    assert len(gated) >= len(DENSE)
    for r in gated:
        expected = "kept" if r.production_model == "seasonal_naive" else (
            "promoted" if r.champion_score <= r.production_score else "refused")
        assert r.decision == expected, (r.segment_id, r.decision, r.champion_score, r.production_score)
    backtest = spark.table("gold.backtest_metrics").filter(F.col("run_date") == F.lit(second))
    assert backtest.filter("model = 'production'").select("segment_id").distinct().count() >= len(refused)

    train(spark, naive_only, second, "train-second")
    retrained = {r.segment_id: r for r in
                 spark.table("gold.models").filter(F.col("run_date") == F.lit(second)).collect()}
    for s in refused:  # production's family and settings, refitted on the newer history
        assert retrained[s].model_spec == production[s] and retrained[s].status == "ok"
        assert retrained[s].train_end > dt.date(2011, 11, 21)

    before = rows_of(spark, "gold.model_selection", second)
    evaluate(spark, naive_only, second, "evaluate-forced", force=True)
    forced = {r.segment_id: r for r in
              spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(second)).collect()}
    assert {s for s, r in forced.items() if r.decision == "forced"} == refused
    assert all(forced[s].promoted_model == "seasonal_naive" and "--force" in forced[s].reason for s in refused)

    evaluate(spark, naive_only, second, "evaluate-again")
    assert rows_of(spark, "gold.model_selection", second) == before


def test_the_pool_is_resolved_from_the_backtest_trained_and_kept_without_refits(spark, lake):
    first, second = dt.date(2011, 11, 21), dt.date(2011, 11, 28)
    cfg = lake("pool", {"evaluation": {"candidates": ["seasonal_naive", "theta", "ets", "pool"],
                                       "intermittent_candidates": [], "rule": "per_segment"}})
    evaluate(spark, cfg, first, "evaluate-pool")
    backtest = spark.table("gold.backtest_metrics").filter(F.col("run_date") == F.lit(first)).toPandas()
    pool_rows = backtest[(backtest["model"] == "pool") & (backtest["status"] == "ok")]
    assert len(pool_rows) and pool_rows["reason"].notna().all()
    assert set(pool_rows.loc[pool_rows["window"] == 1, "reason"].str[:27]) == {"median of every candidate: "}
    chosen = {r.segment_id: r for r in
              spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(first)).collect()}
    pooled = {s: r for s, r in chosen.items() if r.promoted_model == "pool"}
    assert pooled, "the pool should be some segment's champion"
    for r in pooled.values():
        spec = json.loads(r.promoted_spec)["args"]
        assert spec["members"] and set(spec["members"]) <= set(spec["candidates"])
        families = [json.loads(m)["family"] for m in spec["members"]]
        assert f"pool {', '.join(families)}: within 10% of the best mase on windows 1-4" in r.reason
    train(spark, cfg, first, "train-pool")
    models = {r.segment_id: r for r in spark.table("gold.models").filter(F.col("run_date") == F.lit(first)).collect()}
    for s, r in pooled.items():
        assert models[s].model == "pool" and models[s].status == "ok"
        assert models[s].model_spec == r.promoted_spec
        assert len(json.loads(models[s].model_json)["fitted"]) == len(json.loads(r.promoted_spec)["args"]["members"])

    # a week later the pool in production is the same strategy, whatever its members: it is
    # not backtested again as "production", and where the pool is picked it is kept
    evaluate(spark, cfg, second, "evaluate-pool-2")
    later = spark.table("gold.backtest_metrics").filter(F.col("run_date") == F.lit(second))
    assert later.filter("model = 'production'").filter(F.col("segment_id").isin(list(pooled))).count() == 0
    again = {r.segment_id: r for r in
             spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(second)).collect()}
    for s in pooled:
        assert again[s].production_model == "pool"
    still = [s for s in pooled if again[s].promoted_model == "pool"]
    assert still, "the pool should stay some segment's pick a week later"
    assert all(again[s].decision == "kept" for s in still)


def test_the_ensemble_is_learned_across_segments_honestly_per_window_and_trained_without_idle_members(spark, lake):
    run_date = dt.date(2011, 11, 14)
    members = ["seasonal_naive", "dot", "ets", "combo_median"]
    cfg = lake("ensemble", {"evaluation": {"candidates": ["seasonal_naive", "dot", "ets", "combo_median", "ensemble"],
                                           "intermittent_candidates": [], "rule": "ensemble"}})
    evaluate(spark, cfg, run_date, "evaluate-ensemble")
    backtest = spark.table("gold.backtest_metrics").filter(F.col("run_date") == F.lit(run_date)).toPandas()
    forecasts = spark.table("gold.backtest_forecasts").filter(F.col("run_date") == F.lit(run_date)).toPandas()
    ensemble = backtest[(backtest["model"] == "ensemble") & (backtest["status"] == "ok")]
    assert set(ensemble["segment_id"]) >= set(DENSE)
    # window 1 has no earlier window to learn on: the members' mean; later ones say what they learned on
    assert set(ensemble.loc[ensemble["window"] == 1, "reason"]) == {"equal weights: no earlier window to learn on"}
    assert ensemble.loc[ensemble["window"] == 4, "reason"].str.startswith("weights learned on windows 1-3: ").all()
    # its window forecast is the weighted mean of the members' window forecasts, scored like any candidate
    s = DENSE[0]
    own = forecasts[(forecasts["segment_id"] == s) & (forecasts["window"] == 1)].pivot_table(
        index="ds", columns="model", values="yhat")
    assert own["ensemble"].to_numpy() == pytest.approx(own[members].mean(axis=1).to_numpy())
    row = ensemble[(ensemble["segment_id"] == s) & (ensemble["window"] == 1)].iloc[0]
    actual = forecasts[(forecasts["segment_id"] == s) & (forecasts["window"] == 1) & (forecasts["model"] == "ensemble")]
    assert row["mae"] == pytest.approx((actual["yhat"] - actual["actual"]).abs().mean())
    # the class's weights (learned on every window) are recorded, and are the spec train fits
    chosen = {r.segment_id: r for r in
              spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(run_date)).collect()}
    weights = chosen[s].ensemble_weights
    assert set(weights) == set(members) and sum(weights.values()) == pytest.approx(1.0)
    assert chosen[s].scores["ensemble"] == pytest.approx(ensemble[ensemble["segment_id"] == s]["mase"].mean())
    promoted = [r for r in chosen.values() if r.promoted_model == "ensemble"]
    assert promoted, "under rule ensemble the eligible segments get their class's ensemble"
    for r in promoted:
        assert json.loads(r.promoted_spec)["args"]["weights"] == pytest.approx([weights[m] for m in members])
    # train fits the members with a weight, and only those
    train(spark, cfg, run_date, "train-ensemble")
    models = {r.segment_id: r for r in spark.table("gold.models").filter(F.col("run_date") == F.lit(run_date)).collect()}
    fitted = {m["family"] for m in json.loads(models[promoted[0].segment_id].model_json)["fitted"]}
    assert fitted == {m for m in members if weights[m] > 0}


def evaluated(spark, cfg, run_date: dt.date, run_id: str, *flags: str) -> dict:
    """Run evaluate as the scheduler does (its command, so the run log keeps its row) and return
    the run's detail from the run log."""
    assert evaluate_job.main(["--run-date", str(run_date), "--config", str(cfg.path), "--run-id", run_id, *flags]) == 0
    row = spark.table("gold.pipeline_runs").filter(F.col("run_id") == F.lit(run_id)).filter("status = 'success'").first()
    return json.loads(row.detail)


def test_the_race_backtests_a_class_without_what_it_dropped_on_the_sample_and_records_it(spark, lake):
    run_date = dt.date(2011, 11, 14)
    # a loose tolerance: every family that costs anything is dropped where a class is raced
    cfg = lake("race", {"evaluation": {**QUICK_EVALUATION,
                                       "race": {"sample_segments": 2, "tolerance": 10.0, "min_cost_share": 0.0}}})
    races = evaluated(spark, cfg, run_date, "evaluate-race")["race"]
    backtest = spark.table("gold.backtest_metrics").filter(F.col("run_date") == F.lit(run_date)).toPandas()
    classes = (spark.table("gold.model_selection").filter(F.col("run_date") == F.lit(run_date))
               .select("segment_id", "demand_class", "promoted_spec").toPandas())
    raced = [c for c, r in races.items() if r["raced"]]
    assert raced, races
    for demand_class, r in races.items():
        own = classes[classes["demand_class"] == demand_class]
        models = set(backtest.loc[backtest["segment_id"].isin(own["segment_id"]), "model"])
        if not r["raced"]:
            assert r["dropped"] == [] and "dot" in models
            continue
        assert r["sampled"] >= 1 and r["dropped"] and "seasonal_naive" not in r["dropped"]
        assert {t["family"] for t in r["trials"]} == set(r["dropped"])
        # no segment of the class was backtested with a dropped family, nor combined or trained with one
        assert not models & set(r["dropped"]) and "seasonal_naive" in models
        for spec in own["promoted_spec"].dropna():
            assert not any(f'"family": "{f}"' in spec for f in r["dropped"])
    # a week later the race's decisions hold (evaluation.race.renew_days): no sample is fitted again
    later = evaluated(spark, cfg, run_date + dt.timedelta(days=7), "evaluate-race-later")
    assert "sample_fits" not in later["stages"] and later["race_date"] == str(run_date)
    for demand_class in raced:
        kept = later["race"][demand_class]
        assert kept["dropped"] == races[demand_class]["dropped"] and "carried from the race of 2011-11-14" in kept["reason"]
    # a full backtest races again
    again = evaluated(spark, cfg, run_date + dt.timedelta(days=7), "evaluate-race-again", "--no-reuse")
    assert "sample_fits" in again["stages"] and again["race_date"] == str(run_date + dt.timedelta(days=7))


def test_a_retrain_night_reuses_the_windows_an_earlier_night_fitted_with_the_same_result(spark, lake):
    # 2011-12-02 (day 15,310 since 1970) and 2011-12-09 (15,317): with 28-day steps the grid ends
    # the last window at 2011-11-10 (15,288) and 2011-12-08 (15,316): three of 12-09's four windows
    # are 12-02's
    cfg = lake("reuse", {"evaluation": {"candidates": ["seasonal_naive", "dot", "theta", "combo_median", "pool",
                                                       "ensemble"], "intermittent_candidates": ["tsb"]}})
    cold = evaluate(spark, cfg, dt.date(2011, 12, 2), "evaluate-cold", reuse=False)  # (earlier tests' runs too)
    assert cold.detail["fits"]["reused"] == 0 and cold.detail["fits"]["fitted"] > 0
    warm = evaluate(spark, cfg, RUN_DATE, "evaluate-warm")
    fits = warm.detail["fits"]
    assert fits["reused"] == 3 * fits["fitted"], fits  # all but the new window of every fitted candidate
    timing = ("run_id", "seconds")
    reused = {t: rows_of(spark, t, RUN_DATE, drop=timing) for t in ("gold.backtest_metrics",
                                                                     "gold.backtest_forecasts", "gold.model_selection")}
    full = evaluate(spark, cfg, RUN_DATE, "evaluate-full", reuse=False)
    assert full.detail["fits"]["reused"] == 0 and full.detail["fits"]["fitted"] == 4 * fits["fitted"]
    for table, rows in reused.items():  # the same tables as a full backtest, row for row
        assert rows_of(spark, table, RUN_DATE, drop=timing) == rows, table
