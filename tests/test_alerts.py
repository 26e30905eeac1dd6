"""Alerts: a failed task posts to the webhook of the ``lakecast_alerts`` Airflow Connection,
tested with ``airflow dags test`` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.test_orchestration import DAGS, VENV_BIN, airflow_env, dagbag  # noqa: F401 (fixture)

FAILING_DAG = '''
import pendulum
from airflow.sdk import DAG, task
from lakecast_alerts import WebhookNotifier

with DAG(dag_id="failing", schedule=None, start_date=pendulum.datetime(2011, 12, 1, tz="UTC"),
         default_args={"retries": 0, "on_failure_callback": WebhookNotifier()}):
    @task
    def reconcile():
        raise RuntimeError("rows read 10 != rows in bronze.sales 9 + rows in bronze.quarantine 0")
    reconcile()
'''

# The nightly DAG's drift_alert task calls alert_on_drift with gold.drift's counts of the night.
DRIFTING_DAG = '''
import pendulum
from airflow.sdk import DAG, task
from lakecast_alerts import alert_on_drift

with DAG(dag_id="drifting", schedule=None, start_date=pendulum.datetime(2011, 12, 1, tz="UTC")):
    @task
    def drift_alert():
        assert not alert_on_drift("2011-12-09", 100, 15, threshold=0.2)  # 15 %: below, nothing sent
        assert alert_on_drift("2011-12-09", 100, 30, threshold=0.2)
    drift_alert()
'''


@pytest.fixture
def webhook():
    """A webhook receiver on 127.0.0.1: every POST body, parsed, in ``received``."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_every_nightly_task_alerts_on_failure(dagbag):
    from lakecast_alerts import WebhookNotifier

    dag = dagbag.dags["lakecast_nightly"]
    for task in dag.tasks:
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert any(isinstance(c, WebhookNotifier) and c.conn_id == "lakecast_alerts" for c in callbacks), task.task_id


def test_a_failed_task_and_drift_post_to_the_connections_webhook(webhook, tmp_path):
    url, received = webhook
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAGS / "lakecast_alerts.py", dags)  # the real module, beside a DAG that fails
    (dags / "failing.py").write_text(FAILING_DAG)
    (dags / "drifting.py").write_text(DRIFTING_DAG)
    env = {**airflow_env(tmp_path / "home", tmp_path / "unused.yaml"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW_CONN_LAKECAST_ALERTS": json.dumps({"conn_type": "http", "host": url})}
    airflow = str(VENV_BIN / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    run = subprocess.run([airflow, "dags", "test", "failing", "2011-12-10"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode != 0  # the DAG run failed, and said so
    assert len(received) == 1, run.stdout[-3000:] + run.stderr[-3000:]
    alert = received[0]
    assert alert["event"] == "task_failed" and (alert["dag_id"], alert["task_id"]) == ("failing", "reconcile")
    assert alert["run_date"] == "2011-12-10" and alert["try_number"] == 1
    assert "rows read 10 != rows in bronze.sales 9" in alert["error"] and alert["text"].startswith("lakecast: task failing.reconcile failed")
    assert url not in run.stdout + run.stderr  # the address (a secret for Slack) is never logged

    run = subprocess.run([airflow, "dags", "test", "drifting", "2011-12-10"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert len(received) == 2
    drift = received[1]
    assert (drift["event"], drift["drifting"], drift["segments_with_model"]) == ("drift", 30, 100)
    assert drift["text"].startswith("lakecast: 30 of 100 segments drifting (30.0%) on run date 2011-12-09")
