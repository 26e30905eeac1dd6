"""Odd segments never fail a night and never vanish: the whole chain on a lake that holds an
active, an intermittent, a constant, an all-zero, a discontinued, a new and a one-point segment.
Every one gets a forecast and, when not its own model's, a reason."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs import report
from jobs.accuracy import accuracy
from jobs.evaluate import evaluate
from jobs.features import features
from jobs.ingest import ingest
from jobs.monitor import monitor
from jobs.score import score
from jobs.train import train
from tests.conftest import invoice_line, synthetic_lake

FIRST = dt.date(2011, 6, 23)
LATER = dt.date(2011, 6, 30)
START = dt.date(2010, 1, 4)


def transactions() -> pd.DataFrame:
    """Invoice lines in the bundled data's layout, one segment per StockCode."""
    rng = np.random.default_rng(11)
    days = pd.date_range(START, LATER, freq="D")
    lines = []

    def sell(code: str, day: pd.Timestamp, quantity: int) -> None:
        lines.append(invoice_line(len(lines), code, day, quantity))

    for day in days:
        sell("ACTIVE", day, int(rng.poisson(6)) + 1)
        sell("CONSTANT", day, 5)
        sell("ZEROS", day, 0)  # lines, never any demand
        if rng.random() < 0.2:
            sell("INTERMITTENT", day, int(rng.poisson(3)) + 1)
        if day < pd.Timestamp("2010-06-01"):
            sell("STOPPED", day, int(rng.poisson(4)) + 1)  # nothing for over a year since
        if day >= pd.Timestamp("2011-06-10"):
            sell("NEW", day, int(rng.poisson(4)) + 1)
        if day >= pd.Timestamp("2011-06-25"):
            sell("LATE", day, int(rng.poisson(4)) + 1)  # appears after the last training
    sell("ONEPOINT", pd.Timestamp("2011-06-20"), 3)
    for day in ("2010-03-01", "2010-09-01", "2011-01-10", "2011-05-02"):
        sell("SPARSE", pd.Timestamp(day), 2)
    return pd.DataFrame(lines)


@pytest.fixture(scope="module")
def odd_lake(spark, tmp_path_factory):
    cfg, source = synthetic_lake(spark, tmp_path_factory.mktemp("odd"), transactions(), {
        "evaluation": {"candidates": ["seasonal_naive", "dot", "combo_median", "ensemble"],
                       "intermittent_candidates": ["tsb"], "windows": 2},
        "dataset": {"horizon": 7},
    })
    ingest(spark, cfg, LATER, "ingest", source=str(source))
    features(spark, cfg, FIRST, "features-1")
    evaluated = evaluate(spark, cfg, FIRST, "evaluate-1")
    train(spark, cfg, FIRST, "train-1")
    score(spark, cfg, FIRST, "score-1")
    features(spark, cfg, LATER, "features-2")
    score(spark, cfg, LATER, "score-2")
    accuracy(spark, cfg, LATER, "accuracy-2")
    monitor(spark, cfg, LATER, "monitor-2")
    return cfg, evaluated


EXPECTED = {
    "ACTIVE": "active", "INTERMITTENT": "intermittent", "CONSTANT": "active", "ZEROS": "inactive",
    "STOPPED": "inactive", "NEW": "new", "ONEPOINT": "new", "SPARSE": "intermittent", "LATE": "new",
}


def test_every_segment_has_a_lifecycle_a_forecast_and_a_reason(spark, odd_lake):
    demand = spark.table("silver.demand").groupBy("segment_id").agg(
        F.first("lifecycle").alias("lifecycle"), F.first("ineligible_reason").alias("reason")).collect()
    assert {r.segment_id: r.lifecycle for r in demand} == EXPECTED
    for run_date, segments in ((FIRST, set(EXPECTED) - {"LATE"}), (LATER, set(EXPECTED))):
        f = spark.table("gold.forecasts").filter(F.col("run_date") == F.lit(run_date)).toPandas()
        assert f.groupby("segment_id").size().to_dict() == {s: 7 for s in segments}
        assert np.isfinite(f[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
        first = f[f["horizon_step"] == 1].set_index("segment_id")
        assert first.loc[first["status"] != "ok", "reason"].notna().all()
        assert first.loc[["ZEROS", "STOPPED"], "status"].tolist() == ["inactive", "inactive"]
        assert (f.loc[f["segment_id"].isin(["ZEROS", "STOPPED"]), ["yhat", "yhat_upper"]] == 0).all().all()
        assert first.loc["STOPPED", "reason"].startswith("inactive: no demand in the last 3")
        assert first.loc["ZEROS", "reason"] == "inactive: no demand in the history"
        assert first.loc["CONSTANT", "reason"].startswith("constant")
        assert first.loc["ONEPOINT", "reason"].startswith("too_short")
    # a segment that appeared after the last training is forecast by its baseline, and says so
    late = spark.table("gold.forecasts").filter(f"run_date = '{LATER}' and segment_id = 'LATE'").first()
    assert (late.model, late.status) == ("seasonal_naive", "fallback") and late.reason.startswith("new: no model")


def test_odd_segments_are_left_out_of_backtests_and_the_summaries_do_not_crash(spark, odd_lake):
    backtested = {r.segment_id for r in spark.table("gold.backtest_metrics").select("segment_id").distinct().collect()}
    assert backtested == {"ACTIVE", "INTERMITTENT", "CONSTANT"}
    # the constant series has a zero MASE scale: its MASE is undefined (null), never an error
    constant = spark.table("gold.backtest_metrics").filter("segment_id = 'CONSTANT' and status = 'ok'").toPandas()
    assert len(constant) and constant["mase"].isna().all() and constant["mae"].notna().all()
    _, evaluated = odd_lake
    assert evaluated.detail["decisions"] == {"fallback": 5, "promoted": 3}
    # realized accuracy leaves the inactive segments (zero by policy) out of its summary view
    view = spark.sql("select * from gold.accuracy_by_run_date").toPandas()
    assert len(view) and "zero" not in set(view["model"])
    scored = spark.table("gold.forecast_accuracy").toPandas()
    assert set(scored.loc[scored["status"] == "inactive", "segment_id"]) == {"ZEROS", "STOPPED"}


def test_every_odd_segment_gets_a_drift_row_with_its_reason(spark, odd_lake):
    rows = {r.segment_id: r for r in spark.table("gold.drift").filter(F.col("run_date") == LATER).collect()}
    assert set(rows) == set(EXPECTED)
    assert rows["LATE"].status == "no_model" and not rows["LATE"].retrain and "no model" in rows["LATE"].note
    # a week of zeros after a year of zeros is no drift; a ratio over no demand is null, with why
    for s in ("ZEROS", "STOPPED"):
        assert rows[s].status == "judged" and not rows[s].retrain and rows[s].level_ratio is None
        assert "no demand in the reference" in rows[s].note
    # one sale on 06-20: four periods up to the training date, seven since; judged, no drift
    assert (rows["ONEPOINT"].n_reference, rows["ONEPOINT"].n_recent, rows["ONEPOINT"].retrain) == (4, 7, False)
    assert rows["CONSTANT"].spread_ratio is None and not rows["CONSTANT"].retrain


def test_the_run_report_renders_the_odd_lake(odd_lake, tmp_path):
    out = tmp_path / "report.html"
    cfg, _ = odd_lake
    assert report.main(["--run-date", str(LATER), "--config", str(cfg.path), "--out", str(out)]) == 0
    assert "inactive" in out.read_text()
