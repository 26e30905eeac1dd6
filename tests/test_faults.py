"""Faults survived (issue 18, part 4).

A job killed with SIGKILL (driver and JVM at once, like a lost machine) at several points of its
work, inside its Delta writes too, then rerun for the same date, leaves every table equal to an
uninterrupted run's: nothing lost, nothing duplicated, and the run log shows the attempt that
never finished. Two processes on the same lake at once end with one clean failure and complete
tables. A missing or damaged input table is a clear error (exit 2), not a stack trace.

Two nightly drops (``{run_date}.csv``) of a few products, so each kill lands in a real write.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs import features, ingest
from tests.conftest import DENSE, LAYERS, write_config

ROOT = Path(__file__).resolve().parents[1]
FIRST, SECOND = "2011-06-30", "2011-12-09"
TABLES = ("bronze.sales", "bronze.quarantine", "bronze.source_files", "silver.demand")
UNSTABLE = ("run_id",)  # differs between two runs by design


@pytest.fixture(scope="module")
def drops(tmp_path_factory, slice_csv) -> Path:
    """Two drops: lines up to FIRST, and the rest plus three lines with a bad quantity."""
    raw = pd.read_csv(slice_csv, dtype=str, keep_default_na=False)
    raw = raw[raw["StockCode"].isin([*DENSE[:3], "POST"]) | (raw["StockCode"].map(raw["StockCode"].value_counts()) < 7)]
    when = pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M")
    folder = tmp_path_factory.mktemp("drops")
    raw[when <= FIRST].to_csv(folder / f"{FIRST}.csv", index=False)
    bad = raw[when > FIRST].head(3).assign(Quantity="lots")
    pd.concat([raw[when > FIRST], bad]).to_csv(folder / f"{SECOND}.csv", index=False)
    return folder


def lake_config(folder: Path, drops: Path):
    base = write_config(folder / "base")
    return write_config(folder, {"dataset": {**base.raw["dataset"], "source": str(drops / "{run_date}.csv")}})


def snapshot(cfg) -> dict[str, pd.DataFrame]:
    out = {}
    for name in TABLES:
        df = DeltaTable(str(Path(cfg.lake_root) / name.replace(".", "/"))).to_pandas()
        df = df.drop(columns=[c for c in UNSTABLE if c in df.columns])
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def run_log(cfg) -> pd.DataFrame:
    return DeltaTable(cfg.table("pipeline_runs").path).to_pandas()


@pytest.fixture(scope="module")
def reference(spark, tmp_path_factory, drops):
    """The uninterrupted chain, in the tests' own session: ingest both drops, then features."""
    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    cfg = lake_config(tmp_path_factory.mktemp("reference"), drops)
    for job, date in ((ingest, FIRST), (ingest, SECOND), (features, SECOND)):
        assert job.main(["--run-date", date, "--config", str(cfg.path)]) == 0
    return cfg, snapshot(cfg)


def start(job: str, cfg, date: str) -> subprocess.Popen:
    """One job in its own process group: its Python driver and its JVM die together."""
    return subprocess.Popen(
        [sys.executable, "-m", f"jobs.{job}", "--run-date", date, "--config", str(cfg.path)],
        cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish(job: str, cfg, date: str) -> str:
    proc = start(job, cfg, date)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    return out


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 600) -> None:
    """SIGKILL the job's process group the moment ``ready()`` holds; fail if the job ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(f"the job ended before the kill point:\n{proc.stdout.read()[-2000:]}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the kill point was never reached")


def data_files(table: Path) -> int:
    return sum(1 for _ in table.glob("**/*.parquet")) if table.exists() else 0


def commits(table: Path) -> int:
    return sum(1 for _ in (table / "_delta_log").glob("*.json")) if table.exists() else 0


def test_kill_9_anywhere_then_a_rerun_racing_a_second_process_leaves_the_tables_of_an_uninterrupted_run(reference, tmp_path, drops):
    ref_cfg, expected = reference
    cfg = lake_config(tmp_path, drops)
    lake = Path(cfg.lake_root)
    sales, demand = lake / "bronze" / "sales", lake / "silver" / "demand"

    # 1. first drop: killed once bronze.sales has a data file (in its write, before or at its commit)
    kill_when(start("ingest", cfg, FIRST), lambda: data_files(sales) > 0)
    finish("ingest", cfg, FIRST)
    # 2. second drop: killed after bronze.sales committed, before the quarantine and the manifest
    baseline = commits(sales)
    kill_when(start("ingest", cfg, SECOND), lambda: commits(sales) > baseline)
    finish("ingest", cfg, SECOND)
    # 3. features: killed while silver.demand is being written
    kill_when(start("features", cfg, SECOND), lambda: data_files(demand) > 0)
    # ... and rerun as two processes on the same lake at once: the embedded metastore admits one,
    # which completes the date; the other stops at once with one clear error (exit 2)
    first = start("features", cfg, SECOND)
    time.sleep(0.5)
    second = start("features", cfg, SECOND)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert sorted(p.returncode for p in (first, second)) == [0, 2], outputs
    failed = outputs[[first.returncode, second.returncode].index(2)]
    assert "open in another lakecast job" in failed and "Traceback" not in failed, failed[-3000:]

    got = snapshot(cfg)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)
    assert len(got["bronze.quarantine"]) == 3 and set(got["bronze.quarantine"]["reason"]) == {"bad_quantity"}

    runs = run_log(cfg)
    outcome = runs.groupby("run_id")["status"].agg(lambda s: "+".join(sorted(s)))
    jobs = runs.groupby("run_id")["job"].first()
    killed = sorted(jobs[outcome == "running"])
    assert killed == ["features", "ingest", "ingest"], outcome  # each kill: started, never finished
    # each rerun finished; the refused process never started a run
    assert sorted(jobs[outcome == "running+success"]) == ["features", "ingest", "ingest"], outcome


@pytest.mark.parametrize("damage", ["data file deleted", "commit corrupted", "folder deleted"])
def test_a_damaged_input_table_is_a_clear_error(spark, reference, damage, caplog):
    """The reference lake's bronze.sales damaged three ways (and repaired after each). Damage
    happens between runs, so the session's cached Delta snapshots are dropped first, as a new
    job process would start without them."""
    cfg, _ = reference
    sales = Path(cfg.table("sales").path)
    backup = sales.parent / "sales.backup"
    shutil.copytree(sales, backup)
    try:
        if damage == "data file deleted":
            next(sales.glob("*.parquet")).unlink()
        elif damage == "commit corrupted":
            sorted((sales / "_delta_log").glob("*.json"))[-1].write_text("{not json")
        else:
            shutil.rmtree(sales)
        spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
        spark.catalog.clearCache()
        caplog.clear()
        assert features.main(["--run-date", SECOND, "--config", str(cfg.path)]) == 2
        err = caplog.text
        assert "a lake table cannot be read" in err and str(sales) in err, err[-3000:]
        assert "Traceback" not in err
    finally:
        shutil.rmtree(sales, ignore_errors=True)
        shutil.move(backup, sales)
        spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


def test_two_writers_sharing_a_metastore_end_with_complete_tables_or_a_clean_failure(spark, reference, tmp_path, drops, caplog):
    """Two drivers on one shared metastore (here: two threads of the tests' session) run the same
    date at once: Delta's optimistic concurrency either lets both through with the same result or
    refuses one commit, which fails cleanly (exit 2) and whose rerun completes the date."""
    _, expected = reference
    for layer in LAYERS:  # (this drops the reference lake's registration: run after those using it)
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    cfg = lake_config(tmp_path, drops)
    outcomes = []
    for job, date in ((ingest, FIRST), (ingest, SECOND), (features, SECOND)):
        caplog.clear()
        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(lambda _: job.main(["--run-date", date, "--config", str(cfg.path)]), range(2)))
        outcomes.append((job.__name__, date, codes))
        assert set(codes) <= {0, 2}, caplog.text[-3000:]
        if 2 in codes:
            assert "another job wrote a table this one writes at the same moment" in caplog.text, caplog.text[-3000:]
            assert job.main(["--run-date", date, "--config", str(cfg.path)]) == 0
    got = snapshot(cfg)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)
    print(outcomes)


def test_a_missing_input_table_is_a_clear_error(spark, make_cfg, caplog):
    cfg = make_cfg()
    assert features.main(["--run-date", SECOND, "--config", str(cfg.path)]) == 2
    assert "has no sales on or before 2011-12-09; run `lakecast ingest` first" in caplog.text


def test_a_table_registered_elsewhere_or_missing_contract_columns_is_a_clear_error(spark, make_cfg):
    from jobs.common.lake import TableProblem, ensure_table

    cfg = make_cfg()
    ensure_table(spark, cfg, "drift")
    assert ensure_table(spark, cfg, "drift").path == cfg.table("drift").path  # found, not recreated
    elsewhere = make_cfg(name="other")  # same metastore, another lake folder
    with pytest.raises(TableProblem, match=r"registered at .*cfg/.* but the config puts it at .*other/"):
        ensure_table(spark, elsewhere, "drift")

    ref = cfg.table("forecasts")
    spark.sql(f"CREATE TABLE {ref.name} (segment_id STRING) USING delta LOCATION '{ref.path}'")
    with pytest.raises(TableProblem, match=r"lacks the columns \['item_id', 'ds'"):
        ensure_table(spark, cfg, "forecasts")


def test_a_table_of_an_older_lakecast_gets_the_nullable_columns_of_the_newer_contract(spark, make_cfg):
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    from jobs.common.contracts import contract_for
    from jobs.common.lake import ensure_table

    cfg = make_cfg()
    ref, contract = cfg.table("drift"), contract_for(cfg, "drift")
    older = StructType([f for f in contract.schema.fields if f.name not in ("note", "bias_p")])
    assert len(older.fields) == len(contract.schema.fields) - 2
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {ref.database} LOCATION '{cfg.layer_path(ref.database)}'")
    DeltaTable.createIfNotExists(spark).tableName(ref.name).location(ref.path).addColumns(older).execute()
    ensure_table(spark, cfg, "drift")
    assert [f.name for f in spark.table(ref.name).schema.fields] == [f.name for f in older.fields] + ["bias_p", "note"]
