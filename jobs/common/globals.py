"""What the evaluate, train and score jobs share about the global model's Spark side: which
training group a segment is in, what its task is given, and the schema of the group's forecasts."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType

from jobs.common.config import Config


def global_group(cfg: Config) -> Column:
    """A segment's training group (``model.global_lgbm``): the value of the ``group_by`` key,
    else its hash bucket of ``buckets``, else one group for all."""
    g = cfg.model.global_lgbm
    if g.group_by:
        return F.coalesce(F.col(g.group_by).cast("string"), F.lit("(null)"))
    if g.buckets > 1:
        return F.pmod(F.xxhash64("segment_id"), F.lit(g.buckets)).cast("string")
    return F.lit("all")


def global_columns(cfg: Config) -> list[str]:
    """What a group's task hands the global model of each segment: its calendar, the regressors
    and the static features (``model.global_lgbm.static_features``)."""
    return ["segment_id", "ds", "y", "is_closed", *cfg.dataset.regressors, *cfg.model.global_lgbm.static_features]


def global_schema(columns: list[str]) -> StructType:
    """The Spark schema of the group's forecasts (``columns``:
    :data:`~jobs.evaluation.global_forecasts.GLOBAL_COLUMNS`, and what training adds): dates,
    figures, counts, else strings."""
    types = {"origin": DateType(), "ds": DateType(), "yhat": DoubleType(), "yhat_lower": DoubleType(),
             "yhat_upper": DoubleType(), "seconds": DoubleType(), "segments": IntegerType()}
    return StructType([StructField(c, types.get(c, StringType()), True) for c in columns])
