"""Lake tables as small readable text, to show that a change changed no table, or which rows it did.

Rows are rendered column by column (floats to 6 significant digits, so a last-bit difference in
a library's arithmetic is not a change of behaviour; maps sorted) and sorted. A table of at most
:data:`ROWS` rows is kept row by row; a larger one as one line per group of rows (its key, the
group's row count and a hash of its rendered rows), so a diff still says which segment, model or
window changed. Columns that differ on every run by design (run ids, fit times) are left out by
the caller.

The golden files live in ``tests/golden/<name>/<table>.txt``. Regenerate them only for an intended
change of what the chain writes, in a commit of its own (say which rows changed and why):

    LAKECAST_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_pipeline.py -k golden
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"
ROWS = 300
# how a table larger than ROWS is grouped (the first of these columns it has)
GROUPS = (("segment_id", "model", "window"), ("segment_id",), ("item_id",))


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


def table_text(df, drop: tuple[str, ...] = ()) -> str:
    """A Spark DataFrame's rows as text: a header of its columns, then every rendered row sorted,
    or for a large table a line per group (key | rows | hash of the group's rows)."""
    columns = sorted(c for c in df.columns if c not in drop)
    rows = [{c: render(r[c]) for c in columns} for r in df.select(*columns).collect()]
    if len(rows) <= ROWS:
        return "\n".join(["|".join(columns), *sorted("|".join(r[c] for c in columns) for r in rows)]) + "\n"
    key = next(g for g in GROUPS if set(g) <= set(columns))
    groups: dict[tuple[str, ...], list[str]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in key), []).append("|".join(r[c] for c in columns))
    lines = [f"# {len(rows)} rows of {'|'.join(columns)}, by {'|'.join(key)}: rows, sha256 of the sorted rows",
             "|".join([*key, "rows", "sha256"])]
    for k, group in sorted(groups.items()):
        digest = hashlib.sha256("\n".join(sorted(group)).encode()).hexdigest()[:16]
        lines.append("|".join([*k, str(len(group)), digest]))
    return "\n".join(lines) + "\n"


def check_golden(name: str, tables: dict[str, str], write: bool) -> None:
    """Compare ``tables`` (table -> :func:`table_text`) with ``tests/golden/<name>/`` (or write
    them there when ``write``); a difference fails with the lines that changed."""
    folder = GOLDEN / name
    if write:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.txt"):
            old.unlink()
        for table, text in tables.items():
            (folder / f"{table}.txt").write_text(text)
        return
    expected = {p.stem: p.read_text() for p in sorted(folder.glob("*.txt"))}
    changed = []
    for table in sorted(set(expected) | set(tables)):
        before, after = expected.get(table, "").splitlines(), tables.get(table, "").splitlines()
        if before != after:
            diff = list(difflib.unified_diff(before, after, f"golden {table}", f"this run {table}", n=0, lineterm=""))
            changed.append("\n".join(diff[:40] + ([f"... {len(diff) - 40} more lines"] if len(diff) > 40 else [])))
    assert not changed, "tables differ from the golden run:\n" + "\n\n".join(changed)
