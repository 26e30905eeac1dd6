"""Which contract in ``schemas/`` each logical table follows, for a given configuration."""

from __future__ import annotations

from jobs.common.config import Config
from jobs.core.errors import ConfigError
from schemas import TableContract
from schemas.bronze import QUARANTINE, SOURCE_FILES, sales_contract
from schemas.gold import (
    PIPELINE_RUNS,
    backtest_forecasts_contract,
    backtest_metrics_contract,
    drift_contract,
    forecast_accuracy_contract,
    forecasts_contract,
    global_models_contract,
    model_selection_contract,
    models_contract,
)
from schemas.silver import demand_contract


def contract_for(cfg: Config, logical: str) -> TableContract:
    """The contract of table ``logical`` (``"sales"``, ``"demand"``, ...) under ``cfg``'s dataset."""
    ds = cfg.dataset
    keys, regressors = ds.segment_keys, tuple(ds.regressors)
    factories = {
        "sales": lambda: sales_contract(ds.attributes, regressors),
        "quarantine": lambda: QUARANTINE,
        "source_files": lambda: SOURCE_FILES,
        "demand": lambda: demand_contract(keys, regressors),
        "models": lambda: models_contract(keys),
        "forecasts": lambda: forecasts_contract(keys),
        "global_models": global_models_contract,
        "pipeline_runs": lambda: PIPELINE_RUNS,
        "backtest_metrics": lambda: backtest_metrics_contract(keys),
        "backtest_forecasts": lambda: backtest_forecasts_contract(keys),
        "model_selection": lambda: model_selection_contract(keys),
        "forecast_accuracy": lambda: forecast_accuracy_contract(keys),
        "drift": lambda: drift_contract(keys),
    }
    if logical not in factories:
        raise ConfigError(f"no contract for table {logical!r}; known: {sorted(factories)}")
    return factories[logical]()
