"""One place that sets up Python logging for the jobs and quiets the JVM bridge.

(The model families quiet their own libraries, cmdstanpy and Prophet, where they fit: in Spark's
Python workers too.)
"""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    """Log to stderr at ``level`` (default ``LAKECAST_LOG_LEVEL`` or INFO); tame py4j."""
    level = (level or os.environ.get("LAKECAST_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S")
    quiet_libraries()


def quiet_libraries() -> None:
    """Silence library chatter of the driver side."""
    logging.getLogger("py4j").setLevel(logging.WARNING)
