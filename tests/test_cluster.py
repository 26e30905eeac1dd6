"""A real distributed engine: a Spark standalone master and worker on 127.0.0.1 run the chain
through spark-submit, and give the same forecasts as local mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pytest

from jobs.cli import JOBS, run_command
from jobs.common.jars import local_jars
from jobs.common.spark import DRIVER_JAVA_OPTIONS_ENV, SNAPSHOT_PARTITIONS
from tests.conftest import LAYERS, QUICK_EVALUATION, free_port, write_config

PROJECT = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent
RUN_DATE = "2011-12-09"


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_worker(ui_port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
                if json.load(r).get("aliveworkers", 0) >= 1:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError("the Spark worker did not register with the master")


@pytest.fixture
def cluster(tmp_path):
    port, ui, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master = start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(port), "--webui-port", str(ui)], tmp_path / "master.log")
    worker = None
    try:
        worker = start([spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                        "--host", "127.0.0.1", "--cores", "2", "--memory", "2g",
                        "--webui-port", str(worker_ui), "--work-dir", str(tmp_path / "work")],
                       tmp_path / "worker.log")
        wait_for_worker(ui)
        yield f"spark://127.0.0.1:{port}"
    finally:
        for proc in (worker, master):
            if proc is not None:
                stop(proc)
    assert master.poll() is not None and (worker is None or worker.poll() is not None)


def forecasts(path: str) -> dict:
    from deltalake import DeltaTable

    df = DeltaTable(path).to_pandas()
    return {(r.segment_id, r.ds): (r.yhat, r.yhat_lower, r.yhat_upper, r.model) for r in df.itertuples()}


@pytest.mark.slow
def test_chain_on_a_standalone_cluster_matches_local_mode(spark, cluster, slice_csv, tmp_path):
    raw = write_config(tmp_path / "base").raw
    # Prophet too: its Stan fits must run on the executors
    quick = {**QUICK_EVALUATION, "candidates": [*QUICK_EVALUATION["candidates"], "prophet"]}
    # a two-core worker: Delta's state in two tasks, as lakecast does on a local master
    small = {"conf": {**raw["spark"]["conf"], SNAPSHOT_PARTITIONS: "2"}}
    on_cluster = write_config(tmp_path / "cluster", {"evaluation": quick, "spark": small})
    submit = str(SPARK_HOME / "bin" / "spark-submit")
    # the whole chain (ingest to score) in one driver: `lakecast run` through spark-submit
    chain = ["--run-date", RUN_DATE, "--force-train", "--source", str(slice_csv)]
    out = subprocess.run(
        [submit, "--master", cluster, "--jars", ",".join(str(p) for p in local_jars()),
         "--conf", f"spark.pyspark.python={sys.executable}",
         "--conf", f"spark.pyspark.driver.python={sys.executable}",
         "--conf", "spark.ui.enabled=false",
         # the quick JVM of the tests' other jobs (conftest), for the driver and the executor
         "--conf", f"spark.driver.extraJavaOptions={os.environ[DRIVER_JAVA_OPTIONS_ENV]}",
         "--conf", f"spark.executor.extraJavaOptions={os.environ[DRIVER_JAVA_OPTIONS_ENV]}",
         str(PROJECT / "jobs" / "cli.py"), "run", *chain, "--config", str(on_cluster.path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert out.returncode == 0, f"the chain failed on the cluster:\n{out.stderr[-4000:]}"
    assert cluster in out.stderr  # the jobs really ran against the standalone master
    for i, job in enumerate(JOBS, 1):
        assert f"[{i}/{len(JOBS)}] lakecast {job} --run-date {RUN_DATE}" in out.stdout
    assert f"Summary for run date {RUN_DATE}" in out.stdout and "gold.forecasts" in out.stdout

    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    local = write_config(tmp_path / "local", {"evaluation": quick})
    assert run_command([*chain, "--config", str(local.path)]) == 0  # in this test's local-mode session

    remote, here = forecasts(on_cluster.table("forecasts").path), forecasts(local.table("forecasts").path)
    assert remote.keys() == here.keys() and len(here) >= 10 * 28
    for key, (yhat, lower, upper, model) in here.items():
        r = remote[key]
        assert r[3] == model
        assert r[:3] == pytest.approx((yhat, lower, upper), rel=1e-9, abs=1e-9), key
