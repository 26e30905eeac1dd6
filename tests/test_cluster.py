"""A real distributed engine: a Spark standalone master and worker on 127.0.0.1 run the chain
through spark-submit, and give the same forecasts as local mode."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pytest

from jobs.common.jars import local_jars
from jobs.common.spark import SNAPSHOT_PARTITIONS
from jobs.evaluate import evaluate
from jobs.features import features
from jobs.ingest import ingest
from jobs.score import score
from jobs.train import train
from tests.conftest import LAYERS, QUICK_EVALUATION, write_config

PROJECT = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent
RUN_DATE = "2011-12-09"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    base = raw["dataset"]
    # Prophet too: its Stan fits must run on the executors
    quick = {**QUICK_EVALUATION, "candidates": [*QUICK_EVALUATION["candidates"], "prophet"]}
    # a two-core worker: Delta's state in two tasks, as lakecast does on a local master
    small = {"conf": {**raw["spark"]["conf"], SNAPSHOT_PARTITIONS: "2"}}
    on_cluster = write_config(tmp_path / "cluster", {"dataset": {**base, "source": str(slice_csv)},
                                                     "evaluation": quick, "spark": small})
    submit = str(SPARK_HOME / "bin" / "spark-submit")
    for job in ("ingest", "features", "evaluate", "train", "score"):
        out = subprocess.run(
            [submit, "--master", cluster, "--jars", ",".join(str(p) for p in local_jars()),
             "--conf", f"spark.pyspark.python={sys.executable}",
             "--conf", f"spark.pyspark.driver.python={sys.executable}",
             "--conf", "spark.ui.enabled=false",
             str(PROJECT / "jobs" / f"{job}.py"), "--run-date", RUN_DATE, "--config", str(on_cluster.path)],
            cwd=tmp_path, capture_output=True, text=True, timeout=900,
            env={**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"},
        )
        assert out.returncode == 0, f"{job} failed on the cluster:\n{out.stderr[-4000:]}"
        assert cluster in out.stderr  # the job really ran against the standalone master

    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    local = write_config(tmp_path / "local", {"dataset": {**base, "source": str(slice_csv)}, "evaluation": quick})
    import datetime as dt

    day = dt.date.fromisoformat(RUN_DATE)
    ingest(spark, local, day, "local-ingest")
    features(spark, local, day, "local-features")
    evaluate(spark, local, day, "local-evaluate")
    train(spark, local, day, "local-train")
    score(spark, local, day, "local-score")

    remote, here = forecasts(on_cluster.table("forecasts").path), forecasts(local.table("forecasts").path)
    assert remote.keys() == here.keys() and len(here) >= 10 * 28
    for key, (yhat, lower, upper, model) in here.items():
        r = remote[key]
        assert r[3] == model
        assert r[:3] == pytest.approx((yhat, lower, upper), rel=1e-9, abs=1e-9), key
