"""Forget job: erase customers on request (GDPR art. 17, CCPA).

Removes every line of the given customers from ``bronze.sales`` and ``bronze.quarantine`` and
vacuums the files that held them once ``privacy.erasure_retention_hours`` have passed (default
0: at once, which also ends time travel to the versions before the erasure). The customer ids are
the raw ids as they appear in the source; each is hashed with the configured key (HMAC-SHA256)
and matched on the hash, so the raw id never reaches the lake or the logs. The run log row
(``gold.pipeline_runs``, job ``forget``) is the audit record: when, how many ids were asked for,
how many lines each table lost; no id and no hash. ``lakecast forget`` then rebuilds
``silver.demand`` from what remains (the features job for its current date).

    lakecast forget --customer-id 12345.0 [--customer-id ...] [--from ids.txt]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from jobs.common.config import Config
from jobs.common.lake import ensure_table, vacuum
from jobs.common.privacy import hash_id, resolve_hash_key
from jobs.common.runlog import JobMetrics
from jobs.common.runs import add_common_args, run_job
from jobs.core.errors import LakecastError

log = logging.getLogger(__name__)

# How a table's rows are matched to the hashes to erase: bronze.sales by its hash column, the
# quarantine by the redacted raw line, which carries the hash in place of the id.
MATCH = {"sales": "t.customer_hash = s.customer_hash", "quarantine": "instr(t.raw_line, s.customer_hash) > 0"}


def read_ids(ids: list[str], from_file: str | None) -> list[str]:
    """The ids given on the command line and in the file (one per line; blank lines skipped)."""
    found = [i.strip() for i in ids]
    if from_file:
        path = Path(from_file)
        if not path.is_file():
            raise LakecastError(f"--from {from_file}: no such file (one customer id per line)")
        found += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    found = sorted({i for i in found if i})
    if not found:
        raise LakecastError("no customer id to forget: pass --customer-id ID or --from FILE")
    return found


def forget(spark: SparkSession, cfg: Config, ids: list[str]) -> dict[str, int]:
    """Erase the customers' lines; returns the lines removed per table."""
    key = resolve_hash_key(cfg)
    if key is None:
        raise LakecastError(f"dataset {cfg.dataset.name} maps no customer_id column: it holds no customer to erase")
    hashes = spark.createDataFrame([(hash_id(i, key),) for i in ids], "customer_hash string")
    removed = {}
    for logical, condition in MATCH.items():
        ref = ensure_table(spark, cfg, logical)
        metrics = (
            DeltaTable.forName(spark, ref.name).alias("t")
            .merge(hashes.alias("s"), condition)
            .whenMatchedDelete()
            .execute()
            .first()
        )
        removed[ref.name] = int(metrics["num_deleted_rows"])
        log.info("forget: %d line(s) removed from %s", removed[ref.name], ref.name)
    hours = cfg.privacy.erasure_retention_hours
    for logical in MATCH:
        vacuum(spark, cfg.table(logical), hours)
    log.info("forget: files older than %d h vacuumed from %s", hours, ", ".join(cfg.table(t).name for t in MATCH))
    return removed


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    ids = read_ids(args.customer_id, args.from_file)
    removed = forget(spark, cfg, ids)
    print(f"forget: {len(ids)} customer id(s); lines removed: "
          + ", ".join(f"{table} {n:,}" for table, n in removed.items()))
    return JobMetrics(rows_in=len(ids), rows_out=sum(removed.values()),
                      detail={"lines_removed": removed, "retention_hours": cfg.privacy.erasure_retention_hours})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakecast forget", description="Erase customers from the lake")
    add_common_args(parser, dated=False)
    parser.add_argument("--customer-id", action="append", default=[], help="raw customer id (repeatable)")
    parser.add_argument("--from", dest="from_file", default=None, help="file with one customer id per line")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_job("forget", _body, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
