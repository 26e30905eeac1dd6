"""The chain ingest -> features -> evaluate -> train -> score -> accuracy on a slice of the real data."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from pyspark.sql import functions as F

from jobs.accuracy import accuracy
from jobs.evaluate import evaluate
from jobs.features import features
from jobs.ingest import ingest
from jobs.monitor import monitor
from jobs.score import score
from jobs.train import train
from tests.conftest import DENSE, LAYERS, QUICK_EVALUATION, free_port, write_config
from tests.digest import check_golden, table_text

RUN_DATE = dt.date(2011, 12, 9)
EARLIER = dt.date(2011, 12, 2)


@pytest.fixture(scope="module")
def chain(spark, slice_csv, tmp_path_factory):
    for layer in LAYERS:
        spark.sql(f"DROP DATABASE IF EXISTS {layer} CASCADE")
    cfg = write_config(tmp_path_factory.mktemp("chain"))
    ingest(spark, cfg, RUN_DATE, "ingest-1", source=str(slice_csv))
    features(spark, cfg, RUN_DATE, "features-1")
    evaluate(spark, cfg, RUN_DATE, "evaluate-1")
    train(spark, cfg, RUN_DATE, "train-1")
    score(spark, cfg, RUN_DATE, "score-1")
    accuracy(spark, cfg, RUN_DATE, "accuracy-1")
    monitor(spark, cfg, RUN_DATE, "monitor-1")  # no model before the date: every segment no_model
    return cfg


def forecasts_of(spark, run_date):
    return spark.table("gold.forecasts").filter(F.col("run_date") == F.lit(run_date))


def contents(df, drop=("run_id",)):
    cols = [c for c in df.columns if c not in drop]
    return sorted(tuple(r) for r in df.select(*cols).collect())


# Left out of the golden tables: what differs on every run by design (run ids, fit times) and the
# stored model payloads (their forecasts are compared instead).
UNSTABLE = ("run_id", "seconds", "model_json", "fallback_json", "model_version", "library_versions")


def test_the_chain_writes_the_same_tables_as_the_golden_run(spark, chain):
    """Every table of the chain equals the committed golden tables (tests/golden/chain_slice/; see
    tests/digest.py for when and how to regenerate them). Runs first: later tests of this module
    add run dates."""
    tables = {name: table_text(spark.table(ref), drop=UNSTABLE)
              for name, ref in sorted(chain.tables.items()) if name != "pipeline_runs"}
    check_golden("chain_slice", tables, write=os.environ.get("LAKECAST_WRITE_GOLDEN") == "1")


def test_every_segment_in_silver_has_a_full_forecast(spark, chain):
    segments = {r[0] for r in spark.table("silver.demand").select("segment_id").distinct().collect()}
    assert "POST" not in segments and set(DENSE) <= segments and len(segments) >= 10
    f = forecasts_of(spark, RUN_DATE)
    per_segment = {r.segment_id: r["count"] for r in f.groupBy("segment_id").count().collect()}
    assert per_segment == {s: chain.dataset.horizon for s in segments}
    first = f.filter("horizon_step = 1").select("ds").distinct().collect()
    assert [r.ds for r in first] == [RUN_DATE + dt.timedelta(days=1)]
    assert f.filter("yhat < 0 or yhat_lower < 0 or yhat_lower > yhat or yhat > yhat_upper").count() == 0


def test_best_sellers_get_their_chosen_model_and_rare_products_a_recorded_fallback(spark, chain):
    models = {r.segment_id: r for r in spark.table("gold.models").collect()}
    chosen = {r.segment_id: r for r in spark.table("gold.model_selection").collect()}
    assert set(chosen) == set(models)
    for s in DENSE:
        assert models[s].status == "ok" and chosen[s].decision == "promoted"
        assert models[s].model_spec == chosen[s].promoted_spec
        assert models[s].model == chosen[s].promoted_model
        assert chosen[s].scores[chosen[s].champion] == min(chosen[s].scores.values())
        # the portfolio rule: the class's best strategy unless the champion clearly beats it
        assert chosen[s].promoted_model in (chosen[s].champion, chosen[s].portfolio_model)
        if chosen[s].promoted_model != chosen[s].champion:
            assert "does not beat it by 10% in every window" in chosen[s].reason
    fallbacks = [m for m in models.values() if m.status != "ok"]
    assert len(fallbacks) >= 3
    for m in fallbacks:
        inactive = m.reason.startswith("inactive")
        assert (m.model, m.status) == (("zero", "inactive") if inactive else ("seasonal_naive", "fallback"))
        assert m.reason.split(":")[0] in ("too_sparse", "too_short", "inactive")
    assert all(chosen[m.segment_id].decision == "fallback" and chosen[m.segment_id].reason == m.reason
               for m in fallbacks)
    f = forecasts_of(spark, RUN_DATE).filter("status != 'ok'")
    assert {r.segment_id for r in f.collect()} == {m.segment_id for m in fallbacks}


def test_rerunning_a_run_date_gives_identical_tables_without_duplicates(spark, chain):
    tables = ("gold.backtest_metrics", "gold.backtest_forecasts", "gold.model_selection", "gold.models",
              "gold.forecasts", "gold.forecast_accuracy")
    timing = ("run_id", "seconds")  # fit times are measured, so they differ between runs
    before = {t: contents(spark.table(t), drop=timing) for t in tables}
    evaluate(spark, chain, RUN_DATE, "evaluate-2")
    train(spark, chain, RUN_DATE, "train-2")
    score(spark, chain, RUN_DATE, "score-2")
    accuracy(spark, chain, RUN_DATE, "accuracy-2")
    assert {t: contents(spark.table(t), drop=timing) for t in tables} == before
    f = spark.table("gold.forecasts")
    assert f.count() == f.select("segment_id", "ds", "run_date").distinct().count()
    assert {r.run_id for r in f.select("run_id").distinct().collect()} == {"score-2"}


def test_another_run_date_leaves_the_first_untouched_and_views_answer(spark, chain):
    before = contents(forecasts_of(spark, RUN_DATE), drop=())
    evaluate(spark, chain, EARLIER, "evaluate-early")
    train(spark, chain, EARLIER, "train-early")
    score(spark, chain, EARLIER, "score-early")
    assert contents(forecasts_of(spark, RUN_DATE), drop=()) == before
    early = forecasts_of(spark, EARLIER)
    assert early.count() > 0
    assert {r.model_version[:8] for r in early.select("model_version").distinct().collect()} == {"20111202"}

    latest = spark.sql("select distinct run_date from gold.forecast_latest").collect()
    assert [r.run_date for r in latest] == [RUN_DATE]
    vs = spark.sql(
        "select * from gold.forecast_vs_actual where run_date = date'2011-12-02' and segment_id = '85123A'"
    ).orderBy("ds").collect()
    # forecasts for 2011-12-03..09 now have actuals; the Saturday 12-03 was a closed day? see flags
    assert [r.ds for r in vs] == [EARLIER + dt.timedelta(days=i) for i in range(1, 8)]
    assert all((r.actual is None) == r.is_closed for r in vs)

    # realized accuracy: the 12-02 forecasts now have a week of actuals (open days only)
    accuracy(spark, chain, RUN_DATE, "accuracy-late")
    scored = spark.table("gold.forecast_accuracy").filter(
        "forecast_run_date = date'2011-12-02' and segment_id = '85123A'").orderBy("ds").collect()
    open_days = [r for r in vs if not r.is_closed]
    assert [r.ds for r in scored] == [r.ds for r in open_days] and len(scored) >= 5
    for got, want in zip(scored, open_days):
        assert got.error == pytest.approx(want.yhat - want.actual)
        assert got.in_interval == (want.yhat_lower <= want.actual <= want.yhat_upper)
        assert got.horizon_step == (got.ds - EARLIER).days and got.as_of_date == RUN_DATE
    before = contents(spark.table("gold.forecast_accuracy"), drop=())
    metrics = accuracy(spark, chain, RUN_DATE, "accuracy-again")
    assert (metrics.detail["inserted"], metrics.detail["updated"]) == (0, 0)
    assert contents(spark.table("gold.forecast_accuracy"), drop=()) == before


def test_pandas_and_duckdb_read_the_same_rows_as_spark_without_spark(spark, chain):
    import duckdb
    import pandas as pd

    from jobs.common.reader import read_arrow, read_table

    got = read_table("gold.forecasts", chain, filters=[("run_date", "=", RUN_DATE)])
    want = forecasts_of(spark, RUN_DATE).toPandas()
    order = ["segment_id", "ds"]
    pd.testing.assert_frame_equal(
        got.sort_values(order).reset_index(drop=True)[want.columns],
        want.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )
    models = read_arrow("gold.models", chain, columns=["segment_id", "model", "status"])  # noqa: F841 (DuckDB reads it by name)
    by_duckdb = dict(duckdb.sql("select model, count(*) from models group by model").fetchall())
    by_spark = {r.model: r["count"] for r in spark.table("gold.models").groupBy("model").count().collect()}
    assert by_duckdb == by_spark


def test_the_run_report_is_one_html_file_with_every_section_and_embedded_figures(chain, tmp_path):
    import re

    from jobs import accuracy as accuracy_job
    from jobs import report

    # the fixture called the job functions; run one job through its runner for the run log
    assert accuracy_job.main(["--run-date", str(RUN_DATE), "--config", str(chain.path)]) == 0
    out = tmp_path / "report.html"
    assert report.main(["--run-date", str(RUN_DATE), "--config", str(chain.path), "--out", str(out),
                        "--top", "3"]) == 0
    page = out.read_text()
    assert re.findall(r"<h2>([^<]+)</h2>", page) == list(report.SECTIONS)
    # timings + 3 segments + accuracy spread (+ realized accuracy when the late forecasts are scored)
    assert page.count('src="data:image/png;base64,') >= 5
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "<td>accuracy</td>" in page and "<td>success</td>" in page  # run timings
    assert "too_sparse" in page  # fallback reasons
    assert "<td>promoted</td>" in page


def beeline(port: int, sql: str) -> list[list[str]]:
    """Rows (without the header) of ``sql``, through the JDBC client bundled with Spark."""
    from pathlib import Path

    import pyspark

    client = Path(pyspark.__file__).parent / "bin" / "beeline"
    done = subprocess.run(
        [str(client), "-u", f"jdbc:hive2://localhost:{port}", "-n", "analyst", "--silent=true",
         "--outputformat=tsv2", "-e", sql],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split("\t") for line in done.stdout.splitlines() if line and not line.startswith("WARNING")]
    return lines[1:]


@pytest.fixture(scope="module")
def sql_server(chain):
    """``lakecast sql-server`` on the chain's lake, in its own process, until the module ends."""
    from jobs import accuracy as accuracy_job

    # the fixture called the job functions; one run through the runner writes the run log
    assert accuracy_job.main(["--run-date", str(RUN_DATE), "--config", str(chain.path)]) == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "sql-server", "--config", str(chain.path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    for line in server.stdout:  # blocks until the server says it serves (or dies)
        output.append(line)
        if line.startswith("serving"):
            break
    assert server.poll() is None, "".join(output)[-3000:]
    yield port
    server.terminate()
    assert server.wait(timeout=60) == 0


def test_sql_server_answers_over_jdbc_with_spark_rows_while_a_nightly_job_runs(spark, chain, sql_server):
    from jobs.common.contracts import contract_for

    tables = {r[1] for r in beeline(sql_server, "SHOW TABLES IN gold")}
    assert {"forecasts", "models", "model_selection", "backtest_metrics", "forecast_accuracy",
            "pipeline_runs", "forecast_latest", "forecast_vs_actual", "accuracy_by_run_date"} <= tables
    query = "SELECT segment_id, ds, yhat, model FROM gold.forecasts WHERE run_date = '2011-12-09' ORDER BY 1, 2"
    over_jdbc = [(s, dt.date.fromisoformat(d), float(y), m) for s, d, y, m in beeline(sql_server, query)]
    assert over_jdbc == [tuple(r) for r in spark.sql(query).collect()] and len(over_jdbc) > 100
    comments = {r[0]: r[2] for r in beeline(sql_server, "DESCRIBE gold.forecasts")}
    contract = contract_for(chain, "forecasts").schema
    assert {f.name: comments[f.name] for f in contract} == {f.name: f.metadata["comment"] for f in contract}
    latest = beeline(sql_server, "SELECT count(*) FROM gold.forecast_latest")
    assert int(latest[0][0]) == spark.table("gold.forecast_latest").count()

    # A nightly job in its own JVM (own embedded metastore) writes while the server is up.
    runs = "SELECT count(*) FROM gold.pipeline_runs WHERE job = 'accuracy' AND status <> 'running'"
    before = int(beeline(sql_server, runs)[0][0])
    job = subprocess.run([sys.executable, "-m", "jobs.cli", "accuracy", "--run-date", str(RUN_DATE),
                          "--config", str(chain.path)], capture_output=True, text=True)
    assert job.returncode == 0, job.stderr[-3000:]
    assert int(beeline(sql_server, runs)[0][0]) == before + 1
    assert before + 1 == spark.table("gold.pipeline_runs").filter("job = 'accuracy' AND status <> 'running'").count()


@pytest.mark.parametrize("name", ["explore_forecasts", "model_performance"])
def test_notebooks_execute_against_the_lake(chain, name, monkeypatch):
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    folder = Path(__file__).parent.parent / "notebooks"
    notebook = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    monkeypatch.setenv("LAKECAST_CONFIG", str(chain.path))  # the kernel inherits it
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()  # raises on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots were drawn
    assert f"lake: {chain.lake_root}" in "".join(o.get("text", "") for o in outputs)


def test_cli_reads_its_config_from_the_environment_and_fails_clearly(tmp_path):
    # `lakecast run` (the chain in one session) is run through spark-submit by the cluster test
    cfg = write_config(tmp_path / "cli", {"evaluation": QUICK_EVALUATION})
    env = {**os.environ, "LAKECAST_CONFIG": str(cfg.path)}
    failed = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "score", "--run-date", "2011-12-09"], env=env, capture_output=True,
        text=True,
    )
    assert failed.returncode == 2
    assert "no model trained on or before 2011-12-09" in failed.stderr
    assert f"lake={cfg.lake_root}" in failed.stderr  # the environment's config, not the bundled one


def test_bad_arguments_exit_non_zero_with_a_message():
    lakecast = [sys.executable, "-m", "jobs.cli"]
    bad_date = subprocess.run([*lakecast, "train", "--run-date", "2011/12/09"], capture_output=True, text=True)
    assert bad_date.returncode == 2 and "run date must be YYYY-MM-DD" in bad_date.stderr
    missing = subprocess.run(
        [*lakecast, "train", "--run-date", "2011-12-09", "--config", "/nonexistent.yaml"],
        capture_output=True, text=True,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
