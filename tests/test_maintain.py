"""Lake upkeep: lakecast maintain compacts and vacuums every table, keeps every row, logs sizes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from jobs import cli

DIRTY = Path(__file__).parent / "data" / "retail_dirty.csv"
RUN_DATE = dt.date(2011, 1, 31)


def test_maintain_compacts_vacuums_and_logs_sizes(spark, make_cfg, tmp_path):
    cfg = make_cfg({"maintenance": {"vacuum_retention_hours": 0, "zorder": True},
                    "features": {"min_history_periods": 1, "min_nonzero_periods": 1}})
    config = ["--config", str(cfg.path)]
    header, *lines = DIRTY.read_text().splitlines()
    for i in range(3):  # three drops: three small files per bronze table, and rewrites of silver
        drop = tmp_path / f"drop{i}"
        drop.mkdir()
        (drop / f"part{i}.csv").write_text("\n".join([header, *lines[i::3]]) + "\n")
        assert cli.main(["ingest", "--run-date", str(RUN_DATE + dt.timedelta(i)), "--source", str(drop), *config]) == 0
        assert cli.main(["features", "--run-date", str(RUN_DATE + dt.timedelta(i)), *config]) == 0
    tables = ("bronze.sales", "bronze.quarantine", "silver.demand")
    before = {t: sorted(map(tuple, spark.table(t).collect())) for t in tables}

    assert cli.main(["maintain", *config]) == 0

    assert {t: sorted(map(tuple, spark.table(t).collect())) for t in tables} == before
    run = spark.table("gold.pipeline_runs").filter("job = 'maintain' AND status <> 'running'").collect()
    assert len(run) == 1 and run[0].status == "success"
    sizes = json.loads(run[0].detail)["tables"]
    assert set(tables) <= set(sizes)
    for name in tables:
        assert sizes[name]["files_after"] < sizes[name]["files_before"], (name, sizes[name])
        assert sizes[name]["bytes_after"] < sizes[name]["bytes_before"], (name, sizes[name])
    assert sum(1 for _ in Path(cfg.table("sales").path).glob("*.parquet")) == 1  # three files compacted, old ones vacuumed
    history = spark.sql("DESCRIBE HISTORY silver.demand").collect()
    optimize = [h for h in history if h.operation == "OPTIMIZE"]
    assert optimize and json.loads(optimize[0].operationParameters["zOrderBy"]) == ["segment_id"]
