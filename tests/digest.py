"""A digest of a lake table's contents, to show that a refactoring changed no table.

Rows are rendered column by column (floats to 6 significant digits, so a last-bit difference in
a library's arithmetic is not a change of behaviour; maps sorted), sorted, and hashed.
Columns that differ on every run by design (run ids, fit times) are left out by the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"


def render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{render(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render(v) for v in value) + "]"
    return str(value)


def table_digest(df, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Row count, column names and a SHA-256 of the sorted rendered rows of a Spark DataFrame."""
    columns = sorted(c for c in df.columns if c not in drop)
    rows = sorted("|".join(render(r[c]) for c in columns) for r in df.select(*columns).collect())
    return {"rows": len(rows), "columns": columns,
            "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest()}


def check_golden(name: str, digests: dict[str, Any], write: bool) -> None:
    """Compare ``digests`` with ``tests/golden/<name>.json`` (or write it when ``write``)."""
    path = GOLDEN / f"{name}.json"
    if write:
        path.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
        return
    assert digests == json.loads(path.read_text())
