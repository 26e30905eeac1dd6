"""Contracts of the bronze layer: typed raw lines and the quarantine."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructType, TimestampType

from schemas import TableContract, col

LINE_TYPES = ("sale", "cancellation", "return", "non_product", "zero_price")
# How bronze.sales.customer_hash is computed, recorded as a table property: a table without it
# holds the old unkeyed-construction hashes, sha256(key | id), and is migrated by ingest --rehash.
HASH_PROPERTY = "lakecast.customer_hash"
HASH_SCHEME = "hmac-sha256"

_METADATA = [
    col("line_key", StringType(), "SHA-256 of source file name and line number: the merge key", False),
    col("source_file", StringType(), "Name of the raw file the line came from", False),
    col("source_line", LongType(), "1-based line number in the source file (header is line 1)", False),
    col("run_id", StringType(), "Run that first ingested the line", False),
    col("run_date", DateType(), "Run date of the ingest that first added the line", False),
]

_CORE = [
    col("order_id", StringType(), "Order or invoice id (role order_id)"),
    col("item_id", StringType(), "Product code, trimmed (role item_id)"),
    col("description", StringType(), "Product description, trimmed (role description)"),
    col("quantity", DoubleType(), "Units on the line; negative for cancellations and returns", False),
    col("unit_price", DoubleType(), "Price per unit (role unit_price)"),
    col("event_ts", TimestampType(), "When the sale happened, business-local time", False),
    col("event_date", DateType(), "Date part of event_ts", False),
    col("customer_hash", StringType(), "HMAC-SHA256 of the customer id under the secret key (hex); the raw id is never stored"),
]

_LINE_TYPE = col(
    "line_type", StringType(), f"Classification of the line: one of {', '.join(LINE_TYPES)}", False
)


def sales_contract(attributes: Iterable[str] = (), regressors: Iterable[str] = ()) -> TableContract:
    """``bronze.sales``: one row per valid source line, typed, with the dataset's attributes."""
    extra = [col(a, StringType(), f"Source attribute {a!r}, trimmed") for a in attributes]
    extra += [col(r, DoubleType(), f"External regressor {r!r}") for r in regressors]
    return TableContract(
        schema=StructType(_METADATA + _CORE + extra + [_LINE_TYPE]),
        comment="Raw sales lines, typed and validated; personal data hashed. Merge key line_key.",
        personal=("customer_hash",),
        properties={HASH_PROPERTY: HASH_SCHEME},
    )


QUARANTINE = TableContract(
    schema=StructType(
        _METADATA
        + [
            col("reason", StringType(), "Reason code: why the line was rejected", False),
            col("detail", StringType(), "Human-readable detail of the rejection"),
            col(
                "raw_line",
                StringType(),
                "The line as CSV, personal-data columns replaced by their keyed hash; "
                "null when a malformed line may hold personal data (see source_file/source_line)",
            ),
        ]
    ),
    comment="Source lines that failed parsing or validation, with a reason. Nothing is dropped.",
    personal=("raw_line",),
)

SOURCE_FILES = TableContract(
    schema=StructType(
        [
            col("source_file", StringType(), "Name of a raw file ingest has read", False),
            col("content_hash", StringType(), "sha256:<hex> of a local file's bytes, or the object store's "
                "checksum (empty when it gives none): the same content under another name is a duplicate", False),
            col("bytes", LongType(), "Size of the file", False),
            col("status", StringType(), "ingested, duplicate (skipped: same bytes as duplicate_of) or empty (skipped: no header)", False),
            col("duplicate_of", StringType(), "For a duplicate: the file already ingested with the same bytes"),
            col("run_id", StringType(), "Run that last saw the file", False),
            col("run_date", DateType(), "Run date of that run", False),
        ]
    ),
    comment="Every raw file ingest has seen, with its content hash: a re-delivered copy is skipped, not counted twice.",
)

REASONS = {
    "malformed_line": "the line does not split into the header's columns",
    "empty_line": "the line is empty",
    "missing_timestamp": "the timestamp column is empty",
    "bad_timestamp": "the timestamp does not match dataset.timestamp_format",
    "missing_quantity": "the quantity column is empty",
    "bad_quantity": "the quantity is not a finite number",
    "bad_price": "the unit price is not a finite number",
    "missing_key": "a segment key or the item id is empty",
    "bad_regressor": "a regressor value is not a number",
    "bad_encoding": "the line holds bytes that are not valid in the file's encoding (UTF-8)",
    "date_out_of_range": "the date is before dataset.earliest_date or more than dataset.max_days_ahead after the run date",
    "extreme_quantity": "the absolute quantity exceeds dataset.max_abs_quantity",
}
