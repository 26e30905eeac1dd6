"""The names lakecast's layers share, one home each: model families, demand classes, metrics,
choice rules and the lake's tables."""

from __future__ import annotations

# Model families. The forecasting classes take their ``name`` from here.
SEASONAL_NAIVE = "seasonal_naive"
CROSTON = "croston"
TSB = "tsb"
ADIDA = "adida"
THETA = "theta"
ETS = "ets"
PROPHET = "prophet"
COMBO_MEAN = "combo_mean"
COMBO_MEDIAN = "combo_median"
POOL = "pool"

# Simplest first: ties in a backtest go to the family listed earlier.
FAMILIES = (SEASONAL_NAIVE, CROSTON, TSB, ADIDA, THETA, ETS, PROPHET, COMBO_MEAN, COMBO_MEDIAN, POOL)
# The baseline every model is measured against and the fallback of every segment.
BASELINE = SEASONAL_NAIVE
# Families made for intermittent demand: candidates only for segments flagged intermittent.
INTERMITTENT_FAMILIES = (CROSTON, TSB, ADIDA)
# Candidates scored from the other candidates' forecasts (no fits of their own in backtests).
COMBINATIONS = (COMBO_MEAN, COMBO_MEDIAN, POOL)
# Candidate name of a production model whose settings differ from every configured candidate.
PRODUCTION = "production"

# Demand classes of a segment.
SMOOTH = "smooth"
INTERMITTENT = "intermittent"

# Error metrics of a backtest window, in the order of gold.backtest_metrics' columns.
METRICS = ("mae", "rmse", "wape", "smape", "mase", "bias", "coverage", "pinball", "cost")
# The metrics a model may be chosen on (bias and coverage are not losses).
CHOICE_METRICS = ("mase", "wape", "mae", "rmse", "smape", "pinball", "cost")

# How a segment's model is chosen (config evaluation.rule).
RULES = ("portfolio", "per_segment")

# The lake: layers, and each logical table's default ``layer.table`` name (config may rename).
LAYERS = ("bronze", "silver", "gold")
TABLES = {
    "sales": "bronze.sales",
    "quarantine": "bronze.quarantine",
    "demand": "silver.demand",
    "models": "gold.models",
    "forecasts": "gold.forecasts",
    "pipeline_runs": "gold.pipeline_runs",
    "backtest_metrics": "gold.backtest_metrics",
    "model_selection": "gold.model_selection",
    "forecast_accuracy": "gold.forecast_accuracy",
}
