"""Shared fixtures: one SparkSession with Delta and a real (Derby) metastore for the whole run."""

from __future__ import annotations

import copy
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from jobs.common.config import DEFAULT_CONFIG, Config, load_config
from jobs.common.spark import DRIVER_JAVA_OPTIONS_ENV, get_spark

# Airflow reads its home at import: keep the tests' Airflow out of ~/airflow, one home per
# pytest-xdist worker (each has its own SQLite database).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ.setdefault("AIRFLOW_HOME", os.path.join(tempfile.gettempdir(), f"lakecast-tests-airflow-{_WORKER}"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# The jobs the tests start in their own processes (spark-submit in the DAG and cluster tests,
# killed and racing jobs) work on lakes of a few products, where a JVM spends most of its time
# warming up: without the C2 compiler it needs about 40 % less CPU (docs/configuration.md). The
# tests' own session is built without it: it runs the whole suite's in-process work.
QUICK_JVM = "-XX:TieredStopAtLevel=1"
os.environ.setdefault(DRIVER_JAVA_OPTIONS_ENV, QUICK_JVM)

LAYERS = ("bronze", "silver", "gold")
DENSE = ["85123A", "22423", "84879", "21212", "47566", "20725"]
SOURCE = DEFAULT_CONFIG.parent.parent / "data" / "online_retail_II_transactions.csv.xz"


# Tests of orchestration, clusters and faults check how jobs run, not how well models forecast:
# they backtest cheap candidates in two windows (the model tests and the golden chain cover the
# full default list).
QUICK_EVALUATION = {"candidates": ["seasonal_naive", "dot", "combo_median"], "intermittent_candidates": ["tsb"],
                    "windows": 2}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for the servers the tests start: a Spark master and worker, the Thrift server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The bundled demo config with a lake in ``folder`` and ``overrides`` merged in."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["lake"]["root"] = str(folder / "lake")
    raw["dataset"]["source"] = str(DEFAULT_CONFIG.parent / raw["dataset"]["source"])
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**copy.deepcopy(raw[section]), **values}
        else:
            raw[section] = values
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lakecast.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def invoice_line(number: int, code: str, day: pd.Timestamp, quantity: int, price: float = 1.5) -> dict[str, Any]:
    """One invoice line in the bundled data's layout (the demo config reads it as is)."""
    return {"Invoice": f"{number:07d}", "StockCode": code, "Description": f"item {code}", "Quantity": quantity,
            "InvoiceDate": f"{day.month}/{day.day}/{day.year} 10:00", "Price": price, "Customer ID": "",
            "Country": "United Kingdom"}


def synthetic_lake(spark, folder: Path, lines: pd.DataFrame, overrides: dict[str, Any]) -> tuple[Config, Path]:
    """A fresh lake in ``folder`` (the session metastore's layer databases dropped) whose source
    is ``lines``: (config, source file)."""
    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    source = folder / "lines.csv"
    folder.mkdir(parents=True, exist_ok=True)
    lines.to_csv(source, index=False)
    return write_config(folder / "cfg", overrides), source


def slice_lake(spark, slice_csv: Path, base: Path, run_date) -> Callable[..., Config]:
    """A fresh lake in ``base`` with the slice ingested and its features built as of
    ``run_date``; returns a config factory (name, overrides) whose configs share that lake."""
    from jobs.features import features
    from jobs.ingest import ingest

    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    cfg = write_config(base / "default")
    ingest(spark, cfg, run_date, "ingest", source=str(slice_csv))
    features(spark, cfg, run_date, "features")

    def config(name: str, overrides: dict[str, Any] | None = None) -> Config:
        return write_config(base / name, {"lake": {"root": cfg.lake_root}, **(overrides or {})})

    return config


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("session")
    cfg = write_config(
        base,
        {
            "spark": {
                "master": "local[2]",
                "conf": {
                    "spark.sql.shuffle.partitions": "4",
                    "spark.ui.enabled": "false",
                    "spark.sql.adaptive.coalescePartitions.enabled": "false",
                    "spark.driver.memory": "4g",
                },
            }
        },
    )
    with pytest.MonkeyPatch.context() as env:
        env.delenv(DRIVER_JAVA_OPTIONS_ENV, raising=False)
        session = get_spark(cfg, "lakecast-tests")
    yield session
    session.stop()


@pytest.fixture
def make_cfg(spark, tmp_path: Path) -> Callable[..., Config]:
    """Config factory for a fresh, empty lake in this test's tmp folder.

    The metastore is the session's; the layer databases are dropped first so each test starts
    with no registered tables.
    """
    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")

    def factory(overrides: dict[str, Any] | None = None, name: str = "cfg") -> Config:
        return write_config(tmp_path / name, overrides)

    return factory


@pytest.fixture(scope="session")
def slice_csv(tmp_path_factory) -> Path:
    """Every line of six best sellers, three rare products, a late starter and postage."""
    raw = pd.read_csv(SOURCE, dtype=str, keep_default_na=False)
    counts = raw["StockCode"].value_counts()
    rare = sorted(counts[(counts >= 3) & (counts <= 6)].index)[:3]
    first_seen = raw.groupby("StockCode")["InvoiceDate"].first()
    late = sorted(
        c for c in first_seen.index
        if first_seen[c].startswith("11/") and "/2011" in first_seen[c] and counts[c] > 20
    )[:1]
    keep = raw[raw["StockCode"].isin(DENSE + rare + late + ["POST"])]
    path = tmp_path_factory.mktemp("slice") / "retail_slice.csv"
    keep.to_csv(path, index=False)
    return path
