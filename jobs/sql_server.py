"""SQL endpoint: Spark's Thrift JDBC/ODBC server over the lake, for BI tools and SQL clients.

    lakecast sql-server [--port 10000] [--host localhost]
    beeline -u jdbc:hive2://localhost:10000 -e "SELECT * FROM gold.forecast_latest LIMIT 10"

Metastore decision: the server keeps its own catalog in memory and builds it from the lake at
every start (each configured table found at its path is registered by location, then the gold
views). The nightly jobs keep the lake's embedded Derby metastore, which only one JVM may open;
because the server never opens it, nightly runs and analysts' queries work at the same time.
Delta reads the latest table version at every query, so the server answers with each night's
rows as soon as they are committed; a table that did not exist yet when the server started
appears after a restart. Table and column comments come from the Delta log (they are written
from ``schemas/``), so BI tools show them. On a cluster with a shared metastore (Hive metastore
service, Glue, Unity), set its ``spark.hadoop.*`` settings in ``spark.conf`` and pass
``--shared-metastore``: the server then uses that catalog as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from dataclasses import replace

from py4j.protocol import Py4JError
from pyspark.sql import SparkSession

from jobs.common.config import Config, load_config
from jobs.common.lake import sql_string
from jobs.common.logs import setup_logging

log = logging.getLogger(__name__)

# Derby in memory: a private catalog per server process, nothing on disk to lock or go stale.
PRIVATE_METASTORE = "jdbc:derby:memory:lakecast_sql_endpoint;create=true"


def register_lake(spark: SparkSession, cfg: Config) -> list[str]:
    """Register every configured table that exists in the lake, by location, and the views
    over them; returns the names registered. Tables not written yet are skipped."""
    from delta.tables import DeltaTable

    from jobs.common.views import VIEWS

    registered = []
    for logical in cfg.tables:
        ref = cfg.table(logical)
        if not DeltaTable.isDeltaTable(spark, ref.path):
            log.warning("%s: no Delta table at %s yet, not registered", ref.name, ref.path)
            continue
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {ref.database} LOCATION {sql_string(cfg.layer_path(ref.database))}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {ref.name} USING DELTA LOCATION {sql_string(ref.path)}")
        registered.append(ref.name)
    for create, needs in VIEWS.items():
        if all(cfg.table(t).name in registered for t in needs):
            create(spark, cfg)
    return registered


def start(cfg: Config, host: str, port: int, shared_metastore: bool = False) -> tuple[SparkSession, object]:
    """Build the server's session, register the lake and start the Thrift server in it."""
    from jobs.common import jars
    from jobs.common.spark import get_spark, under_spark_submit

    overrides = {
        "spark.hadoop.hive.server2.thrift.port": str(port),
        "spark.hadoop.hive.server2.thrift.bind.host": host,
        "spark.hadoop.hive.server2.transport.mode": "binary",
        "spark.sql.hive.thriftServer.singleSession": "false",
        "spark.ui.enabled": "false",
    }
    if not under_spark_submit():
        # Thrift sessions load the catalog class through the JVM's own class path, which does
        # not see jars added by spark.jars.
        overrides["spark.driver.extraClassPath"] = ":".join(str(p) for p in jars.local_jars())
    if not shared_metastore:
        overrides["spark.hadoop.javax.jdo.option.ConnectionURL"] = PRIVATE_METASTORE
    spark = get_spark(replace(cfg, spark_conf={**cfg.spark_conf, **overrides}), "lakecast-sql-server")
    registered = [] if shared_metastore else register_lake(spark, cfg)
    jvm = spark.sparkContext._jvm
    server = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithSparkSession(
        spark._jsparkSession, False
    )
    print(f"lakecast sql-server: jdbc:hive2://{host}:{port} ({len(registered)} tables registered: "
          f"{', '.join(registered) or 'none'})", flush=True)
    return spark, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakecast sql-server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--host", default="localhost", help="address to bind (default: localhost)")
    parser.add_argument("--port", type=int, default=10000, help="Thrift port (default: 10000)")
    parser.add_argument("--shared-metastore", action="store_true",
                        help="use the configured metastore as it is instead of a private one")
    args = parser.parse_args(argv)
    setup_logging()
    spark, server = start(load_config(args.config), args.host, args.port, args.shared_metastore)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("serving; Ctrl-C or SIGTERM stops it", flush=True)
    stop.wait()
    # A Ctrl-C reaches the JVM too (same process group), which may already have shut down.
    with contextlib.suppress(Py4JError, OSError):
        server.stop()
        spark.stop()
    print("lakecast sql-server: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
