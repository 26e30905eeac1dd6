"""The one SparkSession builder used by every job and every test.

Local runs (``lakecast ...``, pytest) get: the configured master, the Delta jars from the set-up
cache, Delta's SQL extension and catalog, an embedded Derby metastore kept in the lake folder,
Python workers on this interpreter, UTC session time and quiet logs. Under ``spark-submit`` the
command line owns the master, the jars and the driver's JVM options; everything else is the same.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.common import jars
from jobs.common.config import Config, is_uri
from jobs.common.logs import quiet_libraries
from jobs.core.errors import LakecastError

log = logging.getLogger(__name__)

LOG4J_CONF = Path(__file__).with_name("log4j2.properties")
# Extra JVM options for a job's driver (on a local master, the executors' JVM too), appended to
# lakecast's own; the nightly DAG reads the same variable for its spark-submit tasks. When
# "-XX:TieredStopAtLevel=1" helps (short jobs on small lakes) and when it hurts: docs/configuration.md.
DRIVER_JAVA_OPTIONS_ENV = "LAKECAST_DRIVER_JAVA_OPTIONS"


def under_spark_submit() -> bool:
    """True when spark-submit (or the pyspark shell) launched this Python process."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session_conf(cfg: Config) -> dict[str, str]:
    """All Spark settings lakecast uses, config and environment overrides applied last."""
    python = sys.executable
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": f"{cfg.lake_root}/_warehouse",
        "spark.sql.session.timeZone": "UTC",
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta tables are addressed by path and registered in the metastore; no stats noise.
        "spark.sql.statistics.size.autoUpdate.enabled": "false",
        "spark.executorEnv.PYTHONHASHSEED": "0",
    }
    if cfg.metastore_dir:
        if is_uri(cfg.metastore_dir):
            raise ValueError(
                f"metastore_dir must be a local folder for embedded Derby, got {cfg.metastore_dir}; "
                "set lake.metastore_dir (or LAKECAST_METASTORE) to a local path, or configure a "
                "metastore database through spark.hadoop.javax.jdo.option.* in spark.conf"
            )
        db = Path(cfg.metastore_dir) / "metastore_db"
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={db};create=true"
        )
    if not under_spark_submit():
        conf["spark.master"] = cfg.spark_master
        delta_jars = jars.local_jars()
        if not delta_jars:
            raise RuntimeError(
                f"Delta Lake jars not found in {jars.jars_dir()}; run `make setup` once "
                "(it fetches them from Maven Central), or set LAKECAST_JARS_DIR"
            )
        conf["spark.jars"] = ",".join(str(p) for p in delta_jars)
        java_opts = [f"-Dlog4j2.configurationFile=file:{LOG4J_CONF}"]
        if cfg.metastore_dir:
            Path(cfg.metastore_dir).mkdir(parents=True, exist_ok=True)
            java_opts += [
                f"-Dderby.system.home={cfg.metastore_dir}",
                f"-Dderby.stream.error.file={cfg.metastore_dir}/derby.log",
            ]
        java_opts += os.environ.get(DRIVER_JAVA_OPTIONS_ENV, "").split()
        conf["spark.driver.extraJavaOptions"] = " ".join(java_opts)
    conf.update(cfg.spark_conf)
    return conf


def get_spark(cfg: Config, app_name: str = "lakecast") -> SparkSession:
    """Build (or return the running) SparkSession for ``cfg``."""
    active = SparkSession.getActiveSession()
    if active is not None:  # jobs chained in one process share the session
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    quiet_libraries()
    if cfg.metastore_dir and not under_spark_submit() and derby_in_use(cfg.metastore_dir):
        raise MetastoreUnavailable(metastore_busy(cfg.metastore_dir))
    builder = SparkSession.builder.appName(app_name).enableHiveSupport()
    for key, value in session_conf(cfg).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    size_for_local_master(spark, cfg)
    check_metastore(spark, cfg)
    log.info(
        "spark %s master=%s lake=%s", spark.version, spark.sparkContext.master, cfg.lake_root
    )
    return spark


SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"


def size_for_local_master(spark: SparkSession, cfg: Config) -> None:
    """Delta computes a table's state in 50 tasks by default, sized for a cluster; on a local
    master that costs seconds per snapshot of even a tiny table (features of the test slice under
    spark-submit: 60 s with 50, 44 s with 2). On a local master, launched by lakecast or by
    spark-submit, use one task per core instead; the config's spark.conf can set it."""
    if spark.sparkContext.master.startswith("local") and SNAPSHOT_PARTITIONS not in cfg.spark_conf:
        spark.conf.set(SNAPSHOT_PARTITIONS, str(spark.sparkContext.defaultParallelism))


class MetastoreUnavailable(LakecastError):
    """The metastore cannot be opened (for the embedded one: another job holds it)."""


def derby_in_use(metastore_dir: str) -> bool:
    """True when another process has the embedded Derby database open: Derby holds an OS lock
    on ``dbex.lck`` while a JVM has the database booted (a killed JVM's lock is gone with it)."""
    import fcntl

    lock = Path(metastore_dir) / "metastore_db" / "dbex.lck"
    if not lock.exists():
        return False
    with lock.open("rb+") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN)
    return False


def derby_held_within(metastore_dir: str, seconds: float) -> bool:
    """True when another process holds the embedded Derby database now or within ``seconds``: a
    job that lost the race to boot it can fail before the winner has taken its lock (a fresh
    metastore is still being created), so one look is not enough."""
    deadline = time.monotonic() + seconds
    while True:
        if derby_in_use(metastore_dir):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def metastore_busy(metastore_dir: str) -> str:
    return (
        f"the lake's embedded metastore ({metastore_dir}) is open in another lakecast job: "
        "embedded Derby admits one process at a time. Wait for that job to finish and rerun, or "
        "give the lake a shared metastore (spark.hadoop.javax.jdo.option.* in spark.conf) to run "
        "jobs side by side"
    )


def check_metastore(spark: SparkSession, cfg: Config) -> None:
    """Open the metastore now, so a job that cannot use it stops before any work with one clear
    error (stopping the session) rather than a stack trace from its first table.

    Raises:
        MetastoreUnavailable: another job has the lake's embedded metastore open, or the
            configured metastore cannot be reached.
    """
    try:
        spark.catalog.listDatabases()
    except Exception as exc:
        spark.stop()
        if cfg.metastore_dir and derby_held_within(cfg.metastore_dir, seconds=10.0):
            raise MetastoreUnavailable(metastore_busy(cfg.metastore_dir)) from exc
        raise MetastoreUnavailable(
            f"the metastore cannot be opened: {str(exc).splitlines()[0][:300]}; check "
            "lake.metastore_dir or the spark.hadoop.javax.jdo.option.* settings"
        ) from exc
