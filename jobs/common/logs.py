"""One place that sets up Python logging and quiets the noisy libraries."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    """Log to stderr at ``level`` (default ``LAKECAST_LOG_LEVEL`` or INFO); tame py4j and cmdstanpy."""
    level = (level or os.environ.get("LAKECAST_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S")
    quiet_libraries()


def quiet_libraries() -> None:
    """Silence library chatter; safe to call in Spark's Python workers too."""
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # cmdstanpy resets its logger to DEBUG when it has no handler: give it one first.
    cmdstan = logging.getLogger("cmdstanpy")
    if not cmdstan.handlers:
        cmdstan.addHandler(logging.NullHandler())
    cmdstan.setLevel(logging.WARNING)
    cmdstan.propagate = False
    # prophet.plot logs "Importing plotly failed" at ERROR: it is optional for us.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("prophet").setLevel(logging.WARNING)
