"""When to retrain, decided without Spark (the DAG's branch uses it).

Every segment is re-evaluated and retrained on the cadence's days and whenever no model exists
yet for the run date; on other days, the segments ``lakecast monitor`` flags as drifting are
(``monitor.retrain_on_drift``), or all of them when more than ``monitor.retrain_all_share`` of
them drift; otherwise the current models score. Reads the lake's tables with delta-rs, not a JVM.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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


def drift_counts(cfg: Config, run_date: dt.date) -> tuple[int, int] | None:
    """(segments with a live model, segments flagged to retrain) in ``gold.drift`` for
    ``run_date``; None when the monitor has not run for it."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(cfg.table("drift").path)
    except TableNotFoundError:
        return None
    rows = table.to_pyarrow_dataset().to_table(columns=["status", "retrain"],
                                               filter=pads.field("run_date") == run_date)
    if rows.num_rows == 0:
        return None
    with_model = pc.sum(pc.not_equal(rows["status"], "no_model")).as_py() or 0
    return with_model, pc.sum(rows["retrain"]).as_py() or 0


@dataclass(frozen=True)
class TrainingDecision:
    """Whether ``run_date`` re-evaluates and retrains, which segments (``scope``: all or
    drifting), and why, in words."""

    train: bool
    scope: str
    why: str

    def __str__(self) -> str:
        scope = ", drifting segments only" if self.train and self.scope != "all" else ""
        return f"training: {'yes' if self.train else 'no'}{scope} ({self.why})"


def training_decision(cfg: Config, run_date: dt.date) -> TrainingDecision:
    """The retraining decision for ``run_date`` (after ``lakecast monitor`` ran for it)."""
    s, m = cfg.schedule, cfg.monitor
    if due_by_cadence(run_date, s.retrain, s.retrain_weekday, s.retrain_day_of_month):
        return TrainingDecision(True, "all", f"retrain day ({s.retrain})")
    if not has_model_for(cfg, run_date):
        return TrainingDecision(True, "all", "no model trained on or before the run date yet")
    if not m.retrain_on_drift:
        return TrainingDecision(False, "all", f"not a retrain day ({s.retrain}); retraining on drift is off")
    counts = drift_counts(cfg, run_date)
    if counts is None:
        return TrainingDecision(False, "all", f"not a retrain day ({s.retrain}); no drift figures for the "
                                              "run date (lakecast monitor did not run)")
    with_model, drifting = counts
    share = drifting / with_model if with_model else 0.0
    figures = f"{drifting} of {with_model} segments drifting ({share:.1%})"
    if drifting and share > m.retrain_all_share:
        return TrainingDecision(True, "all", f"drift: {figures}, above monitor.retrain_all_share "
                                             f"{m.retrain_all_share:.0%}")
    if drifting:
        return TrainingDecision(True, "drifting", f"drift: {figures}; the others keep their models")
    return TrainingDecision(False, "all", f"not a retrain day ({s.retrain}); no segment drifting")
