"""Monitoring: drift figures of one segment (pandas and scipy), and the scenario end to end: a
level shift injected into some segments after a training date is flagged by lakecast monitor
(and the untouched segments are not), the retraining decision covers only those segments, and
their new forecasts follow the new level."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs import evaluate as evaluate_job
from jobs import score as score_job
from jobs import train as train_job
from jobs.accuracy import accuracy
from jobs.common.cadence import training_decision
from jobs.evaluate import evaluate
from jobs.features import features
from jobs.ingest import ingest
from jobs.monitor import monitor
from jobs.monitoring.drift import DriftSettings, concept_drift, segment_drift
from jobs.score import score
from jobs.train import train
from tests.conftest import invoice_line, synthetic_lake, write_config

SETTINGS = DriftSettings(recent=28, reference=112, min_periods=7, p_value=0.01, min_change=0.5,
                         zero_share_change=0.25, error_ratio=2.0, cusum_k=0.5, cusum_h=8.0, bias=0.5)


def series(values: np.ndarray, start: str = "2011-01-01") -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range(start, periods=len(values), freq="D"), "y": values.astype(float)})


def no_errors() -> pd.DataFrame:
    return pd.DataFrame(columns=["ds", "abs_error", "error", "actual"])


def test_a_level_shift_is_data_drift_and_noise_is_not():
    rng = np.random.default_rng(3)
    before, after = rng.poisson(20, 150), rng.poisson(60, 14)
    history = series(np.concatenate([before, after]))
    trained_until = history["ds"].iloc[149]
    shifted = segment_drift(history, trained_until, no_errors(), None, SETTINGS)
    assert shifted["status"] == "judged" and shifted["n_recent"] == 14 and shifted["n_reference"] == 112
    assert shifted["data_drift"] and "level" in shifted["reasons"].split(",") and shifted["retrain"]
    assert shifted["level_ratio"] == pytest.approx(after.mean() / before[-112:].mean())
    assert shifted["level_p"] < 1e-4
    steady = segment_drift(series(rng.poisson(20, 164)), trained_until, no_errors(), None, SETTINGS)
    assert not steady["data_drift"] and not steady["retrain"] and steady["reasons"] is None
    assert steady["level_p"] > 0.01 or abs(steady["level_ratio"] - 1) < 0.5


def test_demand_that_stops_is_zero_share_drift():
    rng = np.random.default_rng(4)
    history = series(np.concatenate([rng.poisson(5, 150) + 1, np.zeros(20)]))
    row = segment_drift(history, history["ds"].iloc[149], no_errors(), None, SETTINGS)
    assert {"level", "zero_share"} <= set(row["reasons"].split(","))
    assert row["zero_share_reference"] == 0 and row["zero_share_recent"] == 1


def test_odd_segments_get_a_row_with_a_reason_never_an_exception():
    ds = series(np.zeros(160))
    zeros = segment_drift(ds, ds["ds"].iloc[149], no_errors(), None, SETTINGS)
    assert zeros["status"] == "judged" and not zeros["retrain"]
    assert zeros["level_ratio"] is None and "no demand in the reference" in zeros["note"]
    one = series(np.array([3.0]))
    short = segment_drift(one, one["ds"].iloc[0], no_errors(), None, SETTINGS)
    assert short["status"] == "too_few_periods" and not short["retrain"] and "need 7" in short["note"]
    woke = series(np.concatenate([np.zeros(150), np.full(10, 4.0)]))
    row = segment_drift(woke, woke["ds"].iloc[149], no_errors(), None, SETTINGS)
    assert row["retrain"] and "level" in row["reasons"] and row["level_ratio"] is None


def test_errors_that_break_the_backtest_promise_are_concept_drift():
    days = pd.date_range("2011-06-01", periods=14, freq="D")
    actual = np.full(14, 60.0)
    errors = pd.DataFrame({"ds": days, "actual": actual, "error": 20.0 - actual, "abs_error": np.abs(20.0 - actual)})
    out = concept_drift(errors, promised_mae=4.0, s=SETTINGS)
    assert out["error_ratio"] == pytest.approx(10.0) and out["cusum"] > SETTINGS.cusum_h
    assert out["concept_flags"] == ["error_ratio", "cusum", "bias"] and out["bias"] == pytest.approx(-40 / 60)
    calm = errors.assign(error=np.tile([3.0, -3.0], 7), abs_error=3.0)
    assert concept_drift(calm, promised_mae=4.0, s=SETTINGS)["concept_flags"] == []
    undefined = concept_drift(calm, promised_mae=0.0, s=SETTINGS)
    assert undefined["error_ratio"] is None and "promised no error" in undefined["notes"][0]


# The scenario: eight products sold every day; after the training date T, two of them triple.
TRAINED = dt.date(2011, 6, 1)        # a monthly retrain day (day 1)
LATER = dt.date(2011, 6, 9)          # eight nights later
SHIFTED = ("S1", "S2")


def transactions() -> pd.DataFrame:
    rng = np.random.default_rng(17)
    lines = []
    for day in pd.date_range("2010-01-04", LATER, freq="D"):
        for code in ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"):
            level = 60 if code in SHIFTED and day.date() > TRAINED else 20
            lines.append(invoice_line(len(lines), code, day, int(rng.poisson(level))))
    return pd.DataFrame(lines)


@pytest.fixture(scope="module")
def drifted(spark, tmp_path_factory):
    cfg, source = synthetic_lake(spark, tmp_path_factory.mktemp("drift"), transactions(), {
        "evaluation": {"candidates": ["seasonal_naive", "dot", "combo_median"], "intermittent_candidates": ["tsb"],
                       "windows": 2},
        "dataset": {"horizon": 7},
        "schedule": {"retrain": "monthly", "retrain_day_of_month": 1},
    })
    ingest(spark, cfg, LATER, "ingest", source=str(source))
    features(spark, cfg, TRAINED, "features-T")
    # through the job runner: the run log records the table versions each job read (score's is
    # replayed below), and evaluate and train are tracked in MLflow
    for job in (evaluate_job, train_job, score_job):
        name = job.__name__.split(".")[-1]
        assert job.main(["--run-date", str(TRAINED), "--config", str(cfg.path), "--run-id", f"{name}-T"]) == 0
    # eight nights later: the actuals of T's forecasts have arrived
    features(spark, cfg, LATER, "features-L")
    accuracy(spark, cfg, LATER, "accuracy-L")
    metrics = monitor(spark, cfg, LATER, "monitor-L")
    return cfg, metrics


def drift_rows(spark, run_date):
    return {r.segment_id: r for r in spark.table("gold.drift").filter(F.col("run_date") == run_date).collect()}


def test_the_monitor_flags_the_shifted_segments_and_only_them(spark, drifted):
    cfg, metrics = drifted
    rows = drift_rows(spark, LATER)
    assert set(rows) == {f"S{i}" for i in range(1, 9)}
    assert {s for s, r in rows.items() if r.retrain} == set(SHIFTED)
    for s in SHIFTED:
        r = rows[s]
        assert r.status == "judged" and r.trained_on == TRAINED and r.n_recent == 7  # the horizon
        assert r.data_drift and r.concept_drift and r.level_ratio > 2
        assert r.error_ratio > cfg.monitor.error_ratio and r.promised_mae > 0
        assert {"level", "error_ratio"} <= set(r.reasons.split(","))
    for s in set(rows) - set(SHIFTED):
        assert not rows[s].data_drift and not rows[s].concept_drift and rows[s].reasons is None
        assert 0.5 < rows[s].error_ratio < 2
    assert metrics.detail["drifting"] == 2 and metrics.detail["drifting_share"] == pytest.approx(0.25)
    summary = spark.table("gold.drift_summary").filter(F.col("run_date") == LATER).first()
    assert (summary.segments, summary.drifting, summary.level, summary.error_ratio) == (8, 2, 2, 2)


def test_a_rerun_of_the_monitor_changes_nothing(spark, drifted):
    cfg, _ = drifted
    before = sorted(tuple(r) for r in spark.table("gold.drift").drop("run_id").collect())
    monitor(spark, cfg, LATER, "monitor-again")
    assert sorted(tuple(r) for r in spark.table("gold.drift").drop("run_id").collect()) == before


def test_drift_retrains_only_the_drifting_segments_and_their_forecasts_follow(spark, drifted):
    cfg, _ = drifted
    decision = training_decision(cfg, LATER)
    assert (decision.train, decision.scope) == (True, "drifting")
    assert "2 of 8 segments drifting (25.0%)" in decision.why
    evaluate(spark, cfg, LATER, "evaluate-L", scope=decision.scope)
    train(spark, cfg, LATER, "train-L", scope=decision.scope)
    score(spark, cfg, LATER, "score-L")
    retrained = spark.table("gold.models").filter(F.col("run_date") == LATER)
    assert {r.segment_id for r in retrained.select("segment_id").collect()} == set(SHIFTED)
    forecasts = spark.table("gold.forecasts").filter(F.col("run_date") == LATER)
    level = {r.segment_id: r.level for r in forecasts.groupBy("segment_id").agg(F.avg("yhat").alias("level")).collect()}
    versions = {r.segment_id: r.model_version for r in forecasts.select("segment_id", "model_version").distinct().collect()}
    for s in SHIFTED:
        assert level[s] > 45, level  # the new level is 60, the old 20
        assert versions[s].startswith(f"{LATER:%Y%m%d}-")
    for s in set(level) - set(SHIFTED):
        assert 15 < level[s] < 25, level
        assert versions[s].startswith(f"{TRAINED:%Y%m%d}-")  # kept their models


def test_the_run_report_shows_drift_over_time_and_the_drifting_segments(drifted, tmp_path):
    from jobs import report

    cfg, _ = drifted
    out = tmp_path / "report.html"
    assert report.main(["--run-date", str(LATER), "--config", str(cfg.path), "--out", str(out)]) == 0
    drift = out.read_text().split("<h2>Drift</h2>")[1]
    assert "<img" in drift and "level,error_ratio" in drift and ">S1<" in drift and ">S3<" not in drift


def test_a_score_run_is_reproduced_from_the_table_versions_it_recorded(spark, drifted):
    """Runs last: it refits the training date's models. The run log of score-T recorded the
    version of every table it read; replaying it reads those versions (Delta time travel) and
    writes the same forecasts although the models and the demand have changed since."""
    import json

    cfg, _ = drifted

    def forecasts():
        return sorted(tuple(r) for r in spark.table("gold.forecasts").filter(F.col("run_date") == TRAINED)
                      .drop("run_id").collect())

    original = forecasts()
    logged = spark.table("gold.pipeline_runs").filter("run_id = 'score-T' and status = 'success'").first()
    versions = json.loads(logged.detail)["input_versions"]
    assert {"gold.models", "silver.demand"} <= set(versions)
    # the inputs change: the training date is re-evaluated and refitted with the baseline only
    naive = write_config(cfg.path.parent.parent / "naive", {
        "lake": {"root": cfg.lake_root}, "dataset": cfg.raw["dataset"], "schedule": cfg.raw["schedule"],
        "evaluation": {**cfg.raw["evaluation"], "candidates": ["seasonal_naive"]},
    })
    evaluate(spark, naive, TRAINED, "evaluate-T2")
    train(spark, naive, TRAINED, "train-T2")
    score(spark, cfg, TRAINED, "score-T2")
    assert forecasts() != original
    assert score_job.main(["--run-date", str(TRAINED), "--config", str(cfg.path), "--replay", "score-T"]) == 0
    assert forecasts() == original


def test_evaluate_and_train_are_tracked_mlflow_runs_with_their_input_versions(spark, drifted):
    import json

    from mlflow.tracking import MlflowClient

    from jobs.common.tracking import config_hash, tracking_uri

    cfg, _ = drifted
    uri = tracking_uri(cfg)
    assert uri == f"sqlite:///{cfg.lake_root}/_mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lakecast")
    runs = {r.data.tags["lakecast.run_id"]: r for r in client.search_runs([experiment.experiment_id])}
    assert {"evaluate-T", "train-T"} <= set(runs)
    log = {r.run_id: json.loads(r.detail) for r in spark.table("gold.pipeline_runs").filter("status = 'success'").collect()}
    for run_id, run in runs.items():
        assert run.info.status == "FINISHED" and run.data.params["config_hash"] == config_hash(cfg)
        assert run.data.params["candidates"] == "seasonal_naive,dot,combo_median"
        assert run.data.tags["lakecast.code_version"].startswith("0.1.0")
        recorded = {k.removeprefix("input_version."): int(v) for k, v in run.data.tags.items()
                    if k.startswith("input_version.")}
        assert recorded == log[run_id]["input_versions"] and "silver.demand" in recorded
        assert log[run_id]["mlflow_run_id"] == run.info.run_id
    held_out = runs["evaluate-T"].data.metrics
    assert held_out["overall.held_out.portfolio rule.mean_mase"] > 0 and held_out["segments_ok"] == 8
    assert runs["train-T"].data.metrics["segments_ok"] == 8
