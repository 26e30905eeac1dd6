"""Ingest job: a raw drop (CSV or Parquet, one file or a folder) into ``bronze.sales``.

Every source line ends in exactly one place: ``bronze.sales`` when it parses and validates,
``bronze.quarantine`` with a reason code otherwise. Lines are keyed by source file name and line
number and merged, so re-ingesting a file or retrying a crashed run adds nothing. The job checks
that rows read = rows in bronze + rows quarantined for the files it read, and fails if not.

    lakecast ingest --run-date 2011-12-09 [--source PATH]
    spark-submit jobs/ingest.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import logging
import lzma
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path, PurePosixPath

from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.common.config import Config, ConfigError, DatasetConfig, TableRef, is_uri
from jobs.common.contracts import contract_for
from jobs.common.lake import ensure_table, hadoop_fs, merge_new_rows, sql_string, upsert
from jobs.common.privacy import hash_column, resolve_hash_key
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.core.errors import LakecastError
from schemas.bronze import HASH_PROPERTY, HASH_SCHEME, QUARANTINE, SOURCE_FILES

log = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"


class ReconciliationError(LakecastError):
    """Rows read do not equal rows kept plus rows quarantined."""


@dataclass
class IngestResult:
    """What one ingest run read and wrote; printed and logged at the end."""

    files: list[str]
    rows_read: int
    rows_kept: int
    rows_quarantined: int
    inserted_sales: int
    inserted_quarantine: int
    reasons: dict[str, int] = field(default_factory=dict)
    line_types: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it was not read


# --------------------------------------------------------------------------- reading


def list_source_files(spark: SparkSession, source: str) -> list[str]:
    """The data files of a drop: the file itself, or a folder's files (hidden ones skipped)."""
    fs, path = hadoop_fs(spark, source)
    if not fs.exists(path):
        raise FileNotFoundError(
            f"source {source} does not exist; pass --source PATH or fix dataset.source in the config"
        )
    if fs.getFileStatus(path).isFile():
        return [path.toString()]
    files = sorted(
        s.getPath().toString()
        for s in fs.listStatus(path)
        if s.isFile() and not s.getPath().getName().startswith((".", "_"))
    )
    if not files:
        raise FileNotFoundError(f"source folder {source} holds no data files")
    return files


def stage_xz(file: str, staging: Path) -> str:
    """Hadoop has no xz codec: decompress an ``.xz`` file into the staging folder (local only)."""
    if is_uri(file) and not file.startswith("file:"):
        raise LakecastError(
            f"{file}: .xz is only read from local folders; recompress drops on object stores "
            "as .gz, .bz2 or .zst, which Spark reads directly"
        )
    src = file.removeprefix("file:")
    out = staging / PurePosixPath(src).name.removesuffix(".xz")
    with lzma.open(src, "rb") as fin, out.open("wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)
    return str(out)


def number_lines(df: DataFrame) -> DataFrame:
    """Add ``source_line`` (1-based position in the file) to a single-file read.

    A file is read as contiguous splits in file order, so the line number is the row's position
    in its partition plus the row counts of all earlier partitions. Stays in the JVM.
    """
    pid = F.spark_partition_id()
    df = df.withColumn("_pid", pid).withColumn(
        "_pos", F.monotonically_increasing_id() - F.shiftleft(pid.cast("long"), 33)
    )
    counts = sorted(tuple(r) for r in df.groupBy("_pid").count().collect())
    offsets, total = [], 0
    for partition, count in counts:
        offsets.append((partition, total))
        total += count
    offsets_df = df.sparkSession.createDataFrame(offsets, "_pid int, _offset long")
    return (
        df.join(F.broadcast(offsets_df), "_pid")
        .withColumn("source_line", F.col("_offset") + F.col("_pos") + 1)
        .drop("_pid", "_pos", "_offset")
    )


class EmptyFile(LakecastError):
    """A file without even a header line: skipped (it holds no row to lose) and reported."""


class UnreadableFile(LakecastError):
    """A file that cannot be read to its end (truncated download, corrupt compression or Parquet)."""


@contextmanager
def readable(what: str) -> Iterator[None]:
    """Turn Spark's read failure (a truncated ``.gz``, a corrupt Parquet footer) into one clear
    refusal; nothing has been written when it is raised."""
    try:
        yield
    except (Py4JJavaError, PySparkException, EOFError, lzma.LZMAError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by:")]
        cause = (causes or lines or [type(exc).__name__])[-1 if causes else 0]
        raise UnreadableFile(
            f"{what} cannot be read to its end: it is truncated or corrupt ({cause[:300]}). "
            "Deliver it again and rerun the date; nothing of this drop was written."
        ) from None


def read_header(spark: SparkSession, file: str, options: dict[str, str]) -> list[str]:
    """The header's column names (a UTF-8 byte-order mark and spaces around names removed)."""
    first = spark.read.text(file).first()
    if first is None:
        raise EmptyFile(f"{PurePosixPath(file).name} is empty: not even a header line")
    row = next(csv.reader([first.value.lstrip("\ufeff")], delimiter=options["sep"], quotechar=options["quote"]))
    return [c.strip() for c in row]


def csv_options(dataset: DatasetConfig) -> dict[str, str]:
    return {
        "sep": dataset.csv.delimiter,
        "quote": dataset.csv.quote,
        "escape": dataset.csv.escape,
    }


def read_csv_file(spark: SparkSession, file: str, name: str, dataset: DatasetConfig) -> DataFrame:
    """One CSV file as rows of (source_file, source_line, value, src struct of strings)."""
    options = csv_options(dataset)
    header = read_header(spark, file, options)
    check_columns(header, dataset, name)
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())])
    # Bytes that are not UTF-8 are replaced by U+FFFD before parsing (so every table holds valid
    # strings) and the line is flagged: it goes to the quarantine as bad_encoding.
    value = F.make_valid_utf8("value")
    parsed = F.from_csv(value, _ddl(schema), {**options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    with readable(name):
        lines = number_lines(spark.read.text(file)).filter(F.col("source_line") > 1)
    return lines.select(
        F.lit(name).alias("source_file"),
        "source_line",
        value.alias("raw_value"),
        (~F.is_valid_utf8("value")).alias("bad_bytes"),
        parsed.alias("src"),
    ).select(
        "source_file",
        "source_line",
        "raw_value",
        (F.col("raw_value") == "").alias("empty"),
        "bad_bytes",
        F.col(f"src.{CORRUPT}").isNotNull().alias("malformed"),
        "src",
    )


def _ddl(schema: StructType) -> str:
    return ", ".join(f"`{f.name.replace('`', '``')}` STRING" for f in schema.fields)


def read_parquet_file(spark: SparkSession, file: str, name: str, dataset: DatasetConfig) -> DataFrame:
    """One Parquet file, every column as a string, numbered by Parquet's row index."""
    with readable(name):
        df = spark.read.parquet(file)
    check_columns(df.columns, dataset, name)
    src = F.struct(*[F.col(f"`{c}`").cast("string").alias(c) for c in df.columns])
    return df.select(
        F.lit(name).alias("source_file"),
        (F.col("_metadata.row_index") + 1).alias("source_line"),
        F.to_json(src).alias("raw_value"),
        F.lit(False).alias("empty"),
        F.lit(False).alias("bad_bytes"),  # Parquet strings are UTF-8 by the format's definition
        F.lit(False).alias("malformed"),
        src.alias("src"),
    )


def check_columns(found: list[str], dataset: DatasetConfig, name: str) -> None:
    """Every configured source column must be in the file: a mismatch is a config error."""
    wanted = {**dataset.columns, **dataset.attributes, **dataset.regressors}
    missing = {role: c for role, c in wanted.items() if c not in found}
    if missing:
        raise ConfigError(
            f"{name} lacks the configured columns {missing} (role: column); it has {found}. "
            "Fix dataset.columns / attributes / regressors in the config, or the drop."
        )


# --------------------------------------------------------------------------- validating


def _raw(dataset: DatasetConfig, column: str) -> Column:
    """A source column as trimmed string; empty becomes null."""
    value = F.trim(F.col("src").getField(column))
    return F.when(value != "", value)


def validate(raw: DataFrame, dataset: DatasetConfig, hash_key: str | None,
             run_date: dt.date | None = None) -> DataFrame:
    """Type every line and give each bad one a reason code and a detail; keeps every row.

    ``run_date`` bounds how far ahead a line may be dated (``dataset.max_days_ahead``).
    Returns the bronze columns (minus run metadata) plus ``reason``, ``detail`` and ``raw_line``.
    """
    cols = dataset.columns
    ts_raw = _raw(dataset, cols["timestamp"])
    qty_raw = _raw(dataset, cols["quantity"])
    event_ts = F.try_to_timestamp(ts_raw, F.lit(dataset.timestamp_format))
    quantity = qty_raw.try_cast("double")
    role = {r: _raw(dataset, c) for r, c in cols.items()}
    price_raw = role.get("unit_price", F.lit(None).cast("string"))
    price = price_raw.try_cast("double")
    attrs = {a: _raw(dataset, c) for a, c in dataset.attributes.items()}
    regs_raw = {r: _raw(dataset, c) for r, c in dataset.regressors.items()}
    key_cols = {k: (role["item_id"] if k == "item_id" else attrs[k]) for k in dataset.segment_keys}
    if "item_id" in role:
        key_cols.setdefault("item_id", role["item_id"])

    def bad_number(raw_value: Column, value: Column) -> Column:
        return raw_value.isNotNull() & (value.isNull() | F.isnan(value) | (F.abs(value) == float("inf")))

    latest = run_date + dt.timedelta(days=dataset.max_days_ahead) if run_date else dt.date.max
    checks: list[tuple[Column, str, Column]] = [
        (F.col("empty"), "empty_line", F.lit("empty line")),
        (F.col("bad_bytes"), "bad_encoding",
         F.lit("the line holds bytes that are not valid UTF-8; re-export the file as UTF-8")),
        (F.col("malformed"), "malformed_line", F.lit("the line does not split into the header's columns")),
        (ts_raw.isNull(), "missing_timestamp", F.lit(f"{cols['timestamp']} is empty")),
        (
            event_ts.isNull(),
            "bad_timestamp",
            F.format_string(f"{cols['timestamp']}=%s does not match {dataset.timestamp_format}", ts_raw),
        ),
        (qty_raw.isNull(), "missing_quantity", F.lit(f"{cols['quantity']} is empty")),
        (
            bad_number(qty_raw, quantity),
            "bad_quantity",
            F.format_string(f"{cols['quantity']}=%s is not a finite number", qty_raw),
        ),
        (
            F.to_date(event_ts).between(F.lit(dataset.earliest_date), F.lit(latest)) == F.lit(False),
            "date_out_of_range",
            F.format_string(f"{cols['timestamp']}=%s is before {dataset.earliest_date} or after {latest} "
                            "(dataset.earliest_date, dataset.max_days_ahead)", ts_raw),
        ),
        (
            F.abs(quantity) > F.lit(dataset.max_abs_quantity),
            "extreme_quantity",
            F.format_string(f"{cols['quantity']}=%s exceeds dataset.max_abs_quantity {dataset.max_abs_quantity:g}",
                            qty_raw),
        ),
    ]
    if "unit_price" in role:
        checks.append(
            (
                bad_number(price_raw, price),
                "bad_price",
                F.format_string(f"{cols['unit_price']}=%s is not a finite number", price_raw),
            )
        )
    for key, value in key_cols.items():
        checks.append((value.isNull(), "missing_key", F.lit(f"segment key {key} is empty")))
    for name, value in regs_raw.items():
        checks.append(
            (bad_number(value, value.try_cast("double")), "bad_regressor",
             F.format_string(f"regressor {name}=%s is not a number", value))
        )
    reason = reduce(lambda acc, c: acc.when(c[0], F.lit(c[1])), checks[1:], F.when(checks[0][0], F.lit(checks[0][1])))
    detail = reduce(lambda acc, c: acc.when(c[0], c[2]), checks[1:], F.when(checks[0][0], checks[0][2]))

    customer = role.get("customer_id")
    customer_hash = (
        hash_column(customer, hash_key)
        if customer is not None and hash_key is not None
        else F.lit(None).cast("string")
    )
    typed = {
        "order_id": role.get("order_id", F.lit(None).cast("string")),
        "item_id": role.get("item_id", F.lit(None).cast("string")),
        "description": role.get("description", F.lit(None).cast("string")),
        "quantity": quantity,
        "unit_price": price,
        "event_ts": event_ts,
        "event_date": F.to_date(event_ts),
        "customer_hash": customer_hash,
        **attrs,
        **{r: v.try_cast("double") for r, v in regs_raw.items()},
    }
    out = raw.select(
        "source_file",
        "source_line",
        *[c.alias(n) for n, c in typed.items()],
        reason.alias("reason"),
        detail.alias("detail"),
        redacted_line(dataset, customer_hash).alias("raw_line"),
    )
    return out.withColumn(
        "line_key", F.sha2(F.concat_ws("|", "source_file", F.col("source_line").cast("string")), 256)
    ).withColumn("line_type", classify(dataset))


def redacted_line(dataset: DatasetConfig, customer_hash: Column) -> Column:
    """The raw line for the quarantine, with personal data replaced by its keyed hash.

    A malformed line cannot be split reliably, so when the dataset has personal data such a
    line is withheld (null); its file and line number still point at the original.
    """
    pii = dataset.columns.get("customer_id")
    if pii is None:
        return F.col("raw_value")
    fields = [
        (customer_hash if name == pii else F.col("src").getField(name)).alias(name)
        for name in _source_fields(dataset)
    ]
    options = csv_options(dataset)
    return F.when(F.col("malformed"), F.lit(None).cast("string")).otherwise(
        F.to_csv(F.struct(*fields), options)
    )


def _source_fields(dataset: DatasetConfig) -> list[str]:
    seen: dict[str, None] = {}
    for c in [*dataset.columns.values(), *dataset.attributes.values(), *dataset.regressors.values()]:
        seen.setdefault(c, None)
    return list(seen)


def classify(dataset: DatasetConfig) -> Column:
    """``line_type``: non_product, cancellation, return, zero_price or sale (first match wins)."""
    rule = F.when(F.lit(False), F.lit(None))
    if dataset.non_product_pattern and "item_id" in dataset.columns:
        rule = rule.when(F.col("item_id").rlike(dataset.non_product_pattern), "non_product")
    if dataset.cancellation_prefix and "order_id" in dataset.columns:
        rule = rule.when(F.col("order_id").startswith(dataset.cancellation_prefix), "cancellation")
    rule = rule.when(F.col("quantity") < 0, "return")
    if "unit_price" in dataset.columns:
        rule = rule.when(F.col("unit_price") <= 0, "zero_price")
    return rule.otherwise("sale")


# --------------------------------------------------------------------------- the job


def ingest(
    spark: SparkSession,
    cfg: Config,
    run_date: dt.date,
    run_id: str,
    source: str | None = None,
    rehash: bool = False,
) -> IngestResult:
    """Read a drop, validate it, merge it into bronze and the quarantine, and reconcile.

    ``rehash`` migrates a bronze table whose customer hashes use the old construction: the drop
    (every file ingested so far) is read again and each line's hash replaced by its HMAC.
    """
    dataset = cfg.dataset
    source = source or dataset.source_for(run_date.isoformat())
    if not is_uri(source):
        source = str(Path(source).resolve())
    hash_key = resolve_hash_key(cfg)
    sales = ensure_table(spark, cfg, "sales")
    quarantine = ensure_table(spark, cfg, "quarantine")
    files = list_source_files(spark, source)
    log.info("ingest %s: %d file(s) from %s", run_date, len(files), source)
    migrate = check_hash_scheme(spark, cfg, sales, rehash)

    manifest = ensure_table(spark, cfg, "source_files")
    seen = {r.content_hash: r.source_file for r in spark.table(manifest.name).filter("status = 'ingested'").collect()
            if r.content_hash}
    staging = Path(tempfile.mkdtemp(prefix="lakecast-staging-"))
    try:
        frames, names, skipped, manifest_rows = [], [], {}, {}
        for file in files:
            name = PurePosixPath(file).name
            content_hash, size = fingerprint(spark, file)
            manifest_rows[name] = [name, content_hash or "", size, "ingested", None, run_id, run_date]
            original = seen.setdefault(content_hash, name) if content_hash else name
            if original != name:
                log.warning("ingest %s: %s has the same bytes as %s, already ingested; skipped", run_date, name, original)
                skipped[name] = f"duplicate of {original}"
                manifest_rows[name][3:5] = ["duplicate", original]
                continue
            with readable(name):
                path = stage_xz(file, staging) if file.endswith(".xz") else file
            reader = read_parquet_file if dataset.format == "parquet" else read_csv_file
            try:
                frames.append(reader(spark, path, name, dataset))
            except EmptyFile as exc:
                log.warning("ingest %s: %s; skipped", run_date, exc)
                skipped[name] = "empty file"
                manifest_rows[name][3] = "empty"
                continue
            names.append(name)
        if not frames:
            log.warning("ingest %s: no file of the drop holds lines to read; nothing to ingest", run_date)
            record_files(spark, manifest, manifest_rows.values())
            return IngestResult(files=[], rows_read=0, rows_kept=0, rows_quarantined=0, inserted_sales=0,
                                inserted_quarantine=0, skipped=skipped)
        raw = reduce(DataFrame.unionByName, frames)
        validated = (
            validate(raw, dataset, hash_key, run_date)
            .withColumn("run_id", F.lit(run_id))
            .withColumn("run_date", F.lit(run_date))
            .persist()
        )
        if migrate:
            replace_hashes(spark, cfg, validated, names)
        result = write_and_reconcile(spark, validated, sales, quarantine, names)
        result.skipped = skipped
        record_files(spark, manifest, manifest_rows.values())
        validated.unpersist()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "ingest %s: read %d, kept %d, quarantined %d (new in bronze %d, new in quarantine %d)",
        run_date, result.rows_read, result.rows_kept, result.rows_quarantined,
        result.inserted_sales, result.inserted_quarantine,
    )
    return result


def fingerprint(spark: SparkSession, file: str) -> tuple[str | None, int]:
    """(content hash, bytes) of a raw file: SHA-256 of a local file's bytes; on a remote store
    the checksum the store gives (None when it gives none: no duplicate check for that file)."""
    if not is_uri(file) or file.startswith("file:"):
        path = Path(file.removeprefix("file:"))
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}", path.stat().st_size
    fs, hadoop_path = hadoop_fs(spark, file)
    checksum = fs.getFileChecksum(hadoop_path)
    size = int(fs.getFileStatus(hadoop_path).getLen())
    return (f"{checksum.getAlgorithmName()}:{checksum.toString()}" if checksum is not None else None), size


def record_files(spark: SparkSession, manifest: TableRef, rows: Iterable[list[object]]) -> None:
    """Every file of the drop in ``bronze.source_files``: ingested, duplicate or empty."""
    frame = spark.createDataFrame([tuple(r) for r in rows], SOURCE_FILES.schema)
    upsert(spark, manifest, frame, ["source_file"], ["content_hash", "bytes", "status", "duplicate_of"])


def check_hash_scheme(spark: SparkSession, cfg: Config, sales: TableRef, rehash: bool) -> bool:
    """True when the customer hashes must be migrated now; refuses to mix two hash schemes.

    A table created by this version records ``HASH_SCHEME`` as a table property. One without
    it that holds hashes was written with ``sha256(key | id)``: adding HMAC hashes to it would
    split each customer in two, so ingest stops and says how to migrate.
    """
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {sales.name}").collect()}
    if properties.get(HASH_PROPERTY) == HASH_SCHEME:
        if rehash:
            log.info("ingest --rehash: %s already holds %s hashes; nothing to migrate", sales.name, HASH_SCHEME)
        return False
    if spark.table(sales.name).filter(F.col("customer_hash").isNotNull()).isEmpty():
        set_privacy_properties(spark, cfg)
        return False
    if not rehash:
        raise LakecastError(
            f"{sales.name} holds customer hashes of the old construction sha256(key | id), not "
            f"{HASH_SCHEME}; migrate once with `lakecast ingest --run-date D --rehash --source PATH`, "
            "where PATH holds every drop ingested so far (the ids are hashed again from the source)"
        )
    return True


def replace_hashes(spark: SparkSession, cfg: Config, validated: DataFrame, names: list[str]) -> None:
    """Give every bronze and quarantine line the new hash of its source line (``--rehash``)."""
    sales, quarantine = cfg.table("sales"), cfg.table("quarantine")
    hashed_files = {
        r.source_file for r in spark.table(sales.name).filter(F.col("customer_hash").isNotNull())
        .select("source_file").distinct().collect()
    } | {r.source_file for r in spark.table(quarantine.name).select("source_file").distinct().collect()}
    missing = sorted(hashed_files - set(names))
    if missing:
        raise LakecastError(
            f"--rehash needs every drop already ingested, but the source lacks {missing}; pass "
            "--source with a folder that holds all of them (nothing was changed)"
        )
    for table, column in ((sales, "customer_hash"), (quarantine, "raw_line")):
        (
            DeltaTable.forName(spark, table.name).alias("t")
            .merge(validated.select("line_key", column).alias("s"), "t.line_key = s.line_key")
            .whenMatchedUpdate(set={column: f"s.{column}"})
            .execute()
        )
    set_privacy_properties(spark, cfg)
    log.info("ingest --rehash: customer hashes of %s and %s replaced by %s; vacuum the old files "
             "(lakecast maintain) so the old hashes leave the lake", sales.name, quarantine.name, HASH_SCHEME)


def set_privacy_properties(spark: SparkSession, cfg: Config) -> None:
    """Record the hash scheme and keep personal columns out of Delta's statistics."""
    for logical in ("sales", "quarantine"):
        props = contract_for(cfg, logical).table_properties
        pairs = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in props.items())
        spark.sql(f"ALTER TABLE {cfg.table(logical).name} SET TBLPROPERTIES ({pairs})")


def write_and_reconcile(
    spark: SparkSession, validated: DataFrame, sales: TableRef, quarantine: TableRef, names: list[str]
) -> IngestResult:
    """Merge kept and rejected rows; fail unless the tables account for every line read."""
    kept = validated.filter(F.col("reason").isNull()).select(*spark.table(sales.name).columns)
    rejected = validated.filter(F.col("reason").isNotNull()).select(*QUARANTINE.columns)
    with readable(f"the drop ({', '.join(names)})"):
        reasons = {r["reason"]: r["count"] for r in validated.groupBy("reason").count().collect()}
    rows_read = sum(reasons.values())
    line_types = {
        r["line_type"]: r["count"]
        for r in validated.filter(F.col("reason").isNull()).groupBy("line_type").count().collect()
    }
    inserted_sales = merge_new_rows(sales, spark, kept, "line_key")
    inserted_quarantine = merge_new_rows(quarantine, spark, rejected, "line_key")
    drop_now_valid(spark, quarantine.name, kept)

    in_sales = spark.table(sales.name).filter(F.col("source_file").isin(names)).count()
    in_quarantine = spark.table(quarantine.name).filter(F.col("source_file").isin(names)).count()
    if in_sales + in_quarantine != rows_read:
        raise ReconciliationError(
            f"rows read {rows_read} != rows in {sales.name} {in_sales} + rows in "
            f"{quarantine.name} {in_quarantine} for files {names}; inspect both tables by "
            "source_file before rerunning"
        )
    return IngestResult(
        files=names,
        rows_read=rows_read,
        rows_kept=in_sales,
        rows_quarantined=in_quarantine,
        inserted_sales=inserted_sales,
        inserted_quarantine=inserted_quarantine,
        reasons={r: n for r, n in reasons.items() if r is not None},
        line_types=line_types,
    )


def drop_now_valid(spark: SparkSession, quarantine: str, kept: DataFrame) -> None:
    """A line quarantined earlier that validates now (config fixed) leaves the quarantine."""
    (
        DeltaTable.forName(spark, quarantine)
        .alias("t")
        .merge(kept.select("line_key").alias("s"), "t.line_key = s.line_key")
        .whenMatchedDelete()
        .execute()
    )


def print_ingest_summary(result: IngestResult) -> None:
    print(f"ingest: {len(result.files)} file(s): {', '.join(result.files)}")
    print(f"  rows read        {result.rows_read:>10,}")
    print(f"  rows in bronze   {result.rows_kept:>10,}  (new this run: {result.inserted_sales:,})")
    print(f"  rows quarantined {result.rows_quarantined:>10,}  (new this run: {result.inserted_quarantine:,})")
    for reason, n in sorted(result.reasons.items()):
        print(f"    {reason:<18} {n:>8,}")
    print("  line types: " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.line_types.items())))
    for name, why in sorted(result.skipped.items()):
        print(f"  skipped {name}: {why}")


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    result = ingest(spark, cfg, args.run_date, run_id, source=args.source, rehash=args.rehash)
    print_ingest_summary(result)
    return JobMetrics(
        rows_in=result.rows_read,
        rows_out=result.rows_kept + result.rows_quarantined,
        detail={
            "files": result.files,
            "rows_quarantined": result.rows_quarantined,
            "inserted_sales": result.inserted_sales,
            "inserted_quarantine": result.inserted_quarantine,
            "reasons": result.reasons,
            "skipped": result.skipped,
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("ingest", "Raw drop -> bronze.sales + bronze.quarantine")
    parser.add_argument("--source", default=None, help="file or folder (default: dataset.source)")
    parser.add_argument("--rehash", action="store_true",
                        help="one-off: replace old sha256(key|id) customer hashes by HMAC-SHA256, "
                             "re-reading every drop in --source")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", _body, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
