"""The names lakecast's layers share, one home each: model families, demand classes, metrics,
choice rules and the lake's tables."""

from __future__ import annotations

# Model families. The forecasting classes take their ``name`` from here.
ZERO = "zero"
SEASONAL_NAIVE = "seasonal_naive"
CROSTON = "croston"
TSB = "tsb"
ADIDA = "adida"
THETA = "theta"
DOT = "dot"
ETS = "ets"
CES = "ces"
ARIMA = "arima"
PROPHET = "prophet"
# Prophet(...) arguments lakecast passes on from config model.prophet (holidays come from
# dataset.holidays_country, regressors from dataset.regressors; stan_backend stays Prophet's own).
PROPHET_SETTINGS = ("growth", "changepoints", "n_changepoints", "changepoint_range", "yearly_seasonality",
                    "weekly_seasonality", "daily_seasonality", "seasonality_mode", "seasonality_prior_scale",
                    "holidays_prior_scale", "holidays_mode", "changepoint_prior_scale", "mcmc_samples",
                    "interval_width", "uncertainty_samples", "scaling")
# How Prophet models are fitted (config model.prophet.fitter): "batch", many at once by
# prophet-batch's exact batched MAP solvers (a log posterior never below Stan's, 4-5x faster in
# evaluate); "stan", one after the other by Stan's L-BFGS. The first is the default.
PROPHET_FITTERS = ("batch", "stan")
# the global model: one LightGBM learned across a group's segments (jobs.models.global_lgbm)
GLOBAL_LGBM = "global_lgbm"
COMBO_MEAN = "combo_mean"
COMBO_MEDIAN = "combo_median"
POOL = "pool"
ENSEMBLE = "ensemble"
SCUM = "scum"

# Simplest first: ties in a backtest go to the family listed earlier.
FAMILIES = (ZERO, SEASONAL_NAIVE, CROSTON, TSB, ADIDA, DOT, THETA, ETS, CES, ARIMA, PROPHET, GLOBAL_LGBM, COMBO_MEAN, COMBO_MEDIAN,
            SCUM, POOL, ENSEMBLE)
# Families fitted once per training group over all its segments, not per segment.
GLOBAL_FAMILIES = (GLOBAL_LGBM,)
# The baseline every model is measured against and the fallback of every segment.
BASELINE = SEASONAL_NAIVE
# Families made for intermittent demand: candidates only for segments flagged intermittent.
INTERMITTENT_FAMILIES = (CROSTON, TSB, ADIDA)
# Candidates scored from the other candidates' forecasts (no fits of their own in backtests).
COMBINATIONS = (COMBO_MEAN, COMBO_MEDIAN, SCUM, POOL, ENSEMBLE)
# How each combination combines its members' forecasts, period by period (jobs.core.combine).
COMBINATION_METHODS = {COMBO_MEAN: "mean", COMBO_MEDIAN: "median", SCUM: "median", POOL: "mean", ENSEMBLE: "weighted"}
# SCUM (Petropoulos and Svetunkov, 2020): the median of these strong, cheap families, those of
# them that are configured candidates.
SCUM_MEMBERS = (ETS, CES, ARIMA, DOT)
# Combinations with fixed members (nothing learned from the backtest).
FIXED_COMBINATIONS = (COMBO_MEAN, COMBO_MEDIAN, SCUM)
# What an ensemble may draw on besides the fitted candidates: the fixed combinations and the pool
# (whose window forecasts are chosen only on earlier windows, so they are honest too).
ENSEMBLE_COMBINATIONS = (*FIXED_COMBINATIONS, POOL)
# Candidate name of a production model whose settings differ from every configured candidate.
PRODUCTION = "production"

# Demand classes of a segment.
SMOOTH = "smooth"
INTERMITTENT = "intermittent"

# A segment's lifecycle at a run date (silver.demand.lifecycle), decided by the features job:
# inactive (no demand in the last features.inactive_periods), new (too little history for a
# model), intermittent (at least evaluation.intermittent_zero_share of its open periods without
# demand), else active.
ACTIVE = "active"
NEW = "new"
INACTIVE = "inactive"
LIFECYCLES = (ACTIVE, INTERMITTENT, NEW, INACTIVE)

# What a period without a source row means (config dataset.missing_periods): no demand (a
# transactions feed: zero), or not reported (a series feed: no value; a series ends at its last
# report).
MISSING_PERIODS = ("no_demand", "not_reported")
# What an inactive segment is forecast with (config features.inactive_policy).
INACTIVE_POLICIES = ("zero", "baseline")

# Error metrics of a backtest window, in the order of gold.backtest_metrics' columns.
METRICS = ("mae", "rmse", "wape", "smape", "mase", "bias", "coverage", "pinball", "cost")
# The metrics a model may be chosen on (bias and coverage are not losses).
CHOICE_METRICS = ("mase", "wape", "mae", "rmse", "smape", "pinball", "cost")

# How a segment's model is chosen (config evaluation.rule): the ensemble of its demand class;
# the portfolio best of its class unless its own champion beats it by the margin in every window;
# or its own champion.
RULES = ("ensemble", "portfolio", "per_segment")

# The lake: layers, and each logical table's default ``layer.table`` name (config may rename).
LAYERS = ("bronze", "silver", "gold")
TABLES = {
    "sales": "bronze.sales",
    "quarantine": "bronze.quarantine",
    "source_files": "bronze.source_files",
    "demand": "silver.demand",
    "models": "gold.models",
    "global_models": "gold.global_models",
    "forecasts": "gold.forecasts",
    "pipeline_runs": "gold.pipeline_runs",
    "backtest_metrics": "gold.backtest_metrics",
    "backtest_forecasts": "gold.backtest_forecasts",
    "model_selection": "gold.model_selection",
    "forecast_accuracy": "gold.forecast_accuracy",
    "drift": "gold.drift",
}

# Why lakecast monitor flags a segment (gold.drift.reasons): the data since the live model was
# trained differs from what it learned on (level, spread, share of zero periods), or its
# realized errors broke what its backtest promised (error ratio, CUSUM alarm, one-sided errors).
DATA_DRIFT_REASONS = ("level", "spread", "zero_share")
CONCEPT_DRIFT_REASONS = ("error_ratio", "cusum", "bias")
# gold.drift.status: judged, or why not (too few periods since training, no model yet).
DRIFT_STATUSES = ("judged", "too_few_periods", "no_model")
# Which segments evaluate and train cover (--scope): all of them, or those gold.drift flags.
SCOPES = ("all", "drifting")
