"""Contracts of the gold layer: models and forecasts, read by BI tools and analysts."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
    TimestampType,
)

from schemas import TableContract, col
from schemas.silver import segment_columns

MODEL_STATUSES = ("ok", "fallback")


def models_contract(keys: Iterable[str]) -> TableContract:
    """``gold.models``: one fitted model per segment and training run date (history kept)."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("model", StringType(), "Model family used for scoring", False),
                col("status", StringType(), "ok, or fallback when the baseline replaced the model", False),
                col("reason", StringType(), "Why the segment fell back (null when ok)"),
                col("model_json", StringType(), "The fitted model as JSON (Prophet: model_to_json)", False),
                col("fallback_json", StringType(), "Seasonal-naive model fitted on the same history", False),
                col("model_version", StringType(), "<run date>-<hash of the model JSON>", False),
                col("train_start", DateType(), "First period of the training window"),
                col("train_end", DateType(), "Last period of the training window"),
                col("n_obs", IntegerType(), "Open periods the model was fitted on", False),
                col("library_versions", StringType(), "JSON of the library versions that fitted it", False),
                col("run_date", DateType(), "Training run date", False),
                col("run_id", StringType(), "Training run", False),
            ]
        ),
        comment="Per-segment models by training run date; the current one is the latest run date.",
        partition_by=("run_date",),
    )


def forecasts_contract(keys: Iterable[str]) -> TableContract:
    """``gold.forecasts``: the next H periods per segment for each scoring run date."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("ds", DateType(), "Forecast period start", False),
                col("horizon_step", IntegerType(), "1 = the first period after the run date", False),
                col("yhat", DoubleType(), "Point forecast", False),
                col("yhat_lower", DoubleType(), "Lower bound of the prediction interval", False),
                col("yhat_upper", DoubleType(), "Upper bound of the prediction interval", False),
                col("model", StringType(), "Model family that produced the row", False),
                col("model_version", StringType(), "Version of the model in gold.models", False),
                col("status", StringType(), "ok, or fallback when the baseline produced the row", False),
                col("reason", StringType(), "Why the row comes from the fallback (null when ok)"),
                col("run_date", DateType(), "Scoring run date", False),
                col("run_id", StringType(), "Scoring run", False),
            ]
        ),
        comment="Forecasts per segment and period; one set per scoring run date.",
        partition_by=("run_date",),
    )


PIPELINE_RUNS = TableContract(
    schema=StructType(
        [
            col("run_id", StringType(), "Id of the job run", False),
            col("job", StringType(), "ingest, features, train, score, ...", False),
            col("run_date", DateType(), "Run date the job ran for", False),
            col("started_at", TimestampType(), "Start, UTC", False),
            col("finished_at", TimestampType(), "End, UTC", False),
            col("duration_s", DoubleType(), "Wall-clock seconds", False),
            col("status", StringType(), "success or failed", False),
            col("rows_in", LongType(), "Rows the job read"),
            col("rows_out", LongType(), "Rows the job wrote"),
            col("segments_ok", LongType(), "Segments served by their own model"),
            col("segments_fallback", LongType(), "Segments served by the fallback"),
            col("error", StringType(), "Error message when the job failed"),
            col("detail", StringType(), "JSON with job-specific counts"),
        ]
    ),
    comment="One row per job run, failed ones included: the pipeline's run log.",
)
