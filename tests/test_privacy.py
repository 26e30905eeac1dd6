"""Personal data: HMAC-SHA256 customer hashes, a key that never leaks, the migration of old hashes,
and erasure on request that leaves no trace in any file of the lake."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs import cli, ingest as ingest_job
from jobs.common.privacy import hash_id
from jobs.core.errors import LakecastError
from jobs.ingest import ingest, read_csv_file, validate

DIRTY = Path(__file__).parent / "data" / "retail_dirty.csv"
RUN_DATE = dt.date(2011, 1, 31)
KEY = "a-test-key-0f9c2e"  # never a real secret
CUSTOMER = "12345.0"  # lines 2 and 3 of retail_dirty.csv: both kept
REJECTED = "12347.0"  # lines 7 to 12: all quarantined


def files_holding(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` that holds ``needle``: Parquet read value by value (its pages
    are compressed, so bytes alone could hide a value), every other file as bytes."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            if any(needle in str(v) for column in table.columns for v in column.to_pylist()):
                found.append(str(path))
        elif needle.encode() in path.read_bytes():
            found.append(str(path))
    return found


def test_customer_hash_is_hmac_sha256_of_the_raw_id(spark, make_cfg, monkeypatch):
    cfg = make_cfg()
    monkeypatch.setenv(cfg.hash_key_env, KEY)
    ingest(spark, cfg, RUN_DATE, "r1", source=str(DIRTY))
    expected = hmac.new(KEY.encode(), CUSTOMER.encode(), hashlib.sha256).hexdigest()
    assert hash_id(CUSTOMER, KEY) == expected
    hashes = {r.source_line: r.customer_hash for r in spark.table("bronze.sales").collect()}
    assert hashes[2] == hashes[3] == expected
    assert hashes[4] == hmac.new(KEY.encode(), b"12346.0", hashlib.sha256).hexdigest()
    # the quarantine's redacted line carries the same hash in place of the id
    line16 = spark.table("bronze.quarantine").filter("source_line = 16").first().raw_line
    assert hash_id("12349.0", KEY) in line16 and "12349.0" not in line16
    properties = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES bronze.sales").collect()}
    assert properties["lakecast.customer_hash"] == "hmac-sha256"
    assert "customer_hash" not in properties["delta.dataSkippingStatsColumns"].split(",")


def test_the_key_appears_in_no_log_table_or_plan(spark, make_cfg, monkeypatch, capfd, caplog):
    cfg = make_cfg()
    monkeypatch.setenv(cfg.hash_key_env, KEY)
    plan = validate(read_csv_file(spark, str(DIRTY), "retail_dirty.csv", cfg.dataset), cfg.dataset, KEY)
    assert KEY not in plan._jdf.queryExecution().toString()
    code = ingest_job.main(["--run-date", str(RUN_DATE), "--config", str(cfg.path), "--run-id", "keyed",
                            "--source", str(DIRTY)])
    assert code == 0
    out, err = capfd.readouterr()
    assert KEY not in out + err + caplog.text
    for table in ("bronze.sales", "bronze.quarantine", "gold.pipeline_runs"):
        assert not any(KEY in str(v) for row in spark.table(table).collect() for v in row), table
    assert not files_holding(Path(cfg.lake_root), KEY)


def test_old_hashes_are_refused_then_migrated_by_rehash(spark, make_cfg, monkeypatch):
    cfg = make_cfg()
    monkeypatch.setenv(cfg.hash_key_env, KEY)
    ingest(spark, cfg, RUN_DATE, "r1", source=str(DIRTY))
    # make it a table written by an older lakecast: sha256(key|id)-style hashes, no scheme property
    spark.sql("ALTER TABLE bronze.sales UNSET TBLPROPERTIES ('lakecast.customer_hash')")
    spark.sql("UPDATE bronze.sales SET customer_hash = sha2(concat('old|', customer_hash), 256)")
    old = {r.line_key: r.customer_hash for r in spark.table("bronze.sales").collect()}
    before = spark.table("bronze.sales").drop("customer_hash").orderBy("line_key").collect()

    with pytest.raises(LakecastError, match="old construction.*--rehash"):
        ingest(spark, cfg, RUN_DATE, "r2", source=str(DIRTY))
    with pytest.raises(LakecastError, match="lacks \\['retail_dirty.csv'\\]"):
        other = DIRTY.parent / "elsewhere"
        other.mkdir(exist_ok=True)
        try:
            (other / "drop.csv").write_text(DIRTY.read_text().splitlines()[0] + "\n")
            ingest(spark, cfg, RUN_DATE, "r2", source=str(other), rehash=True)
        finally:
            (other / "drop.csv").unlink()
            other.rmdir()
    assert {r.line_key: r.customer_hash for r in spark.table("bronze.sales").collect()} == old

    ingest(spark, cfg, RUN_DATE, "r3", source=str(DIRTY), rehash=True)
    new = {r.source_line: r.customer_hash for r in spark.table("bronze.sales").collect()}
    assert new[2] == new[3] == hash_id(CUSTOMER, KEY)
    assert spark.table("bronze.sales").drop("customer_hash").orderBy("line_key").collect() == before
    # migrated: a normal ingest runs again and adds nothing
    assert ingest(spark, cfg, RUN_DATE, "r4", source=str(DIRTY)).inserted_sales == 0


def test_forget_erases_a_customer_from_every_file_and_keeps_every_other_row(spark, make_cfg, monkeypatch, tmp_path):
    cfg = make_cfg({"features": {"min_history_periods": 1, "min_nonzero_periods": 1}})
    monkeypatch.setenv(cfg.hash_key_env, KEY)
    config = ["--config", str(cfg.path)]
    assert ingest_job.main(["--run-date", str(RUN_DATE), "--source", str(DIRTY), *config]) == 0
    assert cli.main(["features", "--run-date", str(RUN_DATE), *config]) == 0
    target, rejected, lake = hash_id(CUSTOMER, KEY), hash_id(REJECTED, KEY), Path(cfg.lake_root)
    sales = spark.table("bronze.sales").toPandas()
    quarantine = spark.table("bronze.quarantine").toPandas()
    erased = sales[sales.customer_hash == target]
    gone = quarantine.raw_line.fillna("").str.contains(rejected)
    assert len(erased) == 2 and gone.sum() == 6
    assert files_holding(lake, target) and files_holding(lake, rejected)  # the scan can find them

    ids = tmp_path / "ids.txt"
    ids.write_text(f"{REJECTED}\n\n99999.0\n")  # an unknown id: nothing to erase for it
    demand_lines = spark.table("silver.demand").agg(F.sum("n_lines")).first()[0]
    assert cli.main(["forget", "--customer-id", CUSTOMER, "--from", str(ids), *config]) == 0

    assert files_holding(lake, target) == [] and files_holding(lake, rejected) == []
    by_key = ["source_file", "source_line"]
    kept = spark.table("bronze.sales").toPandas().sort_values(by_key).reset_index(drop=True)
    assert kept.equals(sales[sales.customer_hash != target].sort_values(by_key).reset_index(drop=True))
    left = spark.table("bronze.quarantine").toPandas().sort_values(by_key).reset_index(drop=True)
    assert left.equals(quarantine[~gone].sort_values(by_key).reset_index(drop=True))
    # silver.demand was rebuilt from what remains
    demand_types = erased.line_type.isin(cfg.features.demand_line_types)
    assert (spark.table("silver.demand").agg(F.sum("n_lines")).first()[0] or 0) == demand_lines - demand_types.sum()
    # the audit record: counts, no id, no hash
    audit = spark.table("gold.pipeline_runs").filter("job = 'forget' AND status <> 'running'").collect()
    assert len(audit) == 1 and audit[0].status == "success" and audit[0].rows_in == 3 and audit[0].rows_out == 8
    assert not any(i in str(v) for v in audit[0] for i in (CUSTOMER, REJECTED, target, rejected))
    # time travel to before the erasure is gone with the vacuumed files (the documented trade-off)
    with pytest.raises(Exception, match="(?i)not.exist|FileNotFound"):
        spark.read.format("delta").option("versionAsOf", 1).load(cfg.table("sales").path).collect()


def test_forget_without_ids_is_a_clear_error(spark, make_cfg):
    cfg = make_cfg()
    assert cli.main(["forget", "--config", str(cfg.path)]) == 2
