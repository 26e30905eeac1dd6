"""When to retrain: the cadence from config, decided without Spark (the DAG's branch uses it).

Models are retrained on the cadence's days and whenever no model exists yet for the run date;
on other days the current models score. Reads the models table with delta-rs, not a JVM.
"""

from __future__ import annotations

import datetime as dt

from jobs.common.config import WEEKDAYS, Config


def due_by_cadence(run_date: dt.date, cadence: str, weekday: str = "monday", day_of_month: int = 1) -> bool:
    """True when ``run_date`` is a retraining day for ``cadence`` (daily, weekly or monthly)."""
    if cadence == "daily":
        return True
    if cadence == "weekly":
        return run_date.weekday() == WEEKDAYS.index(weekday)
    if cadence == "monthly":
        return run_date.day == day_of_month
    raise ValueError(f"retrain cadence must be daily, weekly or monthly, got {cadence!r}")


def maintenance_due(cfg: Config, run_date: dt.date) -> bool:
    """True on the weekday the config sets for lakecast maintain."""
    return due_by_cadence(run_date, "weekly", cfg.maintenance.weekday)


def has_model_for(cfg: Config, run_date: dt.date) -> bool:
    """True when ``gold.models`` holds a model trained on or before ``run_date``."""
    import pyarrow.dataset as pads
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(cfg.table("models").path)
    except TableNotFoundError:
        return False
    dataset = table.to_pyarrow_dataset()
    return dataset.count_rows(filter=pads.field("run_date") <= run_date) > 0


def training_decision(cfg: Config, run_date: dt.date) -> tuple[bool, str]:
    """(train?, why) for ``run_date``."""
    s = cfg.schedule
    if due_by_cadence(run_date, s.retrain, s.retrain_weekday, s.retrain_day_of_month):
        return True, f"retrain day ({s.retrain})"
    if not has_model_for(cfg, run_date):
        return True, "no model trained on or before the run date yet"
    return False, f"not a retrain day ({s.retrain}); scoring with the current models"
