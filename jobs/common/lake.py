"""Lake access: the only place that knows where tables live and how they are registered.

Tables are Delta tables at ``<lake_root>/<layer>/<table>`` and are registered in the metastore
as ``<layer>.<table>``, so ``spark.sql("select * from bronze.sales")`` works in any job.
"""

from __future__ import annotations

import logging

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from jobs.common.config import Config, TableRef
from jobs.common.contracts import contract_for

log = logging.getLogger(__name__)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _normalise(location: str) -> str:
    return location.removeprefix("file:").rstrip("/")


def ensure_table(spark: SparkSession, cfg: Config, logical: str) -> TableRef:
    """Create the Delta table (from its contract) and its layer database if missing; check it is
    where the config says.

    Raises:
        RuntimeError: when the metastore has the table at another location than the config.
    """
    ref = cfg.table(logical)
    contract = contract_for(cfg, logical)
    if not spark.catalog.databaseExists(ref.database):
        spark.sql(
            f"CREATE DATABASE IF NOT EXISTS {ref.database} "
            f"LOCATION {_quote(cfg.layer_path(ref.database))}"
        )
    if spark.catalog.tableExists(ref.name):
        registered = spark.sql(f"DESCRIBE DETAIL {ref.name}").first()["location"]
        if _normalise(registered) != _normalise(ref.path):
            raise RuntimeError(
                f"table {ref.name} is registered at {registered} but the config puts it at "
                f"{ref.path}; drop the registration (DROP TABLE {ref.name}, the data stays) or "
                "point the config at the right lake"
            )
        return ref
    (
        DeltaTable.createIfNotExists(spark)
        .tableName(ref.name)
        .location(ref.path)
        .addColumns(contract.schema)
        .partitionedBy(*contract.partition_by)
        .comment(contract.comment)
        .execute()
    )
    log.info("created table %s at %s", ref.name, ref.path)
    return ref


def merge_new_rows(target: TableRef, spark: SparkSession, rows: DataFrame, key: str) -> int:
    """Insert rows whose ``key`` is not yet in the table (idempotent append); returns rows inserted."""
    metrics = (
        DeltaTable.forName(spark, target.name)
        .alias("t")
        .merge(rows.alias("s"), f"t.{key} = s.{key}")
        .whenNotMatchedInsertAll()
        .execute()
        .first()
    )
    return int(metrics["num_inserted_rows"])


def overwrite(spark: SparkSession, target: TableRef, rows: DataFrame) -> None:
    """Replace the whole table's contents in one commit (a rebuilt snapshot)."""
    columns = spark.table(target.name).columns
    rows.select(*columns).write.format("delta").mode("overwrite").save(target.path)


def replace_run_date(spark: SparkSession, target: TableRef, rows: DataFrame, run_date: object) -> None:
    """Replace exactly one run date's rows in one commit; every other date stays untouched."""
    columns = spark.table(target.name).columns
    (
        rows.select(*columns)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"run_date = '{run_date}'")
        .save(target.path)
    )
