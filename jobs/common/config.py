"""Load and validate the lakecast configuration file.

One YAML file holds everything static: the lake root, table names, Spark settings and the
dataset section that maps source columns to roles. ``--config PATH`` or ``LAKECAST_CONFIG``
picks the file; ``LAKECAST_LAKE`` overrides the lake root. Relative paths in the file are
resolved against the file's own folder, so the same file works from any working directory.

Every section is a strict pydantic model: an unknown key, a wrong type (``horizon: "28"``), a
value out of range, or a YAML 1.1 trap (``holidays_country: NO`` read as the boolean false) is
refused when the file is loaded, with one :class:`ConfigError` that lists each bad key, its value
and the fix. Nothing is coerced silently.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from jobs.common.jars import PROJECT_DIR
from jobs.core import names
from jobs.core.calendar import FREQUENCIES, last_complete_period
from jobs.core.errors import ConfigError

DEFAULT_CONFIG = PROJECT_DIR / "conf" / "lakecast.yaml"
REQUIRED_ROLES = ("timestamp", "quantity")
OPTIONAL_ROLES = ("order_id", "item_id", "description", "unit_price", "customer_id")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# A YAML list of strings: a list is accepted for a tuple, each item must be a real string.
Names = Annotated[tuple[str, ...], Field(strict=False)]


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` locations (object stores, HDFS), False for local paths."""
    return "://" in path


class Section(BaseModel):
    """A config section: frozen, unknown keys refused, no silent type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


@dataclass(frozen=True)
class TableRef:
    """A lake table: its metastore name (``layer.table``) and its storage path."""

    name: str
    path: str

    @property
    def database(self) -> str:
        return self.name.split(".")[0]


class CsvOptions(Section):
    """How a CSV drop is split into columns."""

    delimiter: str = Field(",", min_length=1)
    quote: str = Field('"', min_length=1)
    escape: str = Field('"', min_length=1)


class Classify(Section):
    """How lines are typed in ``bronze.sales.line_type``."""

    cancellation_prefix: str | None = None  # order ids starting with this are cancellations
    non_product_pattern: str | None = None  # item ids matching this regex are not products


class DatasetConfig(Section):
    """How to read one source dataset and what its columns mean."""

    name: str = "dataset"
    source: str
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvOptions = CsvOptions()
    columns: dict[str, str]
    attributes: dict[str, str] = {}
    regressors: dict[str, str] = {}
    timestamp_format: str = Field(min_length=1)
    segment_keys: Names = Field(min_length=1)
    frequency: Literal[tuple(FREQUENCIES)] = "daily"  # type: ignore[valid-type]
    horizon: int = Field(28, ge=1)
    holidays_country: str | None = None
    classify: Classify = Classify()
    # no_demand: a period without rows sold nothing; not_reported: it has no value
    missing_periods: Literal[names.MISSING_PERIODS] = "no_demand"  # type: ignore[valid-type]
    # plausibility checks of ingest: a line outside them goes to the quarantine with its reason
    earliest_date: dt.date = dt.date(1970, 1, 1)
    max_days_ahead: int = Field(31, ge=0)  # days a line may be dated after the run date
    max_abs_quantity: float = Field(1e9, gt=0)  # units on one line

    @field_validator("holidays_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return value
        import holidays

        if value not in holidays.list_supported_countries():
            raise ValueError(f"the holidays package has no calendar for {value!r}: use an ISO 3166 code it "
                             "knows (GB, US, DE, AU, ...) or null for no holidays")
        return value

    @field_validator("source")
    @classmethod
    def _resolve_source(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base")
        return _resolve(base, value) if base is not None else value

    @field_validator("columns")
    @classmethod
    def _roles(cls, columns: dict[str, str]) -> dict[str, str]:
        missing = [r for r in REQUIRED_ROLES if r not in columns]
        if missing:
            raise ValueError(f"must map the roles {missing} to source columns")
        unknown = sorted(set(columns) - set(REQUIRED_ROLES) - set(OPTIONAL_ROLES))
        if unknown:
            raise ValueError(f"has unknown roles {unknown}; roles are {list(REQUIRED_ROLES + OPTIONAL_ROLES)} "
                             "(put other columns under dataset.attributes or dataset.regressors)")
        return columns

    @model_validator(mode="after")
    def _keys(self) -> DatasetConfig:
        allowed = ({"item_id"} if "item_id" in self.columns else set()) | set(self.attributes)
        if not set(self.segment_keys) <= allowed:
            raise ValueError(f"segment_keys {list(self.segment_keys)} must be drawn from {sorted(allowed)} "
                             "(item_id or an attribute)")
        return self

    @property
    def cancellation_prefix(self) -> str | None:
        return self.classify.cancellation_prefix

    @property
    def non_product_pattern(self) -> str | None:
        return self.classify.non_product_pattern

    def has_role(self, role: str) -> bool:
        return role in self.columns

    def source_for(self, run_date: str) -> str:
        return self.source.replace("{run_date}", run_date)

    def origin(self, run_date: dt.date) -> dt.date:
        """Start of the last period complete by the end of ``run_date``: the last period a model
        may learn from on that date, and the one its forecasts follow."""
        return last_complete_period(run_date, self.frequency)


class FeaturesConfig(Section):
    """What counts as demand and which segments are worth a model."""

    demand_line_types: Names = ("sale", "cancellation")
    clip_negative: bool = True
    min_history_periods: int = Field(56, ge=1)
    min_nonzero_periods: int = Field(8, ge=0)
    min_nonzero_share: float = Field(0.05, ge=0, le=1)
    # periods without demand after which a segment is inactive (None: a year of periods)
    inactive_periods: int | None = Field(None, ge=1)
    inactive_policy: Literal[names.INACTIVE_POLICIES] = "zero"  # type: ignore[valid-type]

    def inactive_after(self, frequency: str) -> int:
        """Periods without demand that make a segment inactive."""
        return self.inactive_periods or FREQUENCIES[frequency].periods_per_year


class GlobalModelConfig(Section):
    """The global model (candidate ``global_lgbm``, :mod:`jobs.models.global_lgbm`): one LightGBM
    per training group. Empty ``lags`` / ``rolling_windows``: the frequency's defaults (lags
    from the horizon on). ``params`` go to LightGBM. Groups: one over every segment, unless
    ``group_by`` names a segment key (a model per value) or ``buckets`` > 1 (segments hashed into
    that many groups); each group trains in one Spark task. ``serve_new``: score forecasts a
    segment that is new since training with its group's current global model (when one was
    trained) instead of the seasonal-naive baseline. ``static_features``: segment keys the model
    gets as categorical features (for example the store of a store x department segment)."""

    lags: list[int] = []
    rolling_windows: list[int] = []
    conformal_windows: int = Field(1, ge=0)
    params: dict[str, Any] = {}
    static_features: list[str] = []
    group_by: str | None = None
    buckets: int = Field(1, ge=1)
    serve_new: bool = True


class ModelConfig(Section):
    """Model settings: interval width, non-negativity, Prophet's own arguments and the global
    model's."""

    interval_width: float = Field(0.8, gt=0, lt=1)
    non_negative: bool = True
    prophet: dict[str, Any] = {}
    global_lgbm: GlobalModelConfig = GlobalModelConfig()

    @field_validator("prophet")
    @classmethod
    def _prophet(cls, value: dict[str, Any]) -> dict[str, Any]:
        fitter = value.get("fitter", names.PROPHET_FITTERS[0])
        if fitter not in names.PROPHET_FITTERS:
            raise ValueError(f"fitter must be one of {list(names.PROPHET_FITTERS)}, not {fitter!r}")
        arguments = set(value) - {"fitter"}
        if arguments:
            import inspect
            import logging

            logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "Importing plotly failed"
            from prophet import Prophet
            known = set(inspect.signature(Prophet).parameters)
            unknown = sorted(arguments - known)
            if unknown:
                raise ValueError(f"{unknown} {'is not an argument' if len(unknown) == 1 else 'are not arguments'} "
                                 f"of Prophet(...): fix the spelling (its arguments: {', '.join(sorted(known))}; "
                                 "and fitter: batch or stan)")
            kept_out = sorted(arguments - set(names.PROPHET_SETTINGS))
            if kept_out:
                raise ValueError(f"lakecast does not pass {kept_out} to Prophet: holidays come from "
                                 "dataset.holidays_country, the rest is Prophet's own (the arguments it passes: "
                                 f"{', '.join(names.PROPHET_SETTINGS)})")
        return value


class ScheduleConfig(Section):
    """Retraining cadence: daily, weekly (on a weekday) or monthly (on a day of the month)."""

    retrain: Literal["daily", "weekly", "monthly"] = "weekly"
    retrain_weekday: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    retrain_day_of_month: int = Field(1, ge=1, le=28)


class RaceConfig(Section):
    """Racing the candidates (see :mod:`jobs.evaluation.race`): every candidate is backtested on
    about ``sample_segments`` segments of each demand class first; a family that costs at least
    ``min_cost_share`` of the class's fit time there and whose absence leaves the rule's held-out
    mean MASE on the sample no worse than ``tolerance`` (relative) is not backtested on the class's
    other segments. Classes with at most twice the sample's segments are not raced."""

    enabled: bool = True
    sample_segments: int = Field(300, ge=2)
    tolerance: float = Field(0.0, ge=0)
    min_cost_share: float = Field(0.05, ge=0, le=1)
    renew_days: int = Field(28, ge=0)


class EvaluationConfig(Section):
    """Backtests, model choice and the promotion gate.

    ``step`` of None means the horizon (windows end one horizon apart). Costs are per unit of
    under- and over-forecast, for the cost-weighted error. ``rule`` is how a segment's model is
    chosen: ``per_segment`` (its own backtest champion), ``portfolio`` (the best strategy over
    all segments of its demand class, unless its own champion beats that by ``margin`` in every
    window) or ``ensemble`` (the ensemble of its demand class).
    """

    candidates: Names = (names.SEASONAL_NAIVE, names.THETA, names.ETS, names.PROPHET,
                         names.COMBO_MEAN, names.COMBO_MEDIAN, names.POOL)
    intermittent_candidates: Names = names.INTERMITTENT_FAMILIES
    intermittent_zero_share: float = Field(0.5, gt=0, le=1)
    rule: Literal[names.RULES] = "portfolio"  # type: ignore[valid-type]
    margin: float = Field(0.1, ge=0)
    windows: int = Field(4, ge=1)
    step: int | None = Field(None, ge=1)
    metric: Literal[names.CHOICE_METRICS] = "mase"  # type: ignore[valid-type]
    promotion_tolerance: float = Field(0.0, ge=0)
    cost_under: float = Field(1.0, ge=0)
    cost_over: float = Field(1.0, ge=0)
    race: RaceConfig = RaceConfig()

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        families = [f for f in names.FAMILIES if f != names.ZERO]  # zero: an inactive segment's forecast
        unknown = [c for c in value if c not in families]
        if unknown:
            raise ValueError(f"{unknown} cannot be {'a candidate' if len(unknown) == 1 else 'candidates'}: "
                             f"candidates are drawn from {families}")
        if names.BASELINE not in value:
            raise ValueError(f"must include {names.BASELINE} (the baseline every model is measured against)")
        return value

    @field_validator("intermittent_candidates")
    @classmethod
    def _intermittent(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not set(value) <= set(names.INTERMITTENT_FAMILIES):
            raise ValueError(f"must be drawn from {list(names.INTERMITTENT_FAMILIES)}")
        return value

    @model_validator(mode="after")
    def _rule_needs_candidate(self) -> EvaluationConfig:
        if self.rule == names.ENSEMBLE and names.ENSEMBLE not in self.candidates:
            raise ValueError("rule ensemble needs ensemble among evaluation.candidates")
        return self


class MonitorConfig(Section):
    """lakecast monitor: what counts as drift, and what the nightly DAG does about it.

    Windows are in periods of the dataset's frequency; None means: ``recent_periods`` the
    horizon, ``reference_periods`` four horizons, ``min_periods`` a quarter of the horizon (at
    least 3). A data test flags when its p-value is below ``p_value`` *and* the change is large
    enough to matter (``min_change`` of level or spread, ``zero_share_change`` of the share of
    zero periods). The live model's errors flag when their MAE exceeds ``error_ratio`` times its
    backtest's, when their CUSUM (slack ``cusum_k``, in units of the backtest MAE) passes
    ``cusum_h``, or when they lean one way (sign test below ``p_value``, mean error at least
    ``bias`` of mean demand).
    """

    recent_periods: int | None = Field(None, ge=1)
    reference_periods: int | None = Field(None, ge=2)
    min_periods: int | None = Field(None, ge=2)
    p_value: float = Field(0.01, gt=0, lt=1)
    min_change: float = Field(0.5, gt=0)
    zero_share_change: float = Field(0.25, gt=0, le=1)
    error_ratio: float = Field(2.0, gt=1)
    cusum_k: float = Field(0.5, ge=0)
    cusum_h: float = Field(8.0, gt=0)
    bias: float = Field(0.5, gt=0)
    # the nightly DAG retrains the drifting segments (off: only cadence, no model, or forced)
    retrain_on_drift: bool = True
    # above this share of drifting segments every segment is re-evaluated and retrained
    retrain_all_share: float = Field(0.3, gt=0, le=1)
    # above this share of drifting segments the nightly DAG alerts (the lakecast_alerts webhook)
    alert_share: float = Field(0.2, gt=0, le=1)

    def windows(self, horizon: int) -> tuple[int, int, int]:
        """(recent, reference, minimum) periods for a dataset of this horizon."""
        recent = self.recent_periods or horizon
        minimum = self.min_periods or max(3, horizon // 4)
        return recent, self.reference_periods or 4 * horizon, min(minimum, recent)


class TrackingSection(Section):
    """MLflow tracking of evaluate and train runs. ``uri`` null: MLFLOW_TRACKING_URI if set,
    else a SQLite store in ``<lake>/_mlflow`` (a local lake)."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = Field("lakecast", min_length=1)


class LakeSection(Section):
    root: str = Field(min_length=1)
    # embedded Derby metastore folder (default <root>/_metastore for a local lake)
    metastore_dir: str | None = None


class SparkSection(Section):
    master: str = "local[2]"
    conf: dict[str, str | int | float | bool] = {}


class PrivacySection(Section):
    # environment variable holding the HMAC key for customer ids
    hash_key_env: str = Field("LAKECAST_HASH_KEY", min_length=1)
    # demo only: without the variable, hash with a public key and warn
    allow_demo_key: bool = False
    # hours of old table files kept after an erasure (0: removed at once; no time travel before it)
    erasure_retention_hours: int = Field(0, ge=0)


class MaintenanceSection(Section):
    # hours of old table files VACUUM keeps for time travel and for readers still on old versions
    vacuum_retention_hours: int = Field(168, ge=0)
    # OPTIMIZE ... ZORDER BY the segment keys for tables read by segment
    zorder: bool = True
    # the nightly DAG runs lakecast maintain after accuracy on this weekday
    weekday: Literal[WEEKDAYS] = "sunday"  # type: ignore[valid-type]


class ConfigFile(Section):
    """The file as written: every section, every key known."""

    lake: LakeSection
    spark: SparkSection = SparkSection()
    tables: dict[str, str] = {}
    dataset: DatasetConfig
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    privacy: PrivacySection = PrivacySection()
    maintenance: MaintenanceSection = MaintenanceSection()
    monitor: MonitorConfig = MonitorConfig()
    tracking: TrackingSection = TrackingSection()

    @field_validator("tables")
    @classmethod
    def _tables(cls, tables: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(tables) - set(names.TABLES))
        if unknown:
            raise ValueError(f"has unknown tables {unknown}; known: {sorted(names.TABLES)}")
        bad = {k: v for k, v in tables.items() if v.count(".") != 1 or v.split(".")[0] not in names.LAYERS}
        if bad:
            raise ValueError(f"{bad} must be '<layer>.<table>' with layer in {names.LAYERS}")
        return tables

    @model_validator(mode="after")
    def _global_groups(self) -> ConfigFile:
        group_by = self.model.global_lgbm.group_by
        if group_by is not None and group_by not in self.dataset.segment_keys:
            raise ValueError(f"model.global_lgbm.group_by {group_by!r} must be one of dataset.segment_keys "
                             f"{list(self.dataset.segment_keys)} (or null: one model over every segment)")
        unknown = sorted(set(self.model.global_lgbm.static_features) - set(self.dataset.segment_keys))
        if unknown:
            raise ValueError(f"model.global_lgbm.static_features {unknown} must be among dataset.segment_keys "
                             f"{list(self.dataset.segment_keys)}")
        return self


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
    privacy: PrivacySection = PrivacySection()
    maintenance: MaintenanceSection = MaintenanceSection()
    monitor: MonitorConfig = MonitorConfig()
    tracking: TrackingSection = TrackingSection()
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def hash_key_env(self) -> str:
        return self.privacy.hash_key_env

    @property
    def allow_demo_key(self) -> bool:
        return self.privacy.allow_demo_key

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


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a section accepts, found by walking the models along an error's location."""
    for part in loc:
        info = model.model_fields.get(str(part))
        annotation = getattr(info, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _fix(error: dict[str, Any], where: str) -> str:
    """What to do about one validation error, in words."""
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(ConfigFile, error["loc"][:-1])
        return f"unknown key: remove it or fix its spelling (known here: {', '.join(known)})"
    if kind == "missing":
        return "required: add it"
    if kind == "string_type" and isinstance(value, bool):
        return (f"YAML 1.1 reads an unquoted {str(value).lower()}/yes/no/on/off as a boolean: "
                f"quote the value, e.g. {where.rsplit('.', 1)[-1]}: 'NO'")
    if kind == "string_type" and isinstance(value, (int, float)):
        return f"{error['msg']}: quote the value, e.g. '{value}'"
    if kind == "float_type" and isinstance(value, str) and "e" in value.lower():
        return "YAML 1.1 reads this exponent form as text: write it with a dot and a signed exponent, e.g. 1.0e+9"
    if kind in ("int_type", "float_type", "bool_type") and isinstance(value, str):
        return f"{error['msg']}: write it without quotes"
    return error["msg"].removeprefix("Value error, ")


def _config_error(path: Path, exc: ValidationError) -> ConfigError:
    """One error naming every bad key, its value and the fix."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        value = "" if error["type"] == "missing" else f" = {error.get('input')!r}"
        lines.append(f"  {where}{value}: {_fix(error, where)}")
    return ConfigError(f"config {path} is invalid ({len(lines)} problem{'s' * (len(lines) > 1)}):\n"
                       + "\n".join(lines))


class DuplicateKey(Exception):
    """A key written twice in one mapping of the config file."""


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (plain YAML keeps the last
    one silently, so an edit further down a file would undo one above it unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKey(f"the key {key!r} is written twice in one section (lines {seen[key]} and {line}): "
                                   "keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _env_spark_conf() -> dict[str, str]:
    """``LAKECAST_SPARK_CONF="k=v;k=v"`` as a dict."""
    out = {}
    for item in filter(None, os.environ.get("LAKECAST_SPARK_CONF", "").split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"LAKECAST_SPARK_CONF item {item!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def _conf_value(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file (argument, else ``LAKECAST_CONFIG``, else the bundled default).

    Raises:
        ConfigError: when the file is missing, not YAML, or any setting is invalid; the message
            lists every bad key with its value and the fix.
    """
    path = Path(path or os.environ.get("LAKECAST_CONFIG") or DEFAULT_CONFIG).resolve()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --config PATH or set LAKECAST_CONFIG")
    try:
        with path.open() as f:
            raw = yaml.load(f, Loader=_UniqueKeys) or {}
    except DuplicateKey as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of sections (lake, dataset, ...), got {type(raw).__name__}")
    base = path.parent
    if os.environ.get("LAKECAST_LAKE") and isinstance(raw.get("lake"), dict):
        raw = {**raw, "lake": {**raw["lake"], "root": os.environ["LAKECAST_LAKE"]}}
    try:
        file = ConfigFile.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        raise _config_error(path, exc) from None
    lake_root = _resolve(base, file.lake.root)
    metastore = os.environ.get("LAKECAST_METASTORE") or file.lake.metastore_dir
    if metastore:
        metastore = _resolve(base, metastore)
    elif not is_uri(lake_root):
        metastore = f"{lake_root}/_metastore"
    spark_conf = {k: _conf_value(v) for k, v in file.spark.conf.items()}
    spark_conf.update(_env_spark_conf())
    evaluation = file.evaluation
    if evaluation.step is None:
        evaluation = evaluation.model_copy(update={"step": file.dataset.horizon})
    return Config(
        path=path,
        lake_root=lake_root,
        metastore_dir=metastore,
        spark_master=os.environ.get("LAKECAST_SPARK_MASTER") or file.spark.master,
        spark_conf=spark_conf,
        tables={**names.TABLES, **file.tables},
        dataset=file.dataset,
        features=file.features,
        model=file.model,
        schedule=file.schedule,
        evaluation=evaluation,
        privacy=file.privacy,
        maintenance=file.maintenance,
        monitor=file.monitor,
        tracking=file.tracking,
        raw=raw,
    )

# What every key means: the configuration reference (docs/configuration.md, `lakecast dictionary`)
# is generated from these and the models' types and defaults.
MEANINGS: dict[str, str] = {
    'CsvOptions.delimiter': "The character between two columns.",
    'CsvOptions.quote': "The character that quotes a value holding the delimiter.",
    'CsvOptions.escape': "The character that escapes a quote inside a quoted value.",
    'Classify.cancellation_prefix': "Order ids starting with this are cancellations (line type `cancellation`; needs `columns.order_id`); null: none.",
    'Classify.non_product_pattern': "A regular expression of item ids that are not products (postage, fees, adjustments): line type `non_product`; null: none.",
    'DatasetConfig.name': "The dataset's name, in the run log and reports.",
    'DatasetConfig.source': "The sales to ingest: a file, a folder of drop files, or a path with `{run_date}` (YYYY-MM-DD); relative to the config file.",
    'DatasetConfig.format': "`csv` (plain or .gz/.bz2/.xz/.zst compressed) or `parquet`.",
    'DatasetConfig.csv': "How a CSV source is split into columns.",
    'DatasetConfig.columns': "Role -> source column. Required roles: timestamp, quantity; optional: order_id, item_id, description, unit_price, customer_id.",
    'DatasetConfig.attributes': "Other source columns kept in bronze (bronze name -> source column), usable as segment keys.",
    'DatasetConfig.regressors': "Numeric source columns the models may use as external regressors (bronze name -> source column).",
    'DatasetConfig.timestamp_format': "The Spark datetime pattern of the timestamp column (for example `yyyy-MM-dd` or `M/d/yyyy H:mm`).",
    'DatasetConfig.segment_keys': "One forecast per value of these: `item_id` and/or attributes, most general first.",
    'DatasetConfig.frequency': "The period forecasts are made for: daily, weekly (weeks start on Monday), monthly or quarterly; sales are summed per period.",
    'DatasetConfig.horizon': "Periods forecast after the run date's last complete period; also the length of a backtest window.",
    'DatasetConfig.holidays_country': "ISO 3166 code of the country whose holidays the models know (any the `holidays` package knows); null: none.",
    'DatasetConfig.classify': "How source lines are typed in `bronze.sales.line_type`.",
    'DatasetConfig.missing_periods': "What a period without a source row means: `no_demand` (a transactions feed: zero) or `not_reported` (a series feed: no value).",
    'DatasetConfig.earliest_date': "Lines dated before this are quarantined (`date_out_of_range`).",
    'DatasetConfig.max_days_ahead': "Lines dated more than this many days after the run date are quarantined.",
    'DatasetConfig.max_abs_quantity': "Lines with more units than this (in absolute value) are quarantined (`extreme_quantity`).",
    'FeaturesConfig.demand_line_types': "The line types that count as demand (cancellations and returns subtract).",
    'FeaturesConfig.clip_negative': "A period whose cancellations exceed its sales counts as zero demand.",
    'FeaturesConfig.min_history_periods': "Open periods from a segment's first sale it needs for a model (else it gets the seasonal naive, reason `too_short`).",
    'FeaturesConfig.min_nonzero_periods': "Periods with demand a segment needs for a model (else `too_sparse`).",
    'FeaturesConfig.min_nonzero_share': "Share of open periods with demand a segment needs for a model (else `too_sparse`).",
    'FeaturesConfig.inactive_periods': "Periods without demand after which a segment is inactive; null: a year of periods.",
    'FeaturesConfig.inactive_policy': "What an inactive segment is forecast with: `zero` or the seasonal naive `baseline`.",
    'GlobalModelConfig.lags': "The global model's lags in periods; empty: from the horizon on, and the season's multiples.",
    'GlobalModelConfig.rolling_windows': "Its rolling means' windows in periods; empty: the frequency's defaults.",
    'GlobalModelConfig.conformal_windows': "Windows of `horizon` periods its conformal intervals are calibrated on.",
    'GlobalModelConfig.params': "LightGBM arguments (n_estimators, learning_rate, num_leaves, ...).",
    'GlobalModelConfig.static_features': "Segment keys the model gets as categorical features (say the store of a store x department segment).",
    'GlobalModelConfig.group_by': "A segment key: one model per value of it; null: one model over every segment (or `buckets`).",
    'GlobalModelConfig.buckets': "Segments hashed into this many groups, a model each (each group trains in one Spark task).",
    'GlobalModelConfig.serve_new': "Score forecasts a segment new since training with its group's current global model, not the seasonal naive.",
    'ModelConfig.interval_width': "Width of every prediction interval (0.8: from the 10 % to the 90 % quantile).",
    'ModelConfig.non_negative': "Clip forecasts and their bounds at zero.",
    'ModelConfig.prophet': "Prophet(...) arguments passed on (growth, n_changepoints, changepoint_range, yearly/weekly/daily_seasonality, seasonality_mode, *_prior_scale, holidays_mode, mcmc_samples, uncertainty_samples, scaling), checked against Prophet's signature; and `fitter`: `batch` (prophet-batch, many models in one call) or `stan`.",
    'ModelConfig.global_lgbm': "The global model `global_lgbm` (one LightGBM across a group's segments).",
    'ScheduleConfig.retrain': "Retrain on this cadence (daily, weekly, monthly), and whenever no model exists yet; score every night.",
    'ScheduleConfig.retrain_weekday': "The weekday of a weekly retrain.",
    'ScheduleConfig.retrain_day_of_month': "The day of the month of a monthly retrain.",
    'RaceConfig.enabled': "Race the candidates on a sample first and leave out, per demand class, the costly families the rule can do without.",
    'RaceConfig.sample_segments': "Segments sampled per demand class (a class with at most twice as many is not raced).",
    'RaceConfig.tolerance': "How much worse (relative) the rule's held-out MASE on the sample may get without a family for it to be dropped.",
    'RaceConfig.min_cost_share': "Families costing less than this share of the sample's fit time are not raced.",
    'RaceConfig.renew_days': "Days a race's decisions hold: a later evaluation with the same candidates and settings takes them from the run log instead of racing again (0: race every run; --no-reuse always races).",
    'EvaluationConfig.candidates': "The candidates every segment is backtested with: seasonal_naive (required), croston, tsb, adida, dot, theta, ets, ces, arima, prophet, global_lgbm, and the derived combo_mean, combo_median, scum, pool, ensemble.",
    'EvaluationConfig.intermittent_candidates': "Extra candidates of intermittent segments: croston, tsb, adida.",
    'EvaluationConfig.intermittent_zero_share': "A segment with at least this share of open periods without demand is intermittent.",
    'EvaluationConfig.rule': "How a segment's model is chosen: `portfolio` (its demand class's best strategy unless its own champion beats it by `margin` in every window), `ensemble` or `per_segment`.",
    'EvaluationConfig.margin': "The score difference the choice treats as real (also: the pool's members are within it of the best).",
    'EvaluationConfig.windows': "Backtest windows of `horizon` periods each.",
    'EvaluationConfig.step': "Periods between window ends (on a fixed calendar grid, so nearby run dates share windows); null: the horizon.",
    'EvaluationConfig.metric': "What the choice minimises: mase, wape, mae, rmse, smape, pinball or cost.",
    'EvaluationConfig.promotion_tolerance': "A new champion replaces production only when its score is at most production's x (1 + this).",
    'EvaluationConfig.cost_under': "Cost of one unit of under-forecast (a lost sale), for the `cost` metric.",
    'EvaluationConfig.cost_over': "Cost of one unit of over-forecast (stock), for the `cost` metric.",
    'EvaluationConfig.race': "Racing the candidates on a sample first (fewer fits).",
    'MonitorConfig.recent_periods': "Periods since training that drift is judged on; null: the horizon.",
    'MonitorConfig.reference_periods': "Periods of training data they are compared with; null: four horizons.",
    'MonitorConfig.min_periods': "Fewest recent periods to judge on; null: a quarter of the horizon (at least 3).",
    'MonitorConfig.p_value': "Every test flags below this p-value ...",
    'MonitorConfig.min_change': "... and only if the level or spread changed by this share (x1.5, /1.5) ...",
    'MonitorConfig.zero_share_change': "... or the share of zero periods by this much.",
    'MonitorConfig.error_ratio': "Realized MAE above this times the backtest's MAE: concept drift.",
    'MonitorConfig.cusum_k': "Slack of the CUSUM of |error| / backtest MAE - 1 ...",
    'MonitorConfig.cusum_h': "... which alarms above this.",
    'MonitorConfig.bias': "Errors of one sign (sign test) with a mean error of at least this share of mean demand: drift.",
    'MonitorConfig.retrain_on_drift': "The nightly DAG retrains the drifting segments that night.",
    'MonitorConfig.retrain_all_share': "Above this share of segments drifting, every segment is retrained.",
    'MonitorConfig.alert_share': "Above this share drifting, the nightly DAG posts to the `lakecast_alerts` webhook.",
    'TrackingSection.enabled': "Track every evaluate and train run in MLflow (parameters, metrics, input table versions).",
    'TrackingSection.uri': "MLflow tracking URI; null: MLFLOW_TRACKING_URI, else a SQLite store in `<lake>/_mlflow`.",
    'TrackingSection.experiment': "MLflow experiment name.",
    'LakeSection.root': "The lake: a local folder (relative to the config file), or s3a://, abfss://, hdfs://; LAKECAST_LAKE overrides it.",
    'LakeSection.metastore_dir': "The embedded Derby metastore's folder (one process at a time); null: `<root>/_metastore` for a local lake. LAKECAST_METASTORE overrides it.",
    'SparkSection.master': "Spark master (ignored under spark-submit, whose --master wins); LAKECAST_SPARK_MASTER overrides it.",
    'SparkSection.conf': "Any Spark setting; LAKECAST_SPARK_CONF=\"k=v;k=v\" adds or overrides.",
    'PrivacySection.hash_key_env': "The environment variable holding the secret key the customer id is hashed with (HMAC-SHA256).",
    'PrivacySection.allow_demo_key': "Demo only: without the variable, hash with a public key and warn. Keep false for real data.",
    'PrivacySection.erasure_retention_hours': "Hours `lakecast forget` keeps the erased customers' old table files before VACUUM (0: at once, ending time travel before the erasure).",
    'MaintenanceSection.vacuum_retention_hours': "Hours of old table files VACUUM keeps for time travel and for readers on old versions.",
    'MaintenanceSection.zorder': "OPTIMIZE ... ZORDER BY the segment id the tables read by segment.",
    'MaintenanceSection.weekday': "The weekday the nightly DAG runs `lakecast maintain`.",
    'ConfigFile.lake': "Where the lake and its metastore are.",
    'ConfigFile.spark': "The Spark session of every job.",
    'ConfigFile.tables': "Logical table -> `<layer>.<table>` (to rename a table); the defaults are `bronze.sales`, `silver.demand`, `gold.forecasts`, ...",
    'ConfigFile.dataset': "The source and what its columns mean.",
    'ConfigFile.features': "What counts as demand, and which segments get a model.",
    'ConfigFile.model': "Model settings.",
    'ConfigFile.schedule': "When to retrain.",
    'ConfigFile.evaluation': "Backtests, the choice and the promotion gate.",
    'ConfigFile.privacy': "Personal data: the customer id's hash key and erasure.",
    'ConfigFile.maintenance': "Lake upkeep (`lakecast maintain`).",
    'ConfigFile.monitor': "Drift monitoring (`lakecast monitor`) and what the nightly DAG does about it.",
    'ConfigFile.tracking': "MLflow tracking.",
}


def sections() -> dict[str, type[Section]]:
    """Every config section's model by its class name."""
    return {cls.__name__: cls for cls in (ConfigFile, LakeSection, SparkSection, DatasetConfig, CsvOptions, Classify,
                                          FeaturesConfig, ModelConfig, GlobalModelConfig, ScheduleConfig,
                                          EvaluationConfig, RaceConfig, PrivacySection, MaintenanceSection,
                                          MonitorConfig, TrackingSection)}


# Environment variables lakecast reads (name -> what it does).
ENVIRONMENT = {
    "LAKECAST_CONFIG": "The config file every command and the Airflow DAGs use when no --config is given "
                       "(default: conf/lakecast.yaml).",
    "LAKECAST_LAKE": "Overrides lake.root.",
    "LAKECAST_METASTORE": "Overrides lake.metastore_dir.",
    "LAKECAST_SPARK_MASTER": "Overrides spark.master (spark-submit's --master wins over both).",
    "LAKECAST_SPARK_CONF": "Spark settings added to spark.conf: \"key=value;key=value\".",
    "LAKECAST_HASH_KEY": "The secret key customer ids are hashed with (the name is privacy.hash_key_env).",
    "LAKECAST_LOG_LEVEL": "Log level of the jobs (default INFO).",
    "LAKECAST_PROGRESS_SECONDS": "Seconds between a running job's progress lines (default 30; 0: none).",
    "LAKECAST_RUN_ID": "The run id a job records instead of a generated one.",
    "LAKECAST_JARS_DIR": "Where the Delta Lake jars are resolved to (default .cache/jars).",
    "LAKECAST_DRIVER_JAVA_OPTIONS": "Extra JVM options of the jobs' Spark driver, in local runs and the DAG's spark-submit "
                                    "tasks. -XX:TieredStopAtLevel=1 (no C2 compiler) cut a features job on an "
                                    "11-product lake from about 115 to 72 core-seconds but made an ingest of the whole "
                                    "bundled file 40 % slower, so it is not the default; the tests set it for the jobs "
                                    "they start as processes.",
    "LAKECAST_HOME": "The project folder the Airflow DAGs run the jobs from (default: the DAGs' parent folder).",
    "LAKECAST_SPARK_JARS": "Comma-separated jars the DAGs' spark-submit tasks add (default: .cache/jars/*.jar).",
    "LAKECAST_PYSPARK_PYTHON": "The Python of the DAGs' Spark workers (default: the scheduler's).",
    "LAKECAST_WRITE_GOLDEN": "Tests only: 1 regenerates the golden tables (tests/digest.py says when).",
    "AIRFLOW_CONN_LAKECAST_ALERTS": "The drift alerts' webhook, as an Airflow connection "
                                    "('{\"conn_type\": \"http\", \"host\": \"https://...\"}').",
}


for _name, _section in sections().items():
    for _field, _info in _section.model_fields.items():
        _info.description = MEANINGS.get(f"{_name}.{_field}")
    _section.model_rebuild(force=True)
