"""Alerts: a failed task posts a JSON message to a webhook (Slack, Teams or any HTTP endpoint).

The address lives in the Airflow Connection ``lakecast_alerts`` (never in code or config), for
example from the environment:

    AIRFLOW_CONN_LAKECAST_ALERTS='{"conn_type": "http", "host": "https://hooks.slack.com/services/T/B/X"}'

or ``airflow connections add lakecast_alerts --conn-type http --conn-host https://...``. Without
the connection, alerts are off and a failure only logs that no alert was sent. The message
carries ``text`` (what Slack and Teams incoming webhooks display) and the fields a receiver can
route on. A failed reconciliation in ingest fails its task, so it alerts too; the nightly DAG's
``drift_alert`` task posts when the share of drifting segments passes ``monitor.alert_share``.
"""

from __future__ import annotations

import json
import logging
import urllib.request

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

CONNECTION = "lakecast_alerts"


def webhook_url(conn_id: str) -> str | None:
    """The webhook address from the Airflow Connection ``conn_id``: its host when that is a full
    URL, else ``scheme://host[:port]/path`` from its parts; None when there is no connection."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # Airflow raises its own not-found error, which differs across versions
        return None
    host = conn.host or ""
    if "://" in host:
        return host
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
    return f"{scheme}://{host}{port}{path}"


def failure_message(context: dict) -> dict:
    """The alert's JSON body for a failed task."""
    ti = context["task_instance"]
    dag_run = context.get("dag_run")
    start = context.get("data_interval_start")
    error = context.get("exception")
    run_date = start.date().isoformat() if start is not None else None
    text = (f"lakecast: task {ti.dag_id}.{ti.task_id} failed for run date {run_date} "
            f"(try {ti.try_number}): {str(error)[:500] if error else 'no error message'}")
    return {
        "text": text,
        "event": "task_failed",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": getattr(dag_run, "run_id", None) or context.get("run_id"),
        "run_date": run_date,
        "try_number": ti.try_number,
        "error": str(error)[:2000] if error else None,
    }


def post(url: str, body: dict, timeout: float = 10.0) -> int:
    """POST ``body`` as JSON; returns the HTTP status."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def send(body: dict, conn_id: str = CONNECTION) -> bool:
    """Post ``body`` to the webhook of connection ``conn_id``; False (logged, never raised) when
    there is no connection or the webhook cannot be reached."""
    url = webhook_url(conn_id)
    if url is None:
        log.warning("no Airflow connection %r: no alert sent: %s", conn_id, body["text"])
        return False
    try:
        status = post(url, body)
    except Exception as exc:
        log.error("alert to connection %r failed: %s", conn_id, exc)
        return False
    log.info("alert sent to connection %r (HTTP %s): %s", conn_id, status, body["text"])
    return True


def drift_message(run_date: str, with_model: int, drifting: int, threshold: float) -> dict:
    """The alert's JSON body when the share of drifting segments passes the threshold."""
    share = drifting / with_model if with_model else 0.0
    return {
        "text": (f"lakecast: {drifting} of {with_model} segments drifting ({share:.1%}) on run date {run_date}, "
                 f"above monitor.alert_share {threshold:.0%}; see gold.drift_summary"),
        "event": "drift",
        "run_date": run_date,
        "segments_with_model": with_model,
        "drifting": drifting,
        "drifting_share": share,
        "threshold": threshold,
    }


def alert_on_drift(run_date: str, with_model: int, drifting: int, threshold: float,
                   conn_id: str = CONNECTION) -> bool:
    """Post :func:`drift_message` when more than ``threshold`` of the segments drift; True when
    an alert was sent."""
    if not with_model or drifting / with_model <= threshold:
        log.info("drift: %d of %d segments, not above %.0f%%: no alert", drifting, with_model, threshold * 100)
        return False
    return send(drift_message(run_date, with_model, drifting, threshold), conn_id)


class WebhookNotifier(BaseNotifier):
    """``on_failure_callback`` that posts :func:`failure_message` to the connection's webhook.
    A webhook that cannot be reached is logged, never raised: an alert must not hide the failure
    it reports."""

    def __init__(self, conn_id: str = CONNECTION) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: dict) -> None:
        send(failure_message(context), self.conn_id)
