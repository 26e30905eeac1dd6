"""What every job shares at its edges: arguments, run date and run id checks, the job runner."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable

from jobs.common.config import Config, ConfigError, load_config

log = logging.getLogger(__name__)


class LakecastError(Exception):
    """A failure the user can act on; the message says what was wrong and what to do."""


def parse_run_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` -> date, with an error that says what is expected."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"run date must be YYYY-MM-DD, got {value!r}") from None


def new_run_id(job: str, run_date: dt.date) -> str:
    """A fresh id for one run of one job: ``<job>-<date>-<8 hex>`` (or ``LAKECAST_RUN_ID``)."""
    return os.environ.get("LAKECAST_RUN_ID") or f"{job}-{run_date.isoformat()}-{uuid.uuid4().hex[:8]}"


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--run-date`` (required), ``--config`` and ``--run-id`` for every job."""
    parser.add_argument("--run-date", required=True, type=parse_run_date, help="YYYY-MM-DD")
    parser.add_argument("--config", default=None, help="config file (default: LAKECAST_CONFIG or conf/lakecast.yaml)")
    parser.add_argument("--run-id", default=None, help="id recorded with the output (default: generated)")
    return parser


def run_job(
    name: str, body: Callable[[Config, argparse.Namespace], object], args: argparse.Namespace
) -> int:
    """Load config, run ``body`` and turn failures into a non-zero exit code with a clear log line."""
    from jobs.common.logs import setup_logging

    setup_logging()
    try:
        cfg = load_config(args.config)
        body(cfg, args)
    except (ConfigError, LakecastError, FileNotFoundError) as exc:
        log.error("%s failed: %s", name, exc)
        return 2
    except Exception:
        log.exception("%s failed", name)
        return 1
    return 0


def job_parser(name: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for one job, with the common arguments."""
    parser = argparse.ArgumentParser(prog=f"lakecast {name}", description=description)
    return add_common_args(parser)
