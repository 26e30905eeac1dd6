"""The benchmarks' measured history: each benchmark run appends its figures to
``benchmarks/results.jsonl``, one JSON line with the date, the commit, the machine and what it
measured, so a figure quoted anywhere can be traced to the run that produced it (and the README
keeps only the current one). ``--no-record`` on a benchmark leaves the file alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.jsonl"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory = None
    try:
        with open("/proc/meminfo") as f:
            memory = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": memory, "python": platform.python_version(),
            "system": platform.platform(terse=True)}


def commit() -> str | None:
    """The checked-out commit, with ``+dirty`` when the working tree has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def record(benchmark: str, figures: dict[str, Any], settings: dict[str, Any] | None = None,
           path: Path = RESULTS) -> dict[str, Any]:
    """Append one run's figures to the results file; returns the line written."""
    line = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "benchmark": benchmark,
            "commit": commit(), "machine": machine(), "settings": settings or {}, "figures": figures}
    with path.open("a") as f:
        f.write(json.dumps(line, sort_keys=True, default=str) + "\n")
    print(f"recorded in {path.relative_to(path.parent.parent) if path.is_relative_to(path.parent.parent) else path}")
    return line
