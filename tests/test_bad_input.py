"""Bad input a real drop can hold: every line ends in bronze or the quarantine with a reason, or
the drop is refused with a clear error and nothing written; never a crash or a silent loss."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil

import pytest

from jobs.core.errors import ConfigError
from jobs.ingest import UnreadableFile, ingest

RUN_DATE = dt.date(2011, 1, 31)
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
GOOD = ["1001,A1,Widget,5,1/3/2011 9:00,2.5,12345.0,United Kingdom",
        "1002,A2,Gadget,2,1/4/2011 9:00,1.5,12346.0,France"]


def drop(folder, name: str, lines: list[str], header: str = HEADER, encoding: str = "utf-8") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(("\n".join([header, *lines]) + "\n").encode(encoding))
    return str(folder)


def quarantined(spark) -> dict[int, str]:
    return {r.source_line: r.reason for r in spark.table("bronze.quarantine").collect()}


def accounted(result) -> bool:
    return result.rows_read == result.rows_kept + result.rows_quarantined


def test_bad_bytes_bom_far_dates_and_extreme_quantities_are_quarantined(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    folder = tmp_path / "drop"
    drop(folder, "day.csv", [
        GOOD[0],                                                        # 2 kept
        "1003,A1,Widget,3,1/5/1900 9:00,2.5,12345.0,United Kingdom",    # 3 long before earliest_date
        "1004,A1,Widget,3,1/5/2099 9:00,2.5,12345.0,United Kingdom",    # 4 far after the run date
        "1005,A1,Widget,1e12,1/5/2011 9:00,2.5,12345.0,United Kingdom", # 5 a trillion units
        "1006,A1,Widget,Infinity,1/5/2011 9:00,2.5,12345.0,United Kingdom",  # 6 not finite
        "1007,A1,Widget,3,1/5/2011 9:00,-inf,12345.0,United Kingdom",   # 7 price not finite
        "1008,A1,Widget,3,2/20/2011 9:00,2.5,12345.0,United Kingdom",   # 8 20 days ahead: kept
    ])
    path = folder / "day.csv"
    lines = path.read_bytes().split(b"\n")
    lines.insert(2, b"1009,A1,Wid\xff\xfeget,3,1/5/2011 9:00,2.5,12345.0,United Kingdom")  # 3: latin-1 junk
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))  # and a UTF-8 byte-order mark
    result = ingest(spark, cfg, RUN_DATE, "r1", source=str(folder))
    assert accounted(result) and result.rows_read == 8
    assert quarantined(spark) == {3: "bad_encoding", 4: "date_out_of_range", 5: "date_out_of_range",
                                  6: "extreme_quantity", 7: "bad_quantity", 8: "bad_price"}
    assert sorted(r.source_line for r in spark.table("bronze.sales").collect()) == [2, 9]


def test_a_changed_header_is_refused_a_reordered_one_is_read(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    renamed = drop(tmp_path / "renamed", "day.csv", GOOD, header=HEADER.replace("Quantity", "Qty"))
    with pytest.raises(ConfigError, match="lacks the configured columns {'quantity': 'Quantity'}"):
        ingest(spark, cfg, RUN_DATE, "r1", source=renamed)
    assert spark.table("bronze.sales").isEmpty() and spark.table("bronze.quarantine").isEmpty()
    columns = HEADER.split(",")
    order = [6, 0, 3, 1, 2, 5, 4, 7]
    moved = [",".join(line.split(",")[i] for i in order) + ",extra" for line in GOOD]
    source = drop(tmp_path / "moved", "day.csv", moved, header=",".join(columns[i] for i in order) + ",Note")
    result = ingest(spark, cfg, RUN_DATE, "r2", source=source)
    assert accounted(result) and result.rows_kept == 2
    assert {r.item_id: r.quantity for r in spark.table("bronze.sales").collect()} == {"A1": 5.0, "A2": 2.0}


def test_truncated_gzip_and_corrupt_parquet_are_refused_with_nothing_written(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    folder = tmp_path / "gz"
    folder.mkdir()
    body = ("\n".join([HEADER, *GOOD * 2000]) + "\n").encode()
    (folder / "day.csv.gz").write_bytes(gzip.compress(body)[:-200])
    with pytest.raises(UnreadableFile, match="day.csv.gz cannot be read to its end: it is truncated or corrupt"):
        ingest(spark, cfg, RUN_DATE, "r1", source=str(folder))
    assert spark.table("bronze.sales").isEmpty() and spark.table("bronze.quarantine").isEmpty()

    spark.sql("DROP DATABASE IF EXISTS bronze CASCADE")  # the next lake registers its own tables
    pq_cfg = make_cfg({"dataset": {**cfg.raw["dataset"], "format": "parquet"}}, name="pq")
    bad = tmp_path / "pq_drop"
    bad.mkdir()
    (bad / "day.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 100)
    with pytest.raises(UnreadableFile, match="day.parquet cannot be read to its end"):
        ingest(spark, pq_cfg, RUN_DATE, "r2", source=str(bad))


def test_empty_files_and_duplicate_files_are_skipped_and_reported(spark, make_cfg, tmp_path):
    cfg = make_cfg()
    folder = tmp_path / "drop"
    drop(folder, "a.csv", GOOD)
    shutil.copy(folder / "a.csv", folder / "a_copy.csv")  # the same export delivered twice
    (folder / "b.csv").write_bytes(b"")  # a failed export
    result = ingest(spark, cfg, RUN_DATE, "r1", source=str(folder))
    assert accounted(result) and (result.rows_read, result.files) == (2, ["a.csv"])
    assert result.skipped == {"a_copy.csv": "duplicate of a.csv", "b.csv": "empty file"}
    # the next night re-delivers yesterday's file under a new name: skipped, nothing counted twice
    later = tmp_path / "later"
    drop(later, "c.csv", ["1003,A3,Thing,1,1/6/2011 9:00,1.0,12347.0,France"])
    shutil.copy(folder / "a.csv", later / "a-resent.csv")
    result = ingest(spark, cfg, RUN_DATE + dt.timedelta(1), "r2", source=str(later))
    assert result.skipped == {"a-resent.csv": "duplicate of a.csv"} and result.rows_read == 1
    assert spark.table("bronze.sales").count() == 3
    manifest = {r.source_file: (r.status, r.duplicate_of) for r in spark.table("bronze.source_files").collect()}
    assert manifest == {"a.csv": ("ingested", None), "a_copy.csv": ("duplicate", "a.csv"), "b.csv": ("empty", None),
                        "c.csv": ("ingested", None), "a-resent.csv": ("duplicate", "a.csv")}
    # a rerun of the first night changes nothing: the same rows, and no line of it added again
    before = sorted(tuple(r) for r in spark.table("bronze.sales").drop("run_date").collect())
    rerun = ingest(spark, cfg, RUN_DATE, "r3", source=str(folder))
    assert sorted(tuple(r) for r in spark.table("bronze.sales").drop("run_date").collect()) == before
    assert rerun.skipped == {"a_copy.csv": "duplicate of a.csv", "b.csv": "empty file"}
