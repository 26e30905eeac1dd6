"""Load and validate the lakecast configuration file.

One YAML file holds everything static: the lake root, table names, Spark settings and the
dataset section that maps source columns to roles. ``--config PATH`` or ``LAKECAST_CONFIG``
picks the file; ``LAKECAST_LAKE`` overrides the lake root. Relative paths in the file are
resolved against the file's own folder, so the same file works from any working directory.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jobs.common.jars import PROJECT_DIR
from jobs.core import names
from jobs.core.calendar import FREQUENCIES, last_complete_period
from jobs.core.errors import ConfigError

DEFAULT_CONFIG = PROJECT_DIR / "conf" / "lakecast.yaml"
REQUIRED_ROLES = ("timestamp", "quantity")
OPTIONAL_ROLES = ("order_id", "item_id", "description", "unit_price", "customer_id")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` locations (object stores, HDFS), False for local paths."""
    return "://" in path


@dataclass(frozen=True)
class TableRef:
    """A lake table: its metastore name (``layer.table``) and its storage path."""

    name: str
    path: str

    @property
    def database(self) -> str:
        return self.name.split(".")[0]


@dataclass(frozen=True)
class DatasetConfig:
    """How to read one source dataset and what its columns mean."""

    name: str
    source: str
    format: str
    csv: dict[str, str]
    columns: dict[str, str]
    attributes: dict[str, str]
    regressors: dict[str, str]
    timestamp_format: str
    segment_keys: tuple[str, ...]
    frequency: str
    horizon: int
    holidays_country: str | None
    cancellation_prefix: str | None
    non_product_pattern: str | None
    missing_periods: str = "no_demand"

    def has_role(self, role: str) -> bool:
        return role in self.columns

    def source_for(self, run_date: str) -> str:
        return self.source.replace("{run_date}", run_date)

    def origin(self, run_date: dt.date) -> dt.date:
        """Start of the last period complete by the end of ``run_date``: the last period a model
        may learn from on that date, and the one its forecasts follow."""
        return last_complete_period(run_date, self.frequency)


@dataclass(frozen=True)
class FeaturesConfig:
    """What counts as demand and which segments are worth a model."""

    demand_line_types: tuple[str, ...] = ("sale", "cancellation")
    clip_negative: bool = True
    min_history_periods: int = 56
    min_nonzero_periods: int = 8
    min_nonzero_share: float = 0.05
    # periods without demand after which a segment is inactive (None: a year of periods)
    inactive_periods: int | None = None
    inactive_policy: str = "zero"

    def inactive_after(self, frequency: str) -> int:
        """Periods without demand that make a segment inactive."""
        return self.inactive_periods or FREQUENCIES[frequency].periods_per_year


@dataclass(frozen=True)
class ModelConfig:
    """Model settings: interval width, non-negativity and Prophet's own arguments."""

    interval_width: float = 0.8
    non_negative: bool = True
    prophet: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleConfig:
    """Retraining cadence: daily, weekly (on a weekday) or monthly (on a day of the month)."""

    retrain: str = "weekly"
    retrain_weekday: str = "monday"
    retrain_day_of_month: int = 1


@dataclass(frozen=True)
class EvaluationConfig:
    """Backtests, model choice and the promotion gate.

    ``step`` of None means the horizon (windows end one horizon apart). Costs are per unit of
    under- and over-forecast, for the cost-weighted error. ``rule`` is how a segment's model is
    chosen: ``per_segment`` (its own backtest champion) or ``portfolio`` (the best strategy over
    all segments of its demand class, unless its own champion beats that by ``margin`` in every
    window).
    """

    candidates: tuple[str, ...] = (names.SEASONAL_NAIVE, names.THETA, names.ETS, names.PROPHET,
                                   names.COMBO_MEAN, names.COMBO_MEDIAN, names.POOL)
    intermittent_candidates: tuple[str, ...] = names.INTERMITTENT_FAMILIES
    intermittent_zero_share: float = 0.5
    rule: str = "portfolio"
    margin: float = 0.1
    windows: int = 4
    step: int | None = None
    metric: str = "mase"
    promotion_tolerance: float = 0.0
    cost_under: float = 1.0
    cost_over: float = 1.0


@dataclass(frozen=True)
class Config:
    """The whole configuration; build it with :func:`load_config`."""

    path: Path
    lake_root: str
    metastore_dir: str | None
    spark_master: str
    spark_conf: dict[str, str]
    tables: dict[str, str]
    dataset: DatasetConfig
    features: FeaturesConfig
    model: ModelConfig
    schedule: ScheduleConfig
    evaluation: EvaluationConfig
    hash_key_env: str
    allow_demo_key: bool
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def table(self, logical: str) -> TableRef:
        """The table for a logical name such as ``"sales"``, at ``<lake_root>/<layer>/<table>``."""
        try:
            name = self.tables[logical]
        except KeyError:
            raise ConfigError(
                f"no table named {logical!r} in config 'tables'; known: {sorted(self.tables)}"
            ) from None
        database, table = name.split(".")
        return TableRef(name=name, path=f"{self.lake_root}/{database}/{table}")

    def layer_path(self, database: str) -> str:
        return f"{self.lake_root}/{database}"


def _resolve(base: Path, value: str) -> str:
    """A local path relative to the config file becomes absolute; URIs stay as they are."""
    if is_uri(value):
        return value.rstrip("/")
    return str((base / os.path.expanduser(value)).resolve())


def _require(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] in (None, ""):
        raise ConfigError(f"config {where}.{key} is required")
    return section[key]


def _parse_dataset(d: dict[str, Any], base: Path) -> DatasetConfig:
    columns = {k: str(v) for k, v in (_require(d, "columns", "dataset") or {}).items()}
    for role in REQUIRED_ROLES:
        if role not in columns:
            raise ConfigError(
                f"config dataset.columns must map the role {role!r} to a source column"
            )
    unknown = set(columns) - set(REQUIRED_ROLES) - set(OPTIONAL_ROLES)
    if unknown:
        raise ConfigError(
            f"config dataset.columns has unknown roles {sorted(unknown)}; "
            f"roles are {list(REQUIRED_ROLES + OPTIONAL_ROLES)} "
            "(put other columns under dataset.attributes or dataset.regressors)"
        )
    attributes = {k: str(v) for k, v in (d.get("attributes") or {}).items()}
    regressors = {k: str(v) for k, v in (d.get("regressors") or {}).items()}
    keys = tuple(d.get("segment_keys") or [])
    allowed_keys = ({"item_id"} if "item_id" in columns else set()) | set(attributes)
    if not keys or not set(keys) <= allowed_keys:
        raise ConfigError(
            f"config dataset.segment_keys {list(keys)} must be a non-empty list drawn from "
            f"{sorted(allowed_keys)} (item_id or an attribute)"
        )
    frequency = str(d.get("frequency", "daily"))
    if frequency not in FREQUENCIES:
        raise ConfigError(f"config dataset.frequency must be one of {tuple(FREQUENCIES)}, got {frequency!r}")
    horizon = int(d.get("horizon", 28))
    if horizon < 1:
        raise ConfigError(f"config dataset.horizon must be a positive integer, got {horizon}")
    fmt = str(d.get("format", "csv")).lower()
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"config dataset.format must be csv or parquet, got {fmt!r}")
    classify = d.get("classify") or {}
    missing = str(d.get("missing_periods", "no_demand"))
    if missing not in names.MISSING_PERIODS:
        raise ConfigError(f"config dataset.missing_periods must be one of {names.MISSING_PERIODS}, got {missing!r} "
                          "(no_demand: a period without rows sold nothing; not_reported: it has no value)")
    source = str(_require(d, "source", "dataset"))
    return DatasetConfig(
        name=str(d.get("name", "dataset")),
        source=_resolve(base, source),
        format=fmt,
        csv={k: str(v) for k, v in (d.get("csv") or {}).items()},
        columns=columns,
        attributes=attributes,
        regressors=regressors,
        timestamp_format=str(_require(d, "timestamp_format", "dataset")),
        segment_keys=keys,
        frequency=frequency,
        horizon=horizon,
        holidays_country=d.get("holidays_country"),
        cancellation_prefix=classify.get("cancellation_prefix"),
        non_product_pattern=classify.get("non_product_pattern"),
        missing_periods=missing,
    )


def _parse_features(d: dict[str, Any]) -> FeaturesConfig:
    known = set(FeaturesConfig.__dataclass_fields__)
    if set(d) - known:
        raise ConfigError(f"config features has unknown keys {sorted(set(d) - known)}; known: {sorted(known)}")
    if "demand_line_types" in d:
        d = {**d, "demand_line_types": tuple(d["demand_line_types"])}
    f = FeaturesConfig(**d)
    if f.inactive_periods is not None and (not isinstance(f.inactive_periods, int) or f.inactive_periods < 1):
        raise ConfigError(f"config features.inactive_periods must be a positive integer or null (a year), "
                          f"got {f.inactive_periods!r}")
    if f.inactive_policy not in names.INACTIVE_POLICIES:
        raise ConfigError(f"config features.inactive_policy must be one of {names.INACTIVE_POLICIES}, "
                          f"got {f.inactive_policy!r}")
    return f


def _parse_model(d: dict[str, Any]) -> ModelConfig:
    known = set(ModelConfig.__dataclass_fields__)
    if set(d) - known:
        raise ConfigError(f"config model has unknown keys {sorted(set(d) - known)}; known: {sorted(known)}")
    width = float(d.get("interval_width", 0.8))
    if not 0 < width < 1:
        raise ConfigError(f"config model.interval_width must be between 0 and 1, got {width}")
    return ModelConfig(
        interval_width=width,
        non_negative=bool(d.get("non_negative", True)),
        prophet=dict(d.get("prophet") or {}),
    )


def _parse_schedule(d: dict[str, Any]) -> ScheduleConfig:
    s = ScheduleConfig(
        retrain=str(d.get("retrain", "weekly")),
        retrain_weekday=str(d.get("retrain_weekday", "monday")).lower(),
        retrain_day_of_month=int(d.get("retrain_day_of_month", 1)),
    )
    if s.retrain not in ("daily", "weekly", "monthly"):
        raise ConfigError(f"config schedule.retrain must be daily, weekly or monthly, got {s.retrain!r}")
    if s.retrain_weekday not in WEEKDAYS:
        raise ConfigError(f"config schedule.retrain_weekday must be one of {WEEKDAYS}, got {s.retrain_weekday!r}")
    if not 1 <= s.retrain_day_of_month <= 28:
        raise ConfigError("config schedule.retrain_day_of_month must be between 1 and 28")
    return s


def _parse_evaluation(d: dict[str, Any], horizon: int) -> EvaluationConfig:
    known = set(EvaluationConfig.__dataclass_fields__)
    if set(d) - known:
        raise ConfigError(f"config evaluation has unknown keys {sorted(set(d) - known)}; known: {sorted(known)}")
    lists = {k: tuple(d[k] if d.get(k) is not None else getattr(EvaluationConfig, k))
             for k in ("candidates", "intermittent_candidates")}
    e = EvaluationConfig(**{**d, **lists})
    if not set(e.intermittent_candidates) <= set(names.INTERMITTENT_FAMILIES):
        raise ConfigError("config evaluation.intermittent_candidates must be drawn from "
                          f"{list(names.INTERMITTENT_FAMILIES)}, got {list(e.intermittent_candidates)}")
    if e.rule not in names.RULES or e.margin < 0 or not 0 < e.intermittent_zero_share <= 1:
        raise ConfigError(f"config evaluation.rule must be one of {names.RULES} (got {e.rule!r}), margin >= 0 "
                          "and intermittent_zero_share in (0, 1]")
    unknown = [c for c in e.candidates if c not in names.FAMILIES]
    if unknown or names.BASELINE not in e.candidates:
        raise ConfigError(
            f"config evaluation.candidates {list(e.candidates)} must be drawn from {list(names.FAMILIES)} "
            f"and include {names.BASELINE} (the baseline every model is measured against)"
        )
    if e.rule == names.ENSEMBLE and names.ENSEMBLE not in e.candidates:
        raise ConfigError("config evaluation.rule ensemble needs ensemble among evaluation.candidates")
    if e.windows < 1 or (e.step is not None and e.step < 1):
        raise ConfigError("config evaluation.windows and evaluation.step must be positive integers")
    if e.metric not in names.CHOICE_METRICS:
        raise ConfigError(f"config evaluation.metric must be one of {names.CHOICE_METRICS}, got {e.metric!r}")
    if e.promotion_tolerance < 0 or e.cost_under < 0 or e.cost_over < 0:
        raise ConfigError("config evaluation.promotion_tolerance and the costs cannot be negative")
    return e if e.step is not None else EvaluationConfig(**{**e.__dict__, "step": horizon})


def _env_spark_conf() -> dict[str, str]:
    """``LAKECAST_SPARK_CONF="k=v;k=v"`` as a dict."""
    out = {}
    for item in filter(None, os.environ.get("LAKECAST_SPARK_CONF", "").split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"LAKECAST_SPARK_CONF item {item!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file (argument, else ``LAKECAST_CONFIG``, else the bundled default).

    Raises:
        ConfigError: when the file is missing or a setting is invalid; the message says which.
    """
    path = Path(path or os.environ.get("LAKECAST_CONFIG") or DEFAULT_CONFIG).resolve()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --config PATH or set LAKECAST_CONFIG")
    with path.open() as f:
        raw = yaml.safe_load(f) or {}
    base = path.parent
    lake = raw.get("lake") or {}
    lake_root = _resolve(base, os.environ.get("LAKECAST_LAKE") or _require(lake, "root", "lake"))
    metastore = os.environ.get("LAKECAST_METASTORE") or lake.get("metastore_dir")
    if metastore:
        metastore = _resolve(base, metastore)
    elif not is_uri(lake_root):
        metastore = f"{lake_root}/_metastore"
    spark = raw.get("spark") or {}
    spark_conf = {k: str(v) for k, v in (spark.get("conf") or {}).items()}
    spark_conf.update(_env_spark_conf())
    tables = dict(names.TABLES)
    tables.update(raw.get("tables") or {})
    for logical, name in tables.items():
        if name.count(".") != 1 or name.split(".")[0] not in names.LAYERS:
            raise ConfigError(
                f"config tables.{logical} = {name!r} must be '<layer>.<table>' with layer in {names.LAYERS}"
            )
    privacy = raw.get("privacy") or {}
    dataset = _parse_dataset(raw.get("dataset") or {}, base)
    return Config(
        path=path,
        lake_root=lake_root,
        metastore_dir=metastore,
        spark_master=os.environ.get("LAKECAST_SPARK_MASTER") or str(spark.get("master", "local[2]")),
        spark_conf=spark_conf,
        tables=tables,
        dataset=dataset,
        features=_parse_features(raw.get("features") or {}),
        model=_parse_model(raw.get("model") or {}),
        schedule=_parse_schedule(raw.get("schedule") or {}),
        evaluation=_parse_evaluation(raw.get("evaluation") or {}, dataset.horizon),
        hash_key_env=str(privacy.get("hash_key_env", "LAKECAST_HASH_KEY")),
        allow_demo_key=bool(privacy.get("allow_demo_key", False)),
        raw=raw,
    )
