"""Prophet, the card's model, with settings from config and JSON serialization."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.names import PROPHET, PROPHET_SETTINGS
from jobs.models.base import FORECAST_COLUMNS, Forecaster, ModelFailure

SEED = 20111209




def quiet_stan() -> None:
    """Silence cmdstanpy and Prophet (also in Spark's Python workers, which do not run the jobs'
    logging set-up). cmdstanpy resets its logger to DEBUG when it has no handler: give it one."""
    cmdstan = logging.getLogger("cmdstanpy")
    if not cmdstan.handlers:
        cmdstan.addHandler(logging.NullHandler())
    cmdstan.setLevel(logging.WARNING)
    cmdstan.propagate = False
    # prophet.plot logs "Importing plotly failed" at ERROR: it is optional for us.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("prophet").setLevel(logging.WARNING)


def _clean_cmdstan_tmp() -> None:
    """Remove the files cmdstanpy leaves behind after each fit (about 36 KB a fit)."""
    import cmdstanpy

    for child in Path(cmdstanpy._TMPDIR).glob("*"):
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def _checked(out: pd.DataFrame) -> pd.DataFrame:
    """Prophet's forecast as :meth:`Forecaster.predict` returns it (no interval when
    uncertainty_samples is 0: the bounds are the point forecast), or a failure when not finite."""
    out = out.copy()
    if "yhat_lower" not in out:
        out["yhat_lower"] = out["yhat_upper"] = out["yhat"]
    out = out[FORECAST_COLUMNS]
    if not np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all():
        raise ModelFailure("prophet_failed", "non-finite forecast")
    return out.reset_index(drop=True)


class _StanFallbacks(logging.Handler):
    """Collects, from prophet-batch's log, the series it left to Stan and why."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reasons: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Series %r falls back to Prophet.fit"):
            series, reason = record.args
            self.reasons[int(series)] = f"stan: {reason}"


class ProphetForecaster(Forecaster):
    """Prophet, the card's model. :meth:`fit` fits one model with Stan; :meth:`fit_many` fits
    many at once with prophet-batch (``model.prophet.fitter``, see
    :data:`jobs.core.names.PROPHET_FITTERS`)."""

    name = PROPHET

    def __init__(
        self,
        settings: dict[str, Any] | None = None,
        holidays_country: str | None = None,
        regressors: tuple[str, ...] = (),
    ) -> None:
        self.settings = {k: v for k, v in (settings or {}).items() if k in PROPHET_SETTINGS}
        self.holidays_country = holidays_country
        self.regressors = tuple(regressors)
        self.last_regressors: dict[str, float] = {}
        self.model = None
        self.fitted_by = "stan"  # or "batch" (fit_many), or why fit_many left it to Stan
        self._given: ProphetForecaster | None = None

    def init_args(self) -> dict[str, Any]:
        return {"settings": self.settings, "holidays_country": self.holidays_country,
                "regressors": list(self.regressors)}

    def given(self, paths: Mapping[str, Any]) -> ProphetForecaster:
        """Take a model of this spec already fitted on this segment's history (many fitted at
        once with :meth:`fit_many`, say): :meth:`fit` then adopts it instead of fitting again."""
        made = paths.get(self.spec())
        self._given = made if isinstance(made, ProphetForecaster) and made.model is not None else None
        return self

    def fit(self, history: pd.DataFrame) -> ProphetForecaster:
        """Fit with Stan (L-BFGS on Prophet's posterior), as stock Prophet does (or adopt the
        model handed over by :meth:`given`, fitted on the same history)."""
        if self._given is not None:
            made, self._given = self._given, None
            self.model, self.last_regressors, self.fitted_by = made.model, made.last_regressors, made.fitted_by
            return self
        quiet_stan()
        train = self._train(history)
        model = self._prophet()
        try:
            model.fit(train)
        except Exception as exc:  # Stan optimisation or data errors: the caller falls back
            raise ModelFailure("prophet_failed", f"{type(exc).__name__}: {exc}"[:300]) from exc
        finally:
            _clean_cmdstan_tmp()
        return self._fitted(model, train)

    def _train(self, history: pd.DataFrame) -> pd.DataFrame:
        """The history as Prophet takes it, or :class:`ModelFailure` when it cannot be fitted."""
        train = history[["ds", "y", *self.regressors]].copy()
        train["ds"] = pd.to_datetime(train["ds"])
        if train["y"].notna().sum() < 2:
            raise ModelFailure("too_short", "fewer than two observed periods")
        if self.regressors and train.loc[train["y"].notna(), list(self.regressors)].isna().any().any():
            raise ModelFailure("regressor_missing", "a regressor has gaps in the history")
        return train

    def _prophet(self) -> Any:
        """A new, unfitted Prophet with these settings, holidays and regressors."""
        from prophet import Prophet

        model = Prophet(**self.settings)
        if self.holidays_country:
            model.add_country_holidays(country_name=self.holidays_country)
        for r in self.regressors:
            model.add_regressor(r)
        return model

    def _fitted(self, model: Any, train: pd.DataFrame) -> ProphetForecaster:
        self.model = model
        observed = train.dropna(subset=["y"])
        self.last_regressors = {r: float(observed[r].iloc[-1]) for r in self.regressors}
        return self

    @staticmethod
    def fit_many(models: list[ProphetForecaster], histories: list[pd.DataFrame]) -> list[ProphetForecaster | ModelFailure]:
        """Fit many models at once with prophet-batch's exact batched MAP solvers (the same
        posterior as Stan's, solved exactly for linear and flat growth; its log posterior is at
        least Stan's), each model on its own history. What the batch cannot fit (logistic growth,
        MCMC) is fitted by Stan, and the model says why (``fitted_by``); a history that cannot be
        fitted at all gives the :class:`ModelFailure` :meth:`fit` would raise, in its place."""
        quiet_stan()
        from prophet_batch import fit_many

        out: list[ProphetForecaster | ModelFailure] = list(models)
        trains: dict[int, pd.DataFrame] = {}
        for i, (model, history) in enumerate(zip(models, histories)):
            try:
                trains[i] = model._train(history)
            except ModelFailure as exc:
                out[i] = exc
        if not trains:
            return out
        frame = pd.concat([t.assign(unique_id=i) for i, t in trains.items()], ignore_index=True)
        log, stan = logging.getLogger("prophet_batch"), _StanFallbacks()
        before = log.level, log.propagate
        log.setLevel(logging.DEBUG)  # its per-series debug lines come here only, not to the job's log
        log.propagate = False
        log.addHandler(stan)
        try:
            fitted = fit_many(frame, make_model=lambda i: models[i]._prophet(), n_jobs=1, on_error="skip")
        finally:
            log.removeHandler(stan)
            log.setLevel(before[0])
            log.propagate = before[1]
            _clean_cmdstan_tmp()
        for i, train in trains.items():
            if i in fitted:
                models[i]._fitted(fitted[i], train).fitted_by = stan.reasons.get(i, "batch")
                continue
            try:  # prophet-batch left it out: Stan, for the error it gives
                models[i].fit(histories[i]).fitted_by = "stan: prophet-batch could not fit it"
            except ModelFailure as exc:
                out[i] = exc
        return out

    def predict(self, future: pd.DataFrame) -> pd.DataFrame:
        # Prophet samples its intervals from numpy's global generator: seed it so that a rerun
        # gives the same bounds.
        np.random.seed(SEED)
        return _checked(self.model.predict(self._future(future)))

    def _future(self, future: pd.DataFrame) -> pd.DataFrame:
        """The periods to forecast as Prophet takes them: future regressor values not supplied
        are the last observed value carried forward."""
        frame = future.copy()
        frame["ds"] = pd.to_datetime(frame["ds"])
        for r in self.regressors:
            value = frame[r] if r in frame else pd.Series(np.nan, index=frame.index)
            frame[r] = value.fillna(self.last_regressors[r])
        return frame[["ds", *self.regressors]].reset_index(drop=True)

    @staticmethod
    def predict_many(models: list[ProphetForecaster], futures: list[pd.DataFrame],
                     keys: list[str]) -> list[pd.DataFrame | ModelFailure]:
        """Forecast many fitted models at once with prophet-batch (Prophet's features built once
        per model): the same ``yhat`` as :meth:`predict`; each model's interval draws come from
        its own generator, seeded by :data:`SEED` and its ``key``, so a rerun gives the same
        bounds whatever else is forecast beside it."""
        from prophet_batch import predict_many

        out = predict_many({k: m.model for k, m in zip(keys, models)},
                           futures={k: m._future(f) for k, m, f in zip(keys, models, futures)}, seed=SEED, n_jobs=1)
        result: list[pd.DataFrame | ModelFailure] = []
        for k in keys:
            try:
                result.append(_checked(out[k]))
            except ModelFailure as exc:
                result.append(exc)
        return result

    def to_json(self) -> str:
        from prophet.serialize import model_to_json

        return json.dumps(
            {
                "settings": self.settings,
                "holidays_country": self.holidays_country,
                "regressors": list(self.regressors),
                "last_regressors": self.last_regressors,
                "model": model_to_json(self.model),
            }
        )

    @classmethod
    def from_json(cls, payload: str) -> ProphetForecaster:
        from prophet.serialize import model_from_json

        d = json.loads(payload)
        out = cls(d["settings"], d["holidays_country"], tuple(d["regressors"]))
        out.last_regressors = d.get("last_regressors", {})
        out.model = model_from_json(d["model"])
        return out


def log_posterior(model: ProphetForecaster, history: pd.DataFrame) -> float:
    """Prophet's log posterior at a fitted model's MAP parameters on its history, with the
    constants Stan's ``lp__`` drops (linear or flat growth): what a fitter maximises, so two
    fitters of the same model and history can be compared (the higher, the better the fit)."""
    inputs = model._prophet().preprocess(model._train(history))
    p = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in model.model.params.items()}
    k, m, sigma = p["k"][0], p["m"][0], p["sigma_obs"][0]
    delta, beta = p["delta"], p["beta"]
    y, t = np.asarray(inputs.y, dtype=float), np.asarray(inputs.t, dtype=float)
    t_change = np.atleast_1d(np.asarray(inputs.t_change, dtype=float))
    X = np.asarray(inputs.X, dtype=float)
    if model.model.growth == "flat":
        trend = np.full(len(t), m)
    else:
        A = (t[:, None] >= t_change[None, :]).astype(float) if len(t_change) else np.zeros((len(t), 0))
        delta = delta[: A.shape[1]]
        trend = (k + A @ delta) * t + (m + A @ (-t_change * delta))
    mu = trend * (1 + X @ (np.asarray(inputs.s_m) * beta)) + X @ (np.asarray(inputs.s_a) * beta)
    sigmas = np.asarray(inputs.sigmas, dtype=float)
    return float(-0.5 * (k / 5) ** 2 - 0.5 * (m / 5) ** 2 - np.abs(delta).sum() / float(inputs.tau)
                 - 0.5 * (sigma / 0.5) ** 2 - 0.5 * ((beta / sigmas) ** 2).sum()
                 - len(y) * np.log(sigma) - 0.5 * ((y - mu) ** 2).sum() / sigma ** 2)
