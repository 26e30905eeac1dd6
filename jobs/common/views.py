"""The gold views analysts query, created by the jobs that write their tables and by the SQL
endpoint: one definition each."""

from __future__ import annotations

from pyspark.sql import SparkSession

from jobs.common.config import Config
from jobs.core.names import CONCEPT_DRIFT_REASONS, DATA_DRIFT_REASONS, INACTIVE


def create_forecast_views(spark: SparkSession, cfg: Config) -> None:
    """``gold.forecast_latest`` and ``gold.forecast_vs_actual`` (over forecasts and demand)."""
    forecasts = cfg.table("forecasts").name
    demand = cfg.table("demand").name
    gold = cfg.table("forecasts").database
    spark.sql(
        f"""CREATE OR REPLACE VIEW {gold}.forecast_latest
        COMMENT 'The latest forecast run per segment'
        AS SELECT f.* FROM {forecasts} f
        JOIN (SELECT segment_id, max(run_date) AS latest FROM {forecasts} GROUP BY segment_id) l
          ON f.segment_id = l.segment_id AND f.run_date = l.latest"""
    )
    spark.sql(
        f"""CREATE OR REPLACE VIEW {gold}.forecast_vs_actual
        COMMENT 'Past forecasts beside what actually happened (closed periods flagged)'
        AS SELECT f.*, d.y AS actual, d.is_closed, f.yhat - d.y AS error
        FROM {forecasts} f JOIN {demand} d ON f.segment_id = d.segment_id AND f.ds = d.ds"""
    )


def create_accuracy_views(spark: SparkSession, cfg: Config) -> None:
    """``gold.accuracy_by_run_date``: realized WAPE, bias and coverage per forecast run and model
    (inactive segments, forecast zero by policy, left out; WAPE null where nothing was sold)."""
    table = cfg.table("forecast_accuracy")
    spark.sql(
        f"""CREATE OR REPLACE VIEW {table.database}.accuracy_by_run_date
        COMMENT 'Realized accuracy per forecast run date and model family (open periods only)'
        AS SELECT forecast_run_date, model, count(*) AS periods,
                  try_divide(sum(abs_error), sum(abs(actual))) AS wape,
                  avg(error) AS bias,
                  avg(CAST(in_interval AS DOUBLE)) AS coverage,
                  avg(cost) AS cost
        FROM {table.name} WHERE status != '{INACTIVE}' GROUP BY forecast_run_date, model"""
    )


def create_drift_views(spark: SparkSession, cfg: Config) -> None:
    """``gold.drift_summary``: per monitor run date, the segments judged and the share drifting,
    in total and per reason."""
    table = cfg.table("drift")
    reasons = ", ".join(f"count_if(array_contains(split(reasons, ','), '{r}')) AS {r}"
                        for r in (*DATA_DRIFT_REASONS, *CONCEPT_DRIFT_REASONS))
    spark.sql(
        f"""CREATE OR REPLACE VIEW {table.database}.drift_summary
        COMMENT 'Share of segments drifting per monitor run date, and how many per reason'
        AS SELECT run_date, count(*) AS segments,
                  count_if(status != 'no_model') AS with_model,
                  count_if(status = 'judged') AS judged,
                  count_if(retrain) AS drifting,
                  try_divide(count_if(retrain), count_if(status != 'no_model')) AS drifting_share,
                  count_if(data_drift) AS data_drift, count_if(concept_drift) AS concept_drift, {reasons}
        FROM {table.name} GROUP BY run_date"""
    )


# Each view-creating function and the logical tables it reads.
VIEWS = {create_forecast_views: ("forecasts", "demand"), create_accuracy_views: ("forecast_accuracy",),
         create_drift_views: ("drift",)}
