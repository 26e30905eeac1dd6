"""Read any lakecast table into pandas or Arrow without Spark, through delta-rs (``deltalake``).

    import datetime as dt
    from jobs.common.reader import read_table
    forecasts = read_table("gold.forecasts", filters=[("run_date", "=", dt.date(2011, 12, 9))])

For DuckDB, read Arrow and query it:

    import duckdb
    models = read_arrow("gold.models", columns=["segment_id", "model", "status", "reason"])
    duckdb.sql("select model, status, count(*) from models group by all").show()

Never read a Delta table's folder as plain Parquet: it would include files the log removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from jobs.common.config import Config, load_config
from jobs.core.errors import ConfigError


def table_path(name: str, cfg: Config | None = None) -> str:
    """Storage path of a table given by its metastore name (``gold.forecasts``) or logical name."""
    cfg = cfg or load_config()
    logical = next((k for k, v in cfg.tables.items() if v == name), name)
    if logical not in cfg.tables:
        raise ConfigError(f"unknown table {name!r}; known: {sorted(cfg.tables.values())}")
    return cfg.table(logical).path


def read_arrow(
    name: str,
    cfg: Config | None = None,
    columns: Sequence[str] | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
) -> pa.Table:
    """The current version of a table as an Arrow table (optionally some columns, filtered)."""
    from deltalake import DeltaTable

    dataset = DeltaTable(table_path(name, cfg)).to_pyarrow_dataset()
    expression = None
    if filters:
        import pyarrow.compute as pc

        for column, op, value in filters:
            field = pc.field(column)
            term = {"=": field == value, "!=": field != value, "<": field < value, "<=": field <= value,
                    ">": field > value, ">=": field >= value}[op]
            expression = term if expression is None else expression & term
    return dataset.to_table(columns=list(columns) if columns else None, filter=expression)


def read_table(
    name: str,
    cfg: Config | None = None,
    columns: Sequence[str] | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
) -> pd.DataFrame:
    """The current version of a table as a pandas DataFrame (see :func:`read_arrow`)."""
    return read_arrow(name, cfg, columns, filters).to_pandas()


def table_versions(cfg: Config) -> dict[str, int]:
    """The current Delta version of every lake table that exists, by metastore name: what a job
    starting now reads. ``VERSION AS OF`` (SQL) or ``versionAsOf`` (reader option) reads a table
    as it was at a recorded version."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    versions = {}
    for logical, name in sorted(cfg.tables.items()):
        try:
            versions[name] = DeltaTable(cfg.table(logical).path, without_files=True).version()
        except TableNotFoundError:
            continue
    return versions


def demand_built_as_of(cfg: Config) -> Any:
    """The date ``silver.demand`` was last built for (a ``datetime.date``), or None before the
    first features run."""
    import pyarrow.compute as pc
    from deltalake.exceptions import TableNotFoundError

    try:
        as_of = read_arrow(cfg.tables["demand"], cfg, columns=["as_of_date"])
    except TableNotFoundError:
        return None
    return pc.max(as_of["as_of_date"]).as_py()
