"""Maintain job: keep the lake's Delta tables healthy (weekly in the DAG).

For every lakecast table that exists: OPTIMIZE (compact small files; Z-order by the columns its
contract names, the segment, where readers filter by it), then VACUUM the files no version newer
than ``maintenance.vacuum_retention_hours`` needs (default 168: a week of time travel). The files
and bytes in storage before and after go to the run log and the console.

    lakecast maintain [--config PATH]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pyspark.sql import SparkSession

from jobs.common.config import Config, TableRef
from jobs.common.contracts import contract_for
from jobs.common.lake import hadoop_fs, vacuum
from jobs.common.runlog import JobMetrics
from jobs.common.runs import add_common_args, run_job

log = logging.getLogger(__name__)


def storage(spark: SparkSession, ref: TableRef) -> dict[str, int]:
    """Data files and their bytes under the table's folder, of every version still in storage
    (the transaction log and checksum side files left out)."""
    fs, path = hadoop_fs(spark, ref.path)
    listing = fs.listFiles(path, True)
    files = size = 0
    while listing.hasNext():
        status = listing.next()
        relative = status.getPath().toString()[len(path.toString()):]
        if "/_delta_log" not in relative and not status.getPath().getName().startswith((".", "_")):
            files, size = files + 1, size + int(status.getLen())
    return {"files": files, "bytes": size}


def maintain_table(spark: SparkSession, cfg: Config, logical: str) -> dict[str, int]:
    """OPTIMIZE (with Z-order where the contract asks) and VACUUM one table; sizes before and after."""
    ref = cfg.table(logical)
    contract = contract_for(cfg, logical)
    before = storage(spark, ref)
    zorder = [c for c in contract.zorder_by if c not in contract.partition_by] if cfg.maintenance.zorder else []
    spark.sql(f"OPTIMIZE {ref.name}" + (f" ZORDER BY ({', '.join(zorder)})" if zorder else ""))
    vacuum(spark, ref, cfg.maintenance.vacuum_retention_hours)
    after = storage(spark, ref)
    return {"files_before": before["files"], "bytes_before": before["bytes"],
            "files_after": after["files"], "bytes_after": after["bytes"]}


def maintain(spark: SparkSession, cfg: Config) -> dict[str, dict[str, int]]:
    """Every existing table, one after the other, with a progress line each."""
    present = [t for t in cfg.tables if spark.catalog.tableExists(cfg.tables[t])]
    sizes = {}
    for i, logical in enumerate(present, 1):
        started = time.monotonic()
        sizes[cfg.tables[logical]] = s = maintain_table(spark, cfg, logical)
        print(f"[{i}/{len(present)}] {cfg.tables[logical]:<26} files {s['files_before']:>6,} -> {s['files_after']:>6,}"
              f"   MB {s['bytes_before'] / 1e6:>9.1f} -> {s['bytes_after'] / 1e6:>9.1f}"
              f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return sizes


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    sizes = maintain(spark, cfg)
    files_before = sum(s["files_before"] for s in sizes.values())
    files_after = sum(s["files_after"] for s in sizes.values())
    log.info("maintain: %d table(s), files %d -> %d (retention %d h)", len(sizes), files_before, files_after,
             cfg.maintenance.vacuum_retention_hours)
    return JobMetrics(rows_in=files_before, rows_out=files_after,
                      detail={"tables": sizes, "retention_hours": cfg.maintenance.vacuum_retention_hours})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakecast maintain", description="OPTIMIZE and VACUUM the lake")
    return add_common_args(parser, dated=False)


def main(argv: list[str] | None = None) -> int:
    return run_job("maintain", _body, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
