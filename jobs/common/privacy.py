"""Personal data: the customer id is kept only as its HMAC-SHA256 under a secret key.

HMAC (RFC 2104) is the keyed-hash construction security reviews expect; the earlier
``sha256(key | id)`` was not. The same function serves ingest (in Spark, per line) and erasure
(on the driver, for the ids to forget), so both always agree. The key is read from the
environment variable the config names and never written anywhere: not in logs, tables, the run
log or the Spark plan (the UDF carries it inside its pickled closure, not as a literal).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.common.config import Config, ConfigError

log = logging.getLogger(__name__)

DEMO_HASH_KEY = "lakecast-demo-key-not-secret"


def hash_id(customer_id: str, key: str) -> str:
    """HMAC-SHA256 of one customer id (UTF-8) under ``key``, as 64 hex digits."""
    return hmac.new(key.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def hash_column(ids: Column, key: str) -> Column:
    """HMAC-SHA256 of a string column, computed in Spark; null stays null."""
    key_bytes = key.encode()

    @F.pandas_udf("string")
    def hmac_sha256(values: pd.Series) -> pd.Series:
        return values.map(lambda v: hmac.new(key_bytes, v.encode(), hashlib.sha256).hexdigest(),
                          na_action="ignore")

    return hmac_sha256(ids)


def resolve_hash_key(cfg: Config) -> str | None:
    """The key for hashing customer ids: from the environment; the demo key only if allowed.

    Returns None when the dataset has no customer id.

    Raises:
        ConfigError: when the variable is unset and the config does not allow the demo key.
    """
    if "customer_id" not in cfg.dataset.columns:
        return None
    key = os.environ.get(cfg.hash_key_env)
    if key:
        return key
    if cfg.allow_demo_key:
        log.warning(
            "%s is not set: hashing customer ids with the public demo key. "
            "Set it (and privacy.allow_demo_key: false) for real data.",
            cfg.hash_key_env,
        )
        return DEMO_HASH_KEY
    raise ConfigError(
        f"the customer id is personal data and is hashed with a secret key, but "
        f"{cfg.hash_key_env} is not set; export {cfg.hash_key_env}=<secret> (keep it out of git)"
    )
