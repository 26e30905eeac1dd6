"""What a segment is evaluated with: the candidates, and the settings of the two stages.

A candidate is a name and a model spec (family and settings as canonical JSON). The *fitted*
candidates are fitted per segment (or per training group) and window by the fit stage
(:mod:`jobs.evaluation.fitting`); every segment gets the configured families, an intermittent one
also the families for intermittent demand. The *derived* candidates are made by the judge stage
(:mod:`jobs.evaluation.judge`) from the fitted ones' window forecasts, without fits: the fixed
combinations (combo_mean, combo_median, scum), the pool, the ensemble, and the production model
when it is a combination of configured candidates.

:class:`Candidates` is the one description of both, per demand class; the race
(:mod:`jobs.evaluation.race`) hands on a copy without the families it dropped for a class.
:class:`FitSettings` is what fitting needs, :class:`JudgeSettings` what judging needs. This module
knows the candidates by name and spec only: it builds no model.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from jobs.core.names import (
    COMBINATION_METHODS,
    COMBINATIONS,
    ENSEMBLE,
    ENSEMBLE_COMBINATIONS,
    FAMILIES,
    FIXED_COMBINATIONS,
    INTERMITTENT,
    POOL,
    PRODUCTION,
    SCUM,
    SCUM_MEMBERS,
)
from jobs.core.specs import model_spec, strategy

# What the fit stage hands the judge stage, a row per candidate, window and open test period (one
# row without ``ds`` for a failed or skipped window): the facts of the window (the same for every
# candidate), the candidate's outcome (with what identifies it for reuse on a later night, and
# whether it was reused from an earlier one), its forecast of the period.
WINDOW_FACTS = ["window", "cutoff", "n_train", "n_test", "actual_total", "scale"]
WINDOW_COLUMNS = ["segment_id", "model", *WINDOW_FACTS, "status", "reason", "seconds",
                  "spec_hash", "history_hash", "reused", "ds", "actual", "yhat", "yhat_lower", "yhat_upper"]


@dataclass(frozen=True)
class Production:
    """How the model in production is measured beside the candidates: as the configured candidate
    with the same strategy (``name``), as a combination of configured candidates derived from their
    window forecasts (``method``, ``members``, ``weights``), or fitted in its own right under
    :data:`PRODUCTION`."""

    name: str
    spec: str
    method: str | None = None
    members: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()

    @property
    def fitted(self) -> bool:
        return self.name == PRODUCTION and self.method is None

    @property
    def derived(self) -> bool:
        return self.method is not None


@dataclass(frozen=True)
class Candidates:
    """The fitted and the derived candidates of each demand class.

    ``specs``: every configured fitted candidate -> spec; ``smooth``: the fitted candidates of every
    segment; ``intermittent``: those of intermittent segments only; ``combinations``: the configured
    derived candidates; ``dropped``: demand class -> fitted candidates the race left out for it;
    ``margin``: the pool's (``evaluation.margin``).
    """

    specs: Mapping[str, str]
    smooth: tuple[str, ...]
    intermittent: tuple[str, ...]
    combinations: tuple[str, ...]
    dropped: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    margin: float = 0.0

    def fitted(self, demand_class: str) -> list[str]:
        """The fitted candidates of a demand class, in this order (what its combinations draw on)."""
        names = list(self.smooth) + (list(self.intermittent) if demand_class == INTERMITTENT else [])
        return [n for n in names if n not in self.dropped.get(demand_class, ())]

    def fixed(self, demand_class: str) -> dict[str, list[str]]:
        """The configured combinations with fixed members -> their members (SCUM: its families that
        are candidates; the others: every fitted candidate), in the configured order."""
        names = self.fitted(demand_class)
        out = {}
        for combo in self.combinations:
            if combo in FIXED_COMBINATIONS:
                members = [n for n in names if combo != SCUM or n in SCUM_MEMBERS]
                if members:
                    out[combo] = members
        return out

    def pool(self, demand_class: str) -> list[str] | None:
        """What the pool chooses from (the class's fitted candidates); None when not configured."""
        return self.fitted(demand_class) if POOL in self.combinations else None

    def ensemble_members(self, demand_class: str) -> list[str]:
        """What the ensemble of a demand class selects from: its fitted candidates, the configured
        combinations with fixed members, and the pool."""
        derived = [*self.fixed(demand_class), *([POOL] if POOL in self.combinations else [])]
        return self.fitted(demand_class) + [c for c in ENSEMBLE_COMBINATIONS if c in derived]

    def specs_for(self, demand_class: str, ensemble_weights: tuple[float, ...] = (),
                  pool_members: list[str] | None = None) -> dict[str, str]:
        """A segment's candidates (name -> spec): the fitted ones, then the fixed combinations, the
        pool (with ``pool_members``, chosen per segment; unresolved without) and the ensemble (with
        ``ensemble_weights`` when known; its pool member is this pool)."""
        names = self.fitted(demand_class)
        specs = {n: self.specs[n] for n in names}
        for combo, members in self.fixed(demand_class).items():
            specs[combo] = model_spec(combo, {"members": [specs[n] for n in members]})
        if POOL in self.combinations:
            specs[POOL] = model_spec(POOL, {"members": [specs[n] for n in pool_members or []],
                                            "candidates": [specs[n] for n in names], "margin": self.margin})
        if ENSEMBLE in self.combinations:
            specs[ENSEMBLE] = model_spec(ENSEMBLE, {"members": [specs[n] for n in self.ensemble_members(demand_class)],
                                                    "weights": list(ensemble_weights)})
        return specs

    def without(self, demand_class: str, families: tuple[str, ...] | list[str]) -> Candidates:
        """These candidates with ``families`` left out for a class (instead of what was before)."""
        return replace(self, dropped={**self.dropped, demand_class: tuple(families)})

    def production(self, spec: str | None, demand_class: str) -> Production | None:
        """How a segment's production model (``spec``; None: nothing in production) is measured."""
        if not spec:
            return None
        specs = self.specs_for(demand_class)
        same = next((name for name, s in specs.items() if strategy(s) == strategy(spec)), None)
        if same is not None:
            return Production(same, spec)
        d = json.loads(spec)
        if d["family"] in COMBINATIONS:
            by_spec = {s: n for n, s in specs.items() if n not in COMBINATIONS}
            members = [by_spec.get(m) for m in d["args"]["members"]]
            if members and None not in members:
                return Production(PRODUCTION, spec, COMBINATION_METHODS[d["family"]], tuple(members),
                                  tuple(d["args"].get("weights") or ()))
        return Production(PRODUCTION, spec)


@dataclass(frozen=True)
class FitSettings:
    """What the fit stage needs: the calendar of the windows, what to fit, and which families fit
    many models in one call (``batched``)."""

    regressors: tuple[str, ...]
    frequency: str
    horizon: int
    windows: int
    step: int
    candidates: Candidates
    batched: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeSettings:
    """What the judge stage needs: how windows are scored and how a model is chosen and gated."""

    keys: tuple[str, ...]
    metric: str
    margin: float
    tolerance: float
    rule: str
    cost_under: float
    cost_over: float
    interval_width: float
    gap: int  # windows back to the latest one whose test periods ended by a window's cutoff
    run_date: dt.date
    run_id: str
    force: bool = False

    @property
    def rank(self) -> dict[str, int]:
        """Candidate name -> simplicity (0 = simplest): ties go to the simpler family."""
        return {name: i for i, name in enumerate(FAMILIES)}


def gap_of(horizon: int, step: int) -> int:
    """Windows back to the latest one whose test periods ended by a window's cutoff (overlapping
    windows would show a choice some of the actuals it is judged on)."""
    return math.ceil(horizon / step)


def fitted(names: list[str] | tuple[str, ...]) -> list[str]:
    """The candidates that are fitted (not combinations, not the production stand-in)."""
    return [n for n in names if n not in COMBINATIONS and n != PRODUCTION]
