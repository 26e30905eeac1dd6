"""Ingest: every kind of bad line is quarantined with its reason, nothing is lost, reruns add nothing."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.core.errors import ConfigError
from jobs.common.lake import ensure_table, merge_new_rows
from jobs.common.privacy import DEMO_HASH_KEY
from jobs.ingest import ingest, list_source_files, read_csv_file, validate

DATA = Path(__file__).parent / "data"
DIRTY = DATA / "retail_dirty.csv"
RUN_DATE = dt.date(2011, 1, 31)

EXPECTED_KEPT = {2: "sale", 3: "cancellation", 4: "non_product", 5: "return", 6: "zero_price"}
EXPECTED_QUARANTINED = {
    7: "bad_timestamp",
    8: "bad_quantity",
    9: "bad_price",
    10: "missing_key",
    11: "missing_quantity",
    12: "missing_timestamp",
    13: "malformed_line",
    14: "empty_line",
    15: "malformed_line",
    16: "bad_timestamp",
    17: "bad_quantity",
}


def table_rows(spark, name):
    return sorted(spark.table(name).collect(), key=lambda r: (r.source_file, r.source_line))


def test_every_line_lands_in_bronze_or_quarantine_with_reason(spark, make_cfg):
    cfg = make_cfg()
    result = ingest(spark, cfg, RUN_DATE, "run-1", source=str(DIRTY))

    kept = {r.source_line: r.line_type for r in spark.table("bronze.sales").collect()}
    rejected = {r.source_line: r.reason for r in spark.table("bronze.quarantine").collect()}
    assert kept == EXPECTED_KEPT
    assert rejected == EXPECTED_QUARANTINED
    assert result.rows_read == 16 == result.rows_kept + result.rows_quarantined
    assert result.reasons["malformed_line"] == 2
    assert spark.sql("select count(*) from bronze.sales").first()[0] == 5


def test_lines_are_typed_and_trimmed(spark, make_cfg):
    cfg = make_cfg()
    ingest(spark, cfg, RUN_DATE, "run-1", source=str(DIRTY))
    row = spark.table("bronze.sales").filter("source_line = 5").first()
    assert (row.order_id, row.item_id, row.description) == ("1004", "A2", "Gadget, large")
    assert (row.quantity, row.unit_price, row.customer_hash) == (-3.0, 0.0, None)
    assert row.event_ts == dt.datetime(2011, 1, 4, 9, 0)
    assert row.event_date == dt.date(2011, 1, 4)
    assert row.country == "United Kingdom"
    assert (row.run_id, row.run_date, row.source_file) == ("run-1", RUN_DATE, "retail_dirty.csv")
    bad = spark.table("bronze.quarantine").filter("source_line = 9").first()
    assert bad.detail == "Price=abc is not a finite number"


def test_reingest_adds_nothing_and_keeps_the_table_identical(spark, make_cfg):
    cfg = make_cfg()
    ingest(spark, cfg, RUN_DATE, "run-1", source=str(DIRTY))
    before = (table_rows(spark, "bronze.sales"), table_rows(spark, "bronze.quarantine"))
    again = ingest(spark, cfg, RUN_DATE, "run-2", source=str(DIRTY))
    after = (table_rows(spark, "bronze.sales"), table_rows(spark, "bronze.quarantine"))
    assert (again.inserted_sales, again.inserted_quarantine) == (0, 0)
    assert after == before
    assert (again.rows_kept, again.rows_quarantined) == (5, 11)


def test_retry_after_a_crash_between_writes_adds_no_duplicates(spark, make_cfg):
    cfg = make_cfg()
    # A first attempt merged part of the sales lines, then died before the quarantine write.
    ds = cfg.dataset
    sales = ensure_table(spark, cfg, "sales")
    partial = (
        validate(read_csv_file(spark, str(DIRTY), "retail_dirty.csv", ds), ds, DEMO_HASH_KEY)
        .filter("reason is null and source_line <= 3")
        .withColumn("run_id", F.lit("crashed"))
        .withColumn("run_date", F.lit(RUN_DATE))
        .select(*spark.table("bronze.sales").columns)
    )
    assert merge_new_rows(sales, spark, partial, "line_key") == 2

    result = ingest(spark, cfg, RUN_DATE, "retry", source=str(DIRTY))
    assert result.inserted_sales == 3
    keys = [r.line_key for r in spark.table("bronze.sales").collect()]
    assert len(keys) == len(set(keys)) == 5
    assert result.rows_quarantined == 11


def test_folder_of_daily_drops_compressed_or_not(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    drops = tmp_path / "drops"
    drops.mkdir()
    lines = DIRTY.read_text().splitlines()
    header, body = lines[0], lines[1:6]
    (drops / "sales_2011-01-03.csv").write_text("\n".join([header, *body[:3]]) + "\n")
    with gzip.open(drops / "sales_2011-01-04.csv.gz", "wt") as f:
        f.write("\n".join([header, *body[3:]]) + "\n")
    (drops / "_SUCCESS").write_text("")
    assert [Path(f).name for f in list_source_files(spark, str(drops))] == [
        "sales_2011-01-03.csv",
        "sales_2011-01-04.csv.gz",
    ]
    first = ingest(spark, cfg, RUN_DATE, "r1", source=str(drops))
    assert (first.rows_read, first.rows_kept, first.rows_quarantined) == (5, 5, 0)

    (drops / "sales_2011-01-05.csv").write_text("\n".join([header, lines[6], lines[7]]) + "\n")
    second = ingest(spark, cfg, RUN_DATE, "r2", source=str(drops))
    assert (second.rows_read, second.inserted_sales, second.inserted_quarantine) == (7, 0, 2)


def test_parquet_drop(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    raw = spark.read.option("header", True).csv(str(DIRTY)).filter("Invoice in ('1001', '1007')")
    raw.coalesce(1).write.parquet(str(tmp_path / "drop_parquet"))
    cfg = make_cfg({"dataset": {**cfg.raw["dataset"], "format": "parquet"}}, name="pq")
    result = ingest(spark, cfg, RUN_DATE, "r1", source=str(tmp_path / "drop_parquet"))
    assert (result.rows_read, result.rows_kept, result.rows_quarantined) == (2, 1, 1)
    assert spark.table("bronze.quarantine").first().reason == "bad_quantity"


def test_customer_id_is_stored_only_as_a_keyed_hash(spark, make_cfg, monkeypatch):
    cfg = make_cfg()
    monkeypatch.setenv(cfg.hash_key_env, "secret-one")
    ingest(spark, cfg, RUN_DATE, "r1", source=str(DIRTY))
    hashes = {r.source_line: r.customer_hash for r in spark.table("bronze.sales").collect()}
    raw_ids = {"12345.0", "12346.0", "12347.0", "12348.0", "12349.0", "12350.0"}
    assert hashes[2] is not None and hashes[2] not in raw_ids and len(hashes[2]) == 64
    assert hashes[2] == hashes[3]  # same customer, same hash: still joinable
    for table in ("bronze.sales", "bronze.quarantine"):
        for row in spark.table(table).collect():
            for value in row.asDict().values():
                assert not any(rid in str(value) for rid in raw_ids), (table, row)
    # a different key gives a different hash
    monkeypatch.setenv(cfg.hash_key_env, "secret-two")
    other = make_cfg(name="other")
    spark.sql("DROP DATABASE IF EXISTS bronze CASCADE")
    ingest(spark, other, RUN_DATE, "r2", source=str(DIRTY))
    assert spark.table("bronze.sales").filter("source_line = 2").first().customer_hash != hashes[2]


def test_missing_hash_key_outside_the_demo_is_a_clear_error(spark, make_cfg, monkeypatch):
    cfg = make_cfg({"privacy": {"hash_key_env": "LAKECAST_TEST_KEY", "allow_demo_key": False}})
    monkeypatch.delenv("LAKECAST_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="LAKECAST_TEST_KEY is not set"):
        ingest(spark, cfg, RUN_DATE, "r1", source=str(DIRTY))


def test_a_drop_without_a_configured_column_is_refused(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    bad = tmp_path / "renamed.csv"
    bad.write_text(DIRTY.read_text().replace("Customer ID", "CustomerID", 1))
    with pytest.raises(ConfigError, match="lacks the configured columns .*Customer ID"):
        ingest(spark, cfg, RUN_DATE, "r1", source=str(bad))


def test_missing_source_says_what_to_do(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    with pytest.raises(FileNotFoundError, match="pass --source PATH"):
        ingest(spark, cfg, RUN_DATE, "r1", source=str(tmp_path / "nowhere.csv"))


@pytest.mark.slow
def test_whole_bundled_file_is_accounted_for(spark, make_cfg):
    cfg = make_cfg()
    first = ingest(spark, cfg, dt.date(2011, 12, 9), "full-1")
    assert first.rows_read == 1_067_371
    assert first.rows_kept + first.rows_quarantined == 1_067_371
    assert first.inserted_sales == first.rows_kept
    second = ingest(spark, cfg, dt.date(2011, 12, 9), "full-2")
    assert (second.inserted_sales, second.inserted_quarantine) == (0, 0)
    total = spark.sql(
        "select (select count(*) from bronze.sales) + (select count(*) from bronze.quarantine)"
    ).first()[0]
    assert total == 1_067_371
