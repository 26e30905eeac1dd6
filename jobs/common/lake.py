"""Lake access: the only place that knows where tables live and how they are registered.

Tables are Delta tables at ``<lake_root>/<layer>/<table>`` and are registered in the metastore
as ``<layer>.<table>``, so ``spark.sql("select * from bronze.sales")`` works in any job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from typing import Any

import delta.exceptions
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.common.config import Config, TableRef
from jobs.common.contracts import contract_for
from jobs.core.errors import LakecastError

log = logging.getLogger(__name__)


class TableProblem(LakecastError):
    """A lake table that cannot be used as it is: registered elsewhere, missing columns, or
    damaged outside lakecast (a data file or commit deleted or corrupted)."""


class ConcurrentWrite(LakecastError):
    """Delta refused this job's commit: another writer changed what it read (optimistic
    concurrency); nothing of the refused commit is in the table."""


# Delta's refusals of a commit that conflicts with another writer's (optimistic concurrency).
CONFLICTS = tuple(getattr(delta.exceptions, name) for name in (
    "DeltaConcurrentModificationException", "ConcurrentAppendException", "ConcurrentDeleteDeleteException",
    "ConcurrentDeleteReadException", "ConcurrentTransactionException", "ConcurrentWriteException",
    "MetadataChangedException", "ProtocolChangedException",
))

# Spark and Delta error classes that mean a table's files are not what its log says.
DAMAGE = ("FAILED_READ_FILE", "DELTA_PATH_DOES_NOT_EXIST", "DELTA_FILE_NOT_FOUND", "DELTA_LOG_FILE_NOT_FOUND",
          "DELTA_VERSIONS_NOT_CONTIGUOUS", "DELTA_STATE_RECOVER_ERROR", "DELTA_MISSING_PART_FILES",
          "DELTA_EMPTY_DIRECTORY", "DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND")


def explain_failure(exc: BaseException) -> LakecastError | None:
    """The clear error for an exception that says the lake's tables were damaged or written by
    another job at the same moment, or None for any other exception."""
    text = str(exc)
    if isinstance(exc, CONFLICTS):
        return ConcurrentWrite(
            f"another job wrote a table this one writes at the same moment ({text.splitlines()[0][:300]}); "
            "this job's conflicting commit was refused, so nothing is half-written. Rerun the date "
            "once the other job is done (every job is idempotent for its run date)"
        )
    code = next((c for c in DAMAGE if c in text), None)
    if code is None:
        return None
    where = re.search(r"(?:file:)?/[^\s,;'`]+", text.split("\tat ")[0])
    path = where.group(0).rstrip(".") if where else "(path not given)"
    return TableProblem(
        f"a lake table cannot be read ({code}): {path}. Its folder was changed outside lakecast "
        "(a data file or commit deleted or damaged). Restore the folder from a backup, or roll "
        "the table back to its last good version (DESCRIBE HISTORY, then RESTORE TABLE ... TO "
        "VERSION AS OF n); a silver or gold table can instead be moved away and rebuilt by "
        "rerunning the job that writes it"
    )


def sql_string(value: str) -> str:
    """``value`` as a quoted Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _normalise(location: str) -> str:
    return location.removeprefix("file:").rstrip("/")


def ensure_table(spark: SparkSession, cfg: Config, logical: str) -> TableRef:
    """Create the Delta table (from its contract) and its layer database if missing; check it is
    where the config says. Two jobs creating the same table at the same moment both end with it.

    Raises:
        TableProblem: when the metastore has the table at another location than the config, or
            the table lacks a required column of its contract (a missing nullable one, which a
            newer lakecast added, is added to the table).
    """
    ref = cfg.table(logical)
    contract = contract_for(cfg, logical)
    for attempt in range(CREATE_ATTEMPTS):
        try:
            if _create_if_missing(spark, cfg, ref, contract):
                return ref
            break
        except Exception as exc:
            racing = isinstance(exc, CONFLICTS) or any(mark in str(exc) for mark in CREATION_RACE)
            if attempt == CREATE_ATTEMPTS - 1 or not racing:
                raise
            log.info("%s was being created by another job at the same moment; checking it again", ref.name)
            time.sleep(1.0 + attempt)  # the other job's first commit lands meanwhile
    registered, columns = _location_and_columns(spark, ref.name)
    if _normalise(registered) != _normalise(ref.path):
        raise TableProblem(
            f"table {ref.name} is registered at {registered} but the config puts it at "
            f"{ref.path}; drop the registration (DROP TABLE {ref.name}, the data stays) or "
            "point the config at the right lake"
        )
    missing = [f for f in contract.schema.fields if f.name not in columns]
    if missing and all(f.nullable for f in missing):
        _add_columns(spark, ref, missing)
    elif missing:
        missing = [f.name for f in missing]
        raise TableProblem(
            f"table {ref.name} at {ref.path} lacks the columns {missing} of its contract "
            "(it was written by an older lakecast); add them with ALTER TABLE ... ADD COLUMNS "
            "or move the table away and rerun the job that writes it"
        )
    return ref


def _add_columns(spark: SparkSession, ref: TableRef, fields: list[Any]) -> None:
    """Add a table's missing nullable contract columns (a newer lakecast's): older rows read null
    there. Two jobs adding them at the same moment: the second finds them added."""
    added = ", ".join(f"`{f.name}` {f.dataType.simpleString()} COMMENT {sql_string(f.metadata.get('comment', ''))}"
                      for f in fields)
    try:
        spark.sql(f"ALTER TABLE {ref.name} ADD COLUMNS ({added})")
    except Exception as exc:
        if "already exists" not in str(exc).lower() and "FIELD_ALREADY_EXISTS" not in str(exc):
            raise
    log.info("added the columns %s of its contract to %s", [f.name for f in fields], ref.name)


def _location_and_columns(spark: SparkSession, name: str) -> tuple[str, list[str]]:
    """Where the metastore has ``name`` and its columns, from the table's metadata alone.

    ``DESCRIBE DETAIL`` would also list the table's files (seconds per table on a local master,
    paid by every job for every table it touches); ``DESCRIBE TABLE EXTENDED`` reads the schema
    and the registration only."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    columns: list[str] = []
    for row in rows:
        if not row[0] or row[0].startswith("#"):
            break
        columns.append(row[0])
    location = next(row[1] for row in rows if row[0] == "Location")
    return location, columns


# What another job creating the same table at the same moment looks like: the table or its
# registration appeared between our check and our create, or its folder has files but its first
# commit has not landed yet.
CREATION_RACE = ("ALREADY_EXISTS", "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION")
CREATE_ATTEMPTS = 5


def _create_if_missing(spark: SparkSession, cfg: Config, ref: TableRef, contract: Any) -> bool:
    """Create the layer database and the table when missing; True when this call created it."""
    if not spark.catalog.databaseExists(ref.database):
        spark.sql(
            f"CREATE DATABASE IF NOT EXISTS {ref.database} "
            f"LOCATION {sql_string(cfg.layer_path(ref.database))}"
        )
    if spark.catalog.tableExists(ref.name):
        return False
    builder = (
        DeltaTable.createIfNotExists(spark)
        .tableName(ref.name)
        .location(ref.path)
        .addColumns(contract.schema)
        .partitionedBy(*contract.partition_by)
        .comment(contract.comment)
    )
    for key, value in contract.table_properties.items():
        builder = builder.property(key, value)
    builder.execute()
    log.info("created table %s at %s", ref.name, ref.path)
    return True


def demand_as_of(spark: SparkSession, cfg: Config, run_date: dt.date) -> DataFrame:
    """``silver.demand``, after checking it was built for ``run_date`` or later.

    Raises:
        LakecastError: when features has not run for the date yet (the message says so).
    """
    ref = ensure_table(spark, cfg, "demand")
    demand = spark.table(ref.name)
    as_of = demand.select(F.max("as_of_date")).first()[0]
    if as_of is None or as_of < run_date:
        raise LakecastError(
            f"{ref.name} is built as of {as_of}, not {run_date}; run "
            f"`lakecast features --run-date {run_date}` first"
        )
    return demand


def history_as_of(spark: SparkSession, cfg: Config, run_date: dt.date) -> DataFrame:
    """``silver.demand`` up to ``run_date``'s last complete period: what a model may learn from
    on that date (see :func:`demand_as_of`)."""
    return demand_as_of(spark, cfg, run_date).filter(F.col("ds") <= F.lit(cfg.dataset.origin(run_date)))


def read_table_at(spark: SparkSession, ref: TableRef, versions: dict[str, int] | None = None) -> DataFrame:
    """The table, or the version ``versions`` records for it (Delta time travel)."""
    if versions and ref.name in versions:
        return spark.read.format("delta").option("versionAsOf", versions[ref.name]).load(ref.path)
    return spark.table(ref.name)


def recorded_input_versions(spark: SparkSession, cfg: Config, run_id: str, job: str) -> tuple[dt.date, dict[str, int]]:
    """(run date, table versions read) that the run log records for a successful run of ``job``.

    Raises:
        LakecastError: when the run log has no such run, or no versions for it.
    """
    runs = spark.table(ensure_table(spark, cfg, "pipeline_runs").name)
    row = runs.filter((F.col("run_id") == run_id) & (F.col("job") == job) & (F.col("status") == "success")).first()
    if row is None:
        raise LakecastError(f"{cfg.table('pipeline_runs').name} has no successful {job} run {run_id!r}; "
                            f"SELECT run_id, run_date FROM {cfg.table('pipeline_runs').name} WHERE job = '{job}' lists them")
    versions = json.loads(row.detail or "{}").get("input_versions")
    if not versions:
        raise LakecastError(f"run {run_id!r} recorded no input table versions (it predates them): it cannot be replayed")
    return row.run_date, {k: int(v) for k, v in versions.items()}


def current_models(models: DataFrame, run_date: dt.date) -> DataFrame:
    """Per segment, the latest model of ``models`` (``gold.models``) trained on or before ``run_date``."""
    latest = Window.partitionBy("segment_id").orderBy(F.col("run_date").desc())
    return (
        models.filter(F.col("run_date") <= F.lit(run_date))
        .withColumn("_rank", F.row_number().over(latest))
        .filter("_rank = 1")
        .drop("_rank")
    )


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


def upsert(
    spark: SparkSession, target: TableRef, rows: DataFrame, keys: list[str], compare: list[str]
) -> dict[str, int]:
    """MERGE on ``keys``: insert new rows, update a matched row only when a ``compare`` column
    differs (so rerunning the same input changes nothing); never deletes. Returns the counts."""
    columns = spark.table(target.name).columns
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in compare)
    metrics = (
        DeltaTable.forName(spark, target.name)
        .alias("t")
        .merge(rows.select(*columns).alias("s"), " AND ".join(f"t.{k} = s.{k}" for k in keys))
        .whenMatchedUpdateAll(condition=changed)
        .whenNotMatchedInsertAll()
        .execute()
        .first()
    )
    return {"inserted": int(metrics["num_inserted_rows"]), "updated": int(metrics["num_updated_rows"])}


def overwrite(spark: SparkSession, target: TableRef, rows: DataFrame) -> None:
    """Replace the whole table's contents in one commit (a rebuilt snapshot)."""
    columns = spark.table(target.name).columns
    rows.select(*columns).write.format("delta").mode("overwrite").save(target.path)


def replace_where(spark: SparkSession, target: TableRef, rows: DataFrame, condition: str) -> None:
    """Replace the rows matching ``condition`` with ``rows`` in one commit (Delta checks that
    every new row matches it); the rest of the table stays untouched."""
    columns = spark.table(target.name).columns
    rows.select(*columns).write.format("delta").mode("overwrite").option("replaceWhere", condition).save(
        target.path
    )


def replace_run_date(spark: SparkSession, target: TableRef, rows: DataFrame, run_date: object) -> None:
    """Replace exactly one run date's rows in one commit; every other date stays untouched."""
    replace_where(spark, target, rows, f"run_date = '{run_date}'")


def hadoop_fs(spark: SparkSession, location: str) -> tuple[Any, Any]:
    """(file system, path) of Hadoop for a location: the same code for a local folder, S3 or HDFS."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(location)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def vacuum(spark: SparkSession, target: TableRef, retention_hours: int) -> None:
    """Delete the table's files that no version newer than ``retention_hours`` ago needs.

    Below Delta's safety default (7 days) its check is turned off for this call only: a reader
    still on an old version, or time travel to it, then fails. That is the point of an erasure.
    The file listing runs as many tasks as the cluster has cores (Spark's default of up to
    10,000 tiny tasks made a small table's vacuum take a minute on a laptop).
    """
    settings = {
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(spark.sparkContext.defaultParallelism),
    }
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        DeltaTable.forName(spark, target.name).vacuum(float(retention_hours))
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def table_size(spark: SparkSession, target: TableRef) -> dict[str, int]:
    """Files and bytes of the table's current version (``DESCRIBE DETAIL``)."""
    detail = spark.sql(f"DESCRIBE DETAIL {target.name}").first()
    return {"files": int(detail["numFiles"]), "bytes": int(detail["sizeInBytes"])}
