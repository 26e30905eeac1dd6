"""Which segments a retraining covers (``--scope`` of evaluate and train): all of them, or only
those ``lakecast monitor`` flagged for the run date (``gold.drift.retrain``)."""

from __future__ import annotations

import argparse
import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.lake import ensure_table
from jobs.core.errors import LakecastError
from jobs.core.names import SCOPES


def add_scope_arg(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--scope", choices=SCOPES, default="all",
                        help="all segments (default), or only those gold.drift flags for the run date "
                             "(run `lakecast monitor` first); the others keep their models")
    parser.add_argument("--reason", default=None,
                        help="why this retraining runs (the DAG's decision), recorded in the run log")
    return parser


def in_scope(spark: SparkSession, cfg: Config, history: DataFrame, run_date: dt.date, scope: str) -> DataFrame:
    """``history`` restricted to the segments of ``scope``.

    Raises:
        LakecastError: for ``drifting`` when the monitor has not run for the date.
    """
    if scope == "all":
        return history
    drift = spark.table(ensure_table(spark, cfg, "drift").name).filter(F.col("run_date") == F.lit(run_date))
    if drift.limit(1).count() == 0:
        raise LakecastError(f"{cfg.table('drift').name} has no rows for {run_date}; run "
                            f"`lakecast monitor --run-date {run_date}` before --scope drifting")
    return history.join(drift.filter("retrain").select("segment_id"), "segment_id", "left_semi")
