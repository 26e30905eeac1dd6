"""A global model: one LightGBM learned across many segments (mlforecast builds its features).

Every other family is local: one model per segment, learning from that segment's history alone.
:class:`GlobalLGBM` learns one gradient-boosted tree model from the lags, rolling means and
calendar of every segment of a training group, each segment's demand scaled by its own mean and
standard deviation (mlforecast's ``LocalStandardScaler``), so that one model serves segments of
very different size. Its lags are at least the horizon long, so no forecast step is built on an
earlier step's forecast (recursive short lags drifted upwards by half the demand on the bundled
data); its intervals are split conformal (the scaled errors of a fit that ended a horizon
earlier, pooled over the group's segments, by step).
Closed periods are zero, as for the statistical families.

It is fitted on a whole group's panel (columns ``unique_id``, ``ds``, ``y`` and the regressors)
and persisted without pickle (:meth:`GlobalLGBM.to_json`: LightGBM's own text model, the feature
settings, the conformal scores and the library versions). A segment's view of it is
:class:`GlobalPath`: the forecast path the group's model made for that segment from a training
origin, which is what backtests, combinations, ``gold.models`` and scoring handle like any other
family's model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.calendar import FREQUENCIES, period_number, season_length
from jobs.core.names import GLOBAL_LGBM
from jobs.models.base import FORECAST_COLUMNS, Forecaster, ModelFailure

SEED = 20111209
_LEVEL_COLUMNS = ("yhat_lower", "yhat_upper")


def default_lags(frequency: str, horizon: int) -> list[int]:
    """Lags no shorter than the horizon (every feature of a forecast step is then an observed
    value, never an earlier step's forecast: recursive lags drift, measured on the bundled data),
    the three periods from the horizon on and the season's multiples up to a season past it."""
    m = season_length(frequency)
    return sorted({horizon, horizon + 1, horizon + 2} | {k * m for k in range(1, horizon // m + 3)
                                                        if horizon <= k * m <= horizon + m})


def default_windows(frequency: str) -> list[int]:
    """Rolling-mean lengths (from the horizon's lag on): a season and four (a month and a quarter,
    for weekly data)."""
    m = season_length(frequency)
    return [m, 4 * m] if m < 52 else [4, 13]


# Calendar features: the period's position in its season (longer cycles, such as the month of a
# daily period, fitted the few years of retail history too closely on the bundled data).
DATE_FEATURES = {"daily": ["dayofweek"], "weekly": ["week"], "monthly": ["month"], "quarterly": ["quarter"]}


def holiday_flags(ds: pd.Series, frequency: str, country: str | None) -> np.ndarray:
    """1.0 for a period holding a public holiday of ``country`` (the ``holidays`` package), else 0."""
    ds = pd.to_datetime(pd.Series(ds)).reset_index(drop=True)
    if not country or ds.empty:
        return np.zeros(len(ds))
    import holidays as holidays_lib

    days = holidays_lib.country_holidays(country, years=range(ds.min().year, ds.max().year + 2))
    periods = set(period_number(pd.Series(pd.to_datetime(list(days))), frequency).tolist()) if days else set()
    return np.isin(period_number(ds, frequency), list(periods)).astype(float)


@dataclass(frozen=True)
class GlobalSettings:
    """What the global model is built with (``model.global_lgbm`` of the config; empty lists
    mean the frequency's defaults)."""

    frequency: str
    horizon: int
    interval_width: float = 0.8
    lags: tuple[int, ...] = ()
    rolling_windows: tuple[int, ...] = ()
    holidays_country: str | None = None
    regressors: tuple[str, ...] = ()
    conformal_windows: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    static_features: tuple[str, ...] = ()  # segment columns given to the model as categoricals

    def resolved(self) -> GlobalSettings:
        return GlobalSettings(
            **{**asdict(self), "lags": tuple(self.lags or default_lags(self.frequency, self.horizon)),
               "rolling_windows": tuple(self.rolling_windows or default_windows(self.frequency)),
               "regressors": tuple(self.regressors), "static_features": tuple(self.static_features),
               "params": dict(self.params)})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists for the tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GlobalSettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def lgbm_params(self) -> dict[str, Any]:
        """LightGBM's settings: one thread (one Spark task is one core), deterministic."""
        return {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 63, "min_child_samples": 50,
                "subsample": 1.0, "colsample_bytree": 0.8, **self.params,
                "n_jobs": 1, "random_state": SEED, "deterministic": True, "force_row_wise": True, "verbosity": -1}


def _scales(data: pd.DataFrame) -> pd.Series:
    """Each segment's scale: the standard deviation of its demand (its mean absolute demand when
    constant, 1 when all zero)."""
    scale = data.groupby("unique_id")["y"].std(ddof=0)
    scale = scale.where(scale > 0, data["y"].abs().groupby(data["unique_id"]).mean())
    return scale.where(scale > 0, 1.0).fillna(1.0)


class _Booster:
    """A LightGBM booster loaded from its text format, with the ``predict`` mlforecast calls."""

    def __init__(self, text: str) -> None:
        import lightgbm

        self.booster = lightgbm.Booster(model_str=text)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(X)


class GlobalLGBM:
    """One LightGBM over a group's segments. ``fit`` takes a panel (``unique_id``, ``ds``, ``y``,
    the regressors), ``forecast`` the next ``h`` periods of every segment it was fitted or
    :meth:`update`-d on."""

    def __init__(self, settings: GlobalSettings) -> None:
        self.settings = settings.resolved()
        self.mlf: Any = None
        self.model_text: str | None = None
        self.scores: pd.DataFrame | None = None  # conformal scores: unique_id, step, score
        self.last: dict[str, dict[str, float]] = {}  # each segment's last regressor values
        self.scale: pd.Series = pd.Series(dtype=float)  # each segment's scale (conformal scores are in it)

    def _forecaster(self) -> Any:
        from lightgbm import LGBMRegressor
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import LocalStandardScaler

        s = self.settings
        return MLForecast(
            models={"lgbm": LGBMRegressor(**s.lgbm_params())},
            freq=FREQUENCIES[s.frequency].pandas_alias,
            lags=list(s.lags),
            lag_transforms={s.horizon: [RollingMean(window_size=w) for w in s.rolling_windows]},
            date_features=DATE_FEATURES[s.frequency],
            target_transforms=[LocalStandardScaler()],
        )

    def _panel(self, panel: pd.DataFrame) -> pd.DataFrame:
        s = self.settings
        out = panel[["unique_id", "ds", "y", *s.regressors, *s.static_features]].copy()
        out["ds"] = pd.to_datetime(out["ds"])
        for c in s.static_features:  # LightGBM splits on categories (kept in its text model)
            out[c] = out[c].astype(str).astype("category")
        out["y"] = out["y"].astype(float).fillna(0.0)
        for r in s.regressors:
            out[r] = out.groupby("unique_id")[r].ffill().fillna(0.0).astype(float)
        out["holiday"] = holiday_flags(out["ds"], s.frequency, s.holidays_country)
        return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)

    def fit(self, panel: pd.DataFrame) -> GlobalLGBM:
        """Learn from every segment of ``panel`` (each a gap-free calendar up to its last period)."""
        data = self._panel(panel)
        if data.empty:
            raise ModelFailure("no_training_rows", "the global model got no segment to learn from")
        self.mlf = self._forecaster()
        self.mlf.fit(data, static_features=list(self.settings.static_features))
        self.model_text = self.mlf.models_["lgbm"].booster_.model_to_string()
        self.scores = self._conformal_scores(data)
        self._remember(data)
        return self

    def _remember(self, data: pd.DataFrame) -> None:
        """Each segment's last regressor values and its scale (what the intervals are in)."""
        tail = data.groupby("unique_id").tail(1)
        self.last = {uid: dict(zip(self.settings.regressors, row)) for uid, row in
                     zip(tail["unique_id"], tail[list(self.settings.regressors)].to_numpy())}
        self.scale = _scales(data)

    def _conformal_scores(self, data: pd.DataFrame) -> pd.DataFrame:
        """Split conformal scores: the errors of the model fitted once before the last
        ``conformal_windows`` windows of ``horizon`` periods, on those windows of every series
        long enough, each error divided by its series' scale, by forecast step. Empty when no
        series is long enough."""
        s = self.settings
        n = s.conformal_windows * s.horizon
        sizes = data.groupby("unique_id").size()
        long_enough = sizes[sizes > n + max(s.lags)].index
        if not len(long_enough) or s.conformal_windows < 1:
            return pd.DataFrame(columns=["step", "score"])
        cv = self._forecaster().cross_validation(
            data[data["unique_id"].isin(long_enough)], n_windows=s.conformal_windows, h=s.horizon,
            refit=False, static_features=list(s.static_features))
        cv["step"] = cv.groupby(["unique_id", "cutoff"]).cumcount() + 1
        cv["score"] = (cv["y"] - cv["lgbm"]).abs() / cv["unique_id"].map(_scales(data))
        return cv[["step", "score"]].reset_index(drop=True)

    def forecast(self, h: int, ids: list[str] | None = None) -> pd.DataFrame:
        """``unique_id, ds, yhat, yhat_lower, yhat_upper`` for the next ``h`` periods of every
        segment fitted (or those in ``ids``). Regressors stay at their last value, as in the other
        families. The interval is the forecast plus or minus the segment's scale times the
        ``interval_width`` quantile of the conformal scores of its step (pooled over the group's
        segments; steps past those scored use the last scored step's)."""
        s = self.settings
        if self.mlf is None:
            raise ModelFailure("not_fitted", "the global model has not been fitted or loaded")
        future = self.mlf.make_future_dataframe(h)
        if ids is not None:
            future = future[future["unique_id"].isin(ids)]
        for r in s.regressors:
            future[r] = future["unique_id"].map(lambda u, r=r: self.last.get(u, {}).get(r, 0.0))
        future["holiday"] = holiday_flags(future["ds"], s.frequency, s.holidays_country)
        with warnings.catch_warnings():  # short segments' lags are null: LightGBM takes them as missing
            warnings.filterwarnings("ignore", message="Found null values")
            out = self.mlf.predict(h, X_df=future.reset_index(drop=True), ids=ids)
        out = out.rename(columns={"lgbm": "yhat"})
        step = out.groupby("unique_id").cumcount().to_numpy() + 1
        width = self.widths(step) * out["unique_id"].map(self.scale).to_numpy(dtype=float)
        out["yhat_lower"], out["yhat_upper"] = out["yhat"] - width, out["yhat"] + width
        return out[["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]].reset_index(drop=True)

    def widths(self, steps: np.ndarray) -> np.ndarray:
        """The conformal half-width of each forecast step, in units of a segment's scale (0 when
        nothing was scored)."""
        if self.scores is None or self.scores.empty:
            return np.zeros(len(steps))
        by_step = self.scores.groupby("step")["score"].quantile(self.settings.interval_width)
        return by_step.reindex(np.minimum(steps, by_step.index.max())).to_numpy(dtype=float)

    def to_json(self, history: pd.DataFrame | None = None) -> str:
        """The fitted model as JSON: settings, LightGBM's text model, the conformal scores and
        the library versions (no pickle). The segments' recent history is not in it: give it
        to :meth:`from_json` to forecast."""
        from importlib.metadata import version

        return json.dumps({
            "settings": self.settings.to_dict(),
            "model": self.model_text,
            "scores": None if self.scores is None else self.scores.to_dict(orient="list"),
            "libraries": {d: version(d) for d in ("mlforecast", "lightgbm", "pandas", "numpy")},
        })

    @classmethod
    def from_json(cls, payload: str, history: pd.DataFrame) -> GlobalLGBM:
        """The model saved by :meth:`to_json`, ready to forecast the segments of ``history``
        (a panel as :meth:`fit` takes: their features are rebuilt from it, nothing refitted)."""
        d = json.loads(payload)
        model = cls(GlobalSettings.from_dict(d["settings"]))
        data = model._panel(history)
        model.mlf = model._forecaster()
        model.mlf.preprocess(data, static_features=list(model.settings.static_features))
        model.mlf.models_ = {"lgbm": _Booster(d["model"])}
        model.model_text = d["model"]
        model.scores = pd.DataFrame(d["scores"]) if d["scores"] is not None else None
        model._remember(data)
        return model


class GlobalPath(Forecaster):
    """One segment's forecasts from its group's global model, as a model of the segment.

    The group's model is fitted elsewhere (the evaluate and train jobs, once per group and
    training origin); its forecasts for this segment are handed in as ``paths`` (training origin
    -> ``ds, yhat, yhat_lower, yhat_upper``). :meth:`fit` takes the path of the history's last
    period; a fitted path is stored like a statistical family's (origin and path)."""

    name = GLOBAL_LGBM

    def __init__(self, frequency: str, interval_width: float = 0.8, path_periods: int = 90, **settings: Any) -> None:
        self.frequency = frequency
        self.interval_width = interval_width
        self.path_periods = path_periods
        self.settings = settings  # the global model's own settings (what the spec compares)
        self.paths: dict[pd.Timestamp, pd.DataFrame] = {}
        self.seconds: dict[pd.Timestamp, float] = {}
        self.reasons: dict[pd.Timestamp, str] = {}
        self.anchor: int | None = None
        self.path: dict[str, Any] = {}
        self.replayed_seconds: float | None = None

    def init_args(self) -> dict[str, Any]:
        return {"frequency": self.frequency, "interval_width": self.interval_width,
                "path_periods": self.path_periods, **self.settings}

    @classmethod
    def for_settings(cls, settings: GlobalSettings, path_periods: int) -> GlobalPath:
        """The segment's view of a global model with ``settings``, storing ``path_periods``."""
        d = settings.resolved().to_dict()
        return cls(d.pop("frequency"), d.pop("interval_width"), path_periods, **d)

    def global_settings(self) -> GlobalSettings:
        """The settings of the group's model this segment's forecasts come from."""
        return GlobalSettings.from_dict({"frequency": self.frequency, "interval_width": self.interval_width,
                                         **self.settings})

    def given(self, paths: Mapping[str, pd.DataFrame]) -> GlobalPath:
        own = paths.get(self.spec())
        return self if own is None else self.with_paths(own)

    def with_paths(self, forecasts: pd.DataFrame) -> GlobalPath:
        """Hand in the group model's forecasts of this segment: ``origin, ds, yhat, yhat_lower,
        yhat_upper`` and ``seconds`` (this segment's share of the fit)."""
        for origin, rows in forecasts.groupby("origin"):
            key = pd.Timestamp(origin)
            failed = rows[rows["ds"].isna()]
            if len(failed):
                self.reasons[key] = str(failed["reason"].iloc[0])
            self.paths[key] = rows[rows["ds"].notna()].sort_values("ds")
            self.seconds[key] = float(rows["seconds"].iloc[0]) if "seconds" in rows else 0.0
        return self

    def fit(self, history: pd.DataFrame) -> GlobalPath:
        origin = pd.Timestamp(pd.to_datetime(history["ds"]).max())
        self.replayed_seconds = self.seconds.get(origin, 0.0)
        rows = self.paths.get(origin)
        if rows is None or rows.empty:
            raise ModelFailure("no_global_forecast", self.reasons.get(
                origin, f"the global model made no forecast of this segment from {origin.date()}"))
        if not np.isfinite(rows[["yhat", *_LEVEL_COLUMNS]].to_numpy(dtype=float)).all():
            raise ModelFailure(f"{self.name}_failed", "non-finite forecast")
        self.anchor = int(period_number(pd.Series([origin]), self.frequency)[0])
        ds = pd.to_datetime(rows["ds"])
        steps = period_number(ds, self.frequency) - self.anchor
        self.path = {"steps": steps.tolist(), "mean": rows["yhat"].astype(float).tolist(),
                     "lower": rows["yhat_lower"].astype(float).tolist(),
                     "upper": rows["yhat_upper"].astype(float).tolist()}
        return self

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        ds = pd.to_datetime(future["ds"]).reset_index(drop=True)
        steps = period_number(ds, self.frequency) - self.anchor
        index = {s: i for i, s in enumerate(self.path["steps"])}
        missing = [s for s in steps if s not in index]
        if missing:
            raise ModelFailure("beyond_path", f"{self.name} stores {len(index)} periods after its origin")
        idx = np.array([index[s] for s in steps], dtype=int)
        return pd.DataFrame({"ds": ds, "yhat": np.asarray(self.path["mean"])[idx],
                             "yhat_lower": np.asarray(self.path["lower"])[idx],
                             "yhat_upper": np.asarray(self.path["upper"])[idx]})[FORECAST_COLUMNS]

    def to_json(self) -> str:
        return json.dumps({**self.init_args(), "anchor": self.anchor, "path": self.path})

    @classmethod
    def from_json(cls, payload: str) -> GlobalPath:
        d = json.loads(payload)
        anchor, path = d.pop("anchor"), d.pop("path")
        model = cls(**d)
        model.anchor, model.path = anchor, path
        return model
