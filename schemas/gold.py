"""Contracts of the gold layer: models and forecasts, read by BI tools and analysts."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructType,
    TimestampType,
)

from jobs.core.names import METRICS
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
                col("status", StringType(),
                    "ok, fallback when the baseline replaced the model, or inactive (no recent demand: "
                    "features.inactive_policy)", False),
                col("reason", StringType(), "Why the segment fell back (null when ok)"),
                col("model_spec", StringType(), "Family and settings as JSON, to refit the same model", False),
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


def global_models_contract() -> TableContract:
    """``gold.global_models``: each training group's global model by training run date."""
    return TableContract(
        schema=StructType(
            [
                col("group", StringType(),
                    "Training group (model.global_lgbm: the group_by key's value, a hash bucket, or all)", False),
                col("model_spec", StringType(), "Global family and settings as JSON (as in gold.models' specs)",
                    False),
                col("origin", DateType(), "Last period the model was trained on", False),
                col("segments", IntegerType(), "Segments of the group it was trained on", False),
                col("model_json", StringType(),
                    "Settings, LightGBM's text model, conformal scores and library versions as JSON (no "
                    "pickle); forecasts need only the segments' recent history", False),
                col("model_version", StringType(), "<run date>-<hash of the model JSON>", False),
                col("run_date", DateType(), "Training run date", False),
                col("run_id", StringType(), "Training run", False),
            ]
        ),
        comment="Global models (one per training group and global spec) by training run date; score "
                "forecasts segments that are new since training with the current one.",
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
                col("status", StringType(),
                    "ok, fallback when the baseline (or, for a segment new since training, its group's global "
                    "model) produced the row, or inactive (no recent demand)", False),
                col("reason", StringType(), "Why the row comes from the fallback (null when ok)"),
                col("run_date", DateType(), "Scoring run date", False),
                col("run_id", StringType(), "Scoring run", False),
            ]
        ),
        comment="Forecasts per segment and period; one set per scoring run date.",
        partition_by=("run_date",),
        zorder_by=("segment_id",),
    )


# What each metric of jobs.core.names.METRICS means (the columns follow METRICS' order).
METRIC_COMMENTS = {
    "mae": "Mean absolute error",
    "rmse": "Root mean squared error",
    "wape": "Sum of absolute errors / sum of actuals",
    "smape": "Symmetric mean absolute percentage error (0 to 2)",
    "mase": "MAE / in-sample seasonal-naive MAE of the training window",
    "bias": "Mean of forecast - actual (positive: over-forecast)",
    "coverage": "Share of actuals inside the prediction interval",
    "pinball": "Mean pinball loss of the interval bounds at their quantile levels",
    "cost": "Mean cost per period: unit costs of under- and over-forecast from config",
}


def backtest_metrics_contract(keys: Iterable[str]) -> TableContract:
    """``gold.backtest_metrics``: rolling-origin errors per segment, candidate and window."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("model", StringType(),
                    "Candidate: a model family, a combination, the pool, or production (its settings differ)", False),
                col("window", IntegerType(), "Backtest window, 1 = oldest", False),
                col("cutoff", DateType(), "Last training period of the window"),
                col("n_train", IntegerType(), "Open periods the candidate was fitted on", False),
                col("n_test", IntegerType(), "Open periods the errors are measured on", False),
                col("actual_total", DoubleType(), "Sum of the actuals of the open test periods", False),
                col("status", StringType(), "ok, failed (reason says why) or skipped (too little history)", False),
                col("reason", StringType(),
                    "Why the candidate failed or the window was skipped; for the pool, its members and why"),
            ]
            + [col(m, DoubleType(), METRIC_COMMENTS[m]) for m in METRICS]
            + [
                col("seconds", DoubleType(), "Fit and predict time (a combination: its members' sum)"),
                col("run_date", DateType(), "Evaluation run date", False),
                col("run_id", StringType(), "Evaluation run", False),
                col("spec_hash", StringType(),
                    "A fitted candidate's spec and fitter, hashed: with cutoff and history_hash, what a later "
                    "run reuses the window forecast by (null for the combinations)"),
                col("history_hash", StringType(),
                    "Hash of the window's training data and test periods the candidate was fitted on"),
            ]
        ),
        comment="Rolling-origin backtest errors per segment, candidate and window; closed periods excluded.",
        partition_by=("run_date",),
    )


def backtest_forecasts_contract(keys: Iterable[str]) -> TableContract:
    """``gold.backtest_forecasts``: every candidate's forecast of every backtest window."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("model", StringType(), "Candidate (as in gold.backtest_metrics)", False),
                col("window", IntegerType(), "Backtest window, 1 = oldest", False),
                col("cutoff", DateType(), "Last training period of the window", False),
                col("ds", DateType(), "Period forecast (open periods only)", False),
                col("actual", DoubleType(), "Demand that happened", False),
                col("yhat", DoubleType(), "Point forecast", False),
                col("yhat_lower", DoubleType(), "Lower bound of the prediction interval", False),
                col("yhat_upper", DoubleType(), "Upper bound of the prediction interval", False),
                col("scale", DoubleType(),
                    "MASE's denominator for the window (in-sample seasonal-naive MAE); null when zero"),
                col("run_date", DateType(), "Evaluation run date", False),
                col("run_id", StringType(), "Evaluation run", False),
            ]
        ),
        comment="Backtest forecasts per segment, candidate, window and period: any combination of the "
                "candidates can be scored again from here without refitting.",
        partition_by=("run_date",),
        zorder_by=("segment_id",),
    )


def model_selection_contract(keys: Iterable[str]) -> TableContract:
    """``gold.model_selection``: per segment and evaluation date, the choice and the gate's decision."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("demand_class", StringType(),
                    "smooth, or intermittent (zero share >= evaluation.intermittent_zero_share)", False),
                col("metric", StringType(), "Metric the choice is made on (config evaluation.metric)", False),
                col("scores", MapType(StringType(), DoubleType()), "Candidate -> mean metric over the windows"),
                col("n_windows", IntegerType(), "Backtest windows the scores average over", False),
                col("champion", StringType(), "Best candidate (ties go to the simpler model)"),
                col("portfolio_model", StringType(),
                    "Best strategy over all segments of the demand class (rule portfolio)"),
                col("ensemble_weights", MapType(StringType(), DoubleType()),
                    "The demand class's ensemble: member -> weight, learned across the class's segments"),
                col("champion_score", DoubleType(), "The champion's score"),
                col("production_model", StringType(), "Family in production before this run (null: none)"),
                col("production_score", DoubleType(), "Production's score on the same windows"),
                col("decision", StringType(),
                    "promoted, kept (production is the champion), refused (gate), forced or fallback", False),
                col("promoted_model", StringType(),
                    "Candidate train fits: a family, or production (its settings kept)", False),
                col("promoted_spec", StringType(), "Family and settings train fits (JSON)", False),
                col("promoted_score", DoubleType(), "Score of the promoted model"),
                col("naive_score", DoubleType(), "Seasonal naive's score on the same windows"),
                col("value_added", DoubleType(), "1 - promoted score / seasonal-naive score (forecast value added)"),
                col("promoted_cost", DoubleType(), "Cost-weighted error of the promoted model"),
                col("naive_cost", DoubleType(), "Cost-weighted error of seasonal naive"),
                col("reason", StringType(), "Why this decision, in words", False),
                col("run_date", DateType(), "Evaluation run date", False),
                col("run_id", StringType(), "Evaluation run", False),
            ]
        ),
        comment="Model choice per segment: scores, champion, promotion gate decision and value added.",
        partition_by=("run_date",),
    )


def forecast_accuracy_contract(keys: Iterable[str]) -> TableContract:
    """``gold.forecast_accuracy``: past forecasts scored against the actuals that arrived."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("forecast_run_date", DateType(), "Run date of the forecast", False),
                col("ds", DateType(), "Period forecast", False),
                col("horizon_step", IntegerType(), "Periods ahead of the forecast origin", False),
                col("model", StringType(), "Model family that produced the forecast", False),
                col("model_version", StringType(), "Version of the model in gold.models", False),
                col("status", StringType(),
                    "The forecast's status: ok, fallback, or inactive (left out of accuracy summaries)", False),
                col("actual", DoubleType(), "Demand that happened (open periods only)", False),
                col("yhat", DoubleType(), "Point forecast", False),
                col("error", DoubleType(), "yhat - actual", False),
                col("abs_error", DoubleType(), "|yhat - actual|", False),
                col("in_interval", BooleanType(), "Actual inside [yhat_lower, yhat_upper]", False),
                col("cost", DoubleType(), "Cost of the error with the configured unit costs", False),
                col("as_of_date", DateType(), "Run date that last inserted or changed the row", False),
            ]
        ),
        comment="Realized accuracy: every past forecast period with an actual, by forecast run date.",
        partition_by=("forecast_run_date",),
        zorder_by=("segment_id",),
    )


def drift_contract(keys: Iterable[str]) -> TableContract:
    """``gold.drift``: per segment and run date, whether the data or the live model drifted."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("model_version", StringType(), "The live model judged (trained before the run date); null: none"),
                col("model", StringType(), "Its family"),
                col("trained_on", DateType(), "Run date the live model was trained on"),
                col("status", StringType(),
                    "judged, too_few_periods (fewer unseen periods than monitor.min_periods) or no_model", False),
                col("n_reference", IntegerType(), "Open periods of the reference window (the end of the training data)"),
                col("n_recent", IntegerType(), "Open periods since the live model was trained (at most monitor.recent_periods)"),
                col("level_reference", DoubleType(), "Mean demand per open period, reference window"),
                col("level_recent", DoubleType(), "Mean demand per open period, recent window"),
                col("level_ratio", DoubleType(), "level_recent / level_reference (null: no demand in the reference)"),
                col("level_p", DoubleType(), "Mann-Whitney U two-sided p-value, recent vs reference"),
                col("spread_ratio", DoubleType(), "Standard deviation recent / reference (null: constant reference)"),
                col("spread_p", DoubleType(), "Brown-Forsythe (Levene, median-centred) p-value"),
                col("zero_share_reference", DoubleType(), "Share of open periods without demand, reference"),
                col("zero_share_recent", DoubleType(), "Share of open periods without demand, recent"),
                col("zero_share_p", DoubleType(), "Fisher exact test p-value on the zero counts"),
                col("p_threshold", DoubleType(), "A test flags below this p-value (monitor.p_value)", False),
                col("data_drift", BooleanType(), "Level, spread or zero share changed (test and size)", False),
                col("n_errors", IntegerType(), "Periods with a realized error of the live model"),
                col("realized_mae", DoubleType(), "Live model's mean absolute error on those periods"),
                col("promised_mae", DoubleType(), "Mean absolute error its backtest promised (mean over windows)"),
                col("error_ratio", DoubleType(), "realized_mae / promised_mae (null: nothing to compare, see note)"),
                col("error_ratio_threshold", DoubleType(), "Flags above this ratio (monitor.error_ratio)", False),
                col("cusum", DoubleType(), "Largest one-sided CUSUM of the errors in units of promised_mae"),
                col("cusum_threshold", DoubleType(), "CUSUM alarm threshold (monitor.cusum_h)", False),
                col("bias", DoubleType(), "Mean error / mean actual on the realized periods"),
                col("bias_p", DoubleType(), "Sign test p-value (binomial) of the errors' signs"),
                col("concept_drift", BooleanType(), "Errors broke the backtest's promise (ratio, CUSUM or bias)", False),
                col("retrain", BooleanType(), "Drifting: the next retraining decision covers this segment", False),
                col("reasons", StringType(), "What drifted, comma-separated (level, spread, zero_share, error_ratio, cusum, bias)"),
                col("note", StringType(), "Why a figure is null or the segment was not judged"),
                col("run_date", DateType(), "Run date of the monitor run", False),
                col("run_id", StringType(), "Monitor run", False),
            ]
        ),
        comment="Drift per segment and run date: data drift since training and the live model's realized error.",
        partition_by=("run_date",),
        zorder_by=("segment_id",),
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
            col("status", StringType(), "running (written when the run starts), then success or failed in a second row; a run with only its running row never finished", False),
            col("rows_in", LongType(), "Rows the job read"),
            col("rows_out", LongType(), "Rows the job wrote"),
            col("segments_ok", LongType(), "Segments served by their own model"),
            col("segments_fallback", LongType(), "Segments served by the fallback"),
            col("error", StringType(), "Error message when the job failed"),
            col("detail", StringType(), "JSON with job-specific counts"),
        ]
    ),
    comment="The pipeline's run log: a running row when a job run starts, a success or failed row when it ends.",
)
