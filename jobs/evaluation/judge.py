"""The judge stage: from the fitted candidates' window forecasts to every candidate's window
forecasts and scores, with no fit (plain pandas and numpy, no Spark; no model family imported).

Its input is what the fit stage (:mod:`jobs.evaluation.fitting`) returns for a set of segments:
:data:`~jobs.evaluation.candidates.WINDOW_COLUMNS`. From it the judge

- derives the derived candidates' window forecasts, each from the fitted candidates' forecasts of
  the same window (:class:`Fixed`: the mean or median of fixed members, the production model when
  it is such a combination) or also from the scores of the windows that ended by the window's
  cutoff (:class:`PoolChoice`: the pool; the ensemble, whose weights
  :mod:`jobs.evaluation.ensemble` learns across a demand class);
- scores every candidate's window forecasts with one scorer (:func:`score`);

and the choice (:mod:`jobs.evaluation.selection`), the held-out scorecard
(:mod:`jobs.evaluation.scorecard`) and the race (:mod:`jobs.evaluation.race`) read the scores.

A derived candidate combines the members that forecast the window (a member that failed is left
out), fails only when every member failed, and is skipped where the window was. Its ``seconds`` are
its fitted members' (no fit of its own). Many windows are combined in one call per set of members
present (:func:`~jobs.core.combine.combine_arrays`), with the same numbers as one window at
a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jobs.core.combine import VALUES, combine_arrays, pool_members
from jobs.core.names import COMBINATION_METHODS, ENSEMBLE, METRICS, POOL, PRODUCTION
from jobs.evaluation.candidates import WINDOW_FACTS, Candidates, JudgeSettings, fitted
from jobs.evaluation.ensemble import learn_ensembles
from jobs.evaluation.metrics import window_metrics

BLOCK = ["segment_id", "window"]
STATUS_COLUMNS = ["segment_id", "model", *WINDOW_FACTS, "status", "reason", "seconds", "spec_hash", "history_hash",
                  "reused"]
VALUE_COLUMNS = ["segment_id", "model", "window", "ds", "actual", *VALUES]


@dataclass
class Windows:
    """Window forecasts in two parts: one ``status`` row per segment, candidate and window
    (:data:`STATUS_COLUMNS`, with the metrics once scored) and the ``values`` of the ok ones, a row
    per open test period (:data:`VALUE_COLUMNS`)."""

    status: pd.DataFrame
    values: pd.DataFrame

    @classmethod
    def of(cls, rows: pd.DataFrame) -> Windows:
        """Split the fit stage's long table."""
        status = rows.drop_duplicates(["segment_id", "model", "window"])[STATUS_COLUMNS].reset_index(drop=True)
        values = rows.loc[rows["status"] == "ok", VALUE_COLUMNS].reset_index(drop=True)
        return cls(status, values)

    @classmethod
    def concat(cls, parts: list[Windows]) -> Windows:
        parts = [p for p in parts if len(p.status)]
        if not parts:
            return cls(pd.DataFrame(columns=STATUS_COLUMNS), pd.DataFrame(columns=VALUE_COLUMNS))
        return cls(pd.concat([p.status for p in parts], ignore_index=True),
                   pd.concat([p.values for p in parts], ignore_index=True))

    def only(self, models: list[str] | set[str]) -> Windows:
        return Windows(self.status[self.status["model"].isin(models)], self.values[self.values["model"].isin(models)])

    def forecasts(self) -> pd.DataFrame:
        """The values with their window's cutoff and MASE scale: ``gold.backtest_forecasts``' columns."""
        facts = self.status[["segment_id", "model", "window", "cutoff", "scale"]]
        return self.values.merge(facts, on=["segment_id", "model", "window"], how="left")


def score(windows: Windows, settings: JudgeSettings) -> pd.DataFrame:
    """The status rows with every metric of :data:`METRICS` (NaN where not ok): each ok window's
    open periods against its forecast, with its window's MASE scale."""
    status = windows.status.drop(columns=[m for m in METRICS if m in windows.status])
    keys = ["segment_id", "model", "window"]
    v = windows.values.sort_values([*keys, "ds"], kind="stable")
    if v.empty:
        return status.assign(**{m: np.nan for m in METRICS})
    codes = v.groupby(keys, sort=True).ngroup().to_numpy()
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    blocks = v.iloc[starts][keys].reset_index(drop=True)
    scale = blocks.merge(status[[*keys, "scale"]], on=keys, how="left")["scale"].to_numpy(dtype=float)
    arrays = {c: v[c].to_numpy(dtype=float) for c in ("actual", *VALUES)}
    out = {m: np.full(len(blocks), np.nan) for m in METRICS}
    for n in np.unique(sizes):
        chosen = np.flatnonzero(sizes == n)
        rows = starts[chosen][:, None] + np.arange(n)
        metrics = window_metrics(*(arrays[c][rows] for c in ("actual", *VALUES)), scale=scale[chosen],
                                 interval_width=settings.interval_width, cost_under=settings.cost_under,
                                 cost_over=settings.cost_over)
        for m in METRICS:
            out[m][chosen] = metrics[m]
    return status.merge(blocks.assign(**out), on=keys, how="left")


@dataclass
class Block:
    """The windows (blocks: one segment's window) of a set of segments, with what each candidate
    did there: ``facts`` a row per block (:data:`BLOCK` and the window facts, ``skipped`` with its
    reason), and per candidate the ``ok`` flag, ``seconds`` and the ``metric`` by block."""

    facts: pd.DataFrame
    ok: pd.DataFrame
    seconds: pd.DataFrame
    metric: pd.DataFrame

    @classmethod
    def of(cls, scored: pd.DataFrame, metric: str) -> Block:
        s = scored.sort_values([*BLOCK, "model"], kind="stable")
        facts = s.drop_duplicates(BLOCK)[[*BLOCK, *WINDOW_FACTS[1:]]].reset_index(drop=True)
        skipped = s[s["status"] == "skipped"].drop_duplicates(BLOCK)[[*BLOCK, "reason"]]
        facts = facts.merge(skipped.rename(columns={"reason": "skipped"}), on=BLOCK, how="left")
        index = pd.MultiIndex.from_frame(facts[BLOCK])

        def wide(values: pd.Series) -> pd.DataFrame:
            return values.set_axis(pd.MultiIndex.from_frame(s[[*BLOCK, "model"]])).unstack("model").reindex(index)

        return cls(facts, wide(s["status"] == "ok").fillna(False).astype(bool), wide(s["seconds"]),
                   wide(s[metric].astype(float)))

    def column(self, frame: pd.DataFrame, names: list[str], fill: float | bool) -> np.ndarray:
        return frame.reindex(columns=names).fillna(fill).to_numpy()


class Cube:
    """A set of segments' window forecasts aligned by period: ``data`` (rows x candidates x
    values), a row per segment, window and open test period (``keys``, with the actual), NaN where
    a candidate did not forecast the window."""

    def __init__(self, values: pd.DataFrame, models: list[str]) -> None:
        v = values[values["model"].isin(models)]
        codes = v.groupby(["segment_id", "window", "ds"], sort=True).ngroup().to_numpy()
        _, first = np.unique(codes, return_index=True)
        self.keys = v.iloc[first][["segment_id", "window", "ds", "actual"]].reset_index(drop=True)
        self.models = list(models)
        self.data = np.full((len(self.keys), len(models), len(VALUES)), np.nan)
        self.data[codes, pd.Categorical(v["model"], categories=models).codes] = v[VALUES].to_numpy(dtype=float)
        self.block_of = pd.MultiIndex.from_frame(self.keys[BLOCK])

    def add(self, name: str, values: pd.DataFrame) -> None:
        """One more candidate's forecasts (a derived one, for the ensemble to draw on)."""
        column = np.full((len(self.keys), 1, len(VALUES)), np.nan)
        if len(values):
            where = pd.MultiIndex.from_frame(self.keys[["segment_id", "window", "ds"]]).get_indexer(
                pd.MultiIndex.from_frame(values[["segment_id", "window", "ds"]]))
            column[where, 0] = values[VALUES].to_numpy(dtype=float)
        self.data = np.concatenate([self.data, column], axis=1)
        self.models.append(name)

    def combine(self, name: str, blocks: pd.DataFrame, members: list[str], present: np.ndarray, method: str,
                weights: np.ndarray | None = None) -> pd.DataFrame:
        """``name``'s forecast rows: in each block (``blocks``: :data:`BLOCK` rows) the ``method``
        of the ``members`` ``present`` there (blocks x members; ``weights``: one row per block for
        ``weighted``), combined in one call per set of members present (and weights)."""
        if not len(blocks) or not present.any():
            return pd.DataFrame(columns=VALUE_COLUMNS)
        columns = np.array([self.models.index(m) for m in members])
        label = present.astype(float) if weights is None else np.hstack([present, np.where(present, weights, 0.0)])
        groups, which = np.unique(label, axis=0, return_inverse=True)
        row_block = pd.MultiIndex.from_frame(blocks[BLOCK]).get_indexer(self.block_of)
        row_group = np.where(row_block >= 0, which.reshape(-1)[row_block], -1)
        parts = []
        for g, group in enumerate(groups):
            chosen = group[: len(members)].astype(bool)
            rows = np.flatnonzero(row_group == g)
            if not chosen.any() or not len(rows):
                continue
            stacked = self.data[rows][:, columns[chosen]].transpose(1, 0, 2)
            reduced = combine_arrays(stacked, method, group[len(members):][chosen] if weights is not None else None)
            parts.append(self.keys.iloc[rows].assign(**dict(zip(VALUES, reduced.T))))
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=VALUE_COLUMNS)
        return out.assign(model=name)[VALUE_COLUMNS]


@dataclass(frozen=True)
class Fixed:
    """A derived candidate with fixed members in every window: combo_mean, combo_median, scum, or
    the production model when it is a combination of configured candidates."""

    name: str
    method: str
    members: tuple[str, ...]
    weights: tuple[float, ...] = ()

    def derive(self, block: Block, cube: Cube, rows: pd.Series | None = None) -> Windows:
        """Its windows in the blocks (``rows``: which of ``block``'s, default all)."""
        facts = block.facts if rows is None else block.facts[rows.to_numpy()]
        ok = block.column(block.ok, list(self.members), False)
        seconds = block.column(block.seconds, list(self.members), 0.0)
        if rows is not None:
            ok, seconds = ok[rows.to_numpy()], seconds[rows.to_numpy()]
        weights = None
        if self.method == "weighted":
            weights = np.broadcast_to(np.asarray(self.weights, dtype=float), ok.shape)
        status = _derived_status(self.name, facts, ok, seconds.sum(axis=1))
        live = facts["skipped"].isna().to_numpy() & ok.any(axis=1)
        values = cube.combine(self.name, facts[live], list(self.members), ok[live], self.method,
                              None if weights is None else weights[live])
        return Windows(status, values)


@dataclass(frozen=True)
class PoolChoice:
    """Forecast pooling: in each window, the mean of the candidates whose mean score on the windows
    that ended by its cutoff (``gap`` windows back, skipped ones aside) is within ``margin`` of the
    best; before any such window, or when the pooled ones failed in the window, the median of every
    candidate. A candidate that failed any of those windows is out."""

    universe: tuple[str, ...]
    margin: float
    metric: str
    gap: int

    def choose(self, windows: list[int], ok: np.ndarray, metric: np.ndarray) -> tuple[list[str], str]:
        """The pool chosen on ``windows`` (the judged windows, ok and metric: windows x universe),
        and in words why."""
        if not windows:
            return [], "no earlier window to judge on"
        scores = {}
        for j, name in enumerate(self.universe):
            if ok[:, j].all():
                values = pd.Series(metric[:, j])
                scores[name] = float(values.mean())
        members = pool_members(scores, self.margin)
        if not members:
            return [], f"no candidate scored windows {[int(w) for w in windows]}"
        span = f"window {windows[0]}" if len(windows) == 1 else f"windows {windows[0]}-{windows[-1]}"
        return members, f"pool {', '.join(members)}: within {self.margin:.0%} of the best {self.metric} on {span}"

    def by_window(self, block: Block) -> list[tuple[list[str], str]]:
        """(members, why) of each block's window (``block.facts`` order), chosen on the segment's
        windows that ended by its cutoff."""
        return [pick for picks in self._segments(block, every=False).values() for pick in picks]

    def on_every_window(self, block: Block) -> dict[str, tuple[list[str], str]]:
        """Segment -> the pool chosen on all its windows (what train fits), and why; every
        candidate when none scored them all."""
        out = {}
        for segment, ((members, why),) in self._segments(block, every=True).items():
            out[segment] = (members, why) if members else (list(self.universe), f"every candidate ({why})")
        return out

    def _segments(self, block: Block, every: bool) -> dict[str, list[tuple[list[str], str]]]:
        universe = list(self.universe)
        ok = block.column(block.ok, universe, False)
        metric = block.column(block.metric, universe, np.nan)
        judged = block.facts["skipped"].isna().to_numpy()
        segments = block.facts["segment_id"].to_numpy()
        window_of = block.facts["window"].to_numpy()
        bounds = np.flatnonzero(np.r_[True, segments[1:] != segments[:-1], True])
        out = {}
        for start, end in zip(bounds[:-1], bounds[1:]):
            own = np.arange(start, end)
            mine = own[judged[own]]
            limits = [np.inf] if every else [window_of[i] - self.gap for i in own]
            out[segments[start]] = [self.choose([int(w) for w in window_of[mine[window_of[mine] <= limit]]],
                                                ok[mine[window_of[mine] <= limit]], metric[mine[window_of[mine] <= limit]])
                                    for limit in limits]
        return out

    def derive(self, block: Block, cube: Cube) -> Windows:
        universe = list(self.universe)
        ok = block.column(block.ok, universe, False)
        seconds = block.column(block.seconds, universe, 0.0).sum(axis=1)
        members = np.zeros_like(ok)
        whys = []
        for i, (pick, why) in enumerate(self.by_window(block)):
            present = [n for n in pick if ok[i, universe.index(n)]]
            if present:
                members[i, [universe.index(n) for n in present]] = True
            elif ok[i].any():
                why = "median of every candidate: " + (
                    f"the pooled {', '.join(pick)} failed on this window" if pick else why)
            whys.append(why)
        facts = block.facts
        status = _derived_status(POOL, facts, ok, seconds, reasons=np.array(whys, dtype=object))
        live = facts["skipped"].isna().to_numpy()
        pooled = live & members.any(axis=1)
        median = live & ~members.any(axis=1) & ok.any(axis=1)
        values = pd.concat([cube.combine(POOL, facts[pooled], universe, members[pooled], "mean"),
                            cube.combine(POOL, facts[median], universe, ok[median], "median")], ignore_index=True)
        return Windows(status, values)


def _derived_status(name: str, facts: pd.DataFrame, ok: np.ndarray, seconds: np.ndarray,
                    reasons: np.ndarray | None = None) -> pd.DataFrame:
    """A derived candidate's status rows in the blocks: skipped where the window was, failed
    where no member forecast, else ok (``reasons``: of the ok ones)."""
    skipped = facts["skipped"].notna().to_numpy()
    any_ok = ok.any(axis=1) if ok.shape[1] else np.zeros(len(facts), dtype=bool)
    status = np.where(skipped, "skipped", np.where(any_ok, "ok", "failed"))
    reason = np.where(skipped, facts["skipped"].to_numpy(dtype=object),
                      np.where(any_ok, reasons if reasons is not None else None,
                               "combination_failed: every member failed"))
    return facts[[*BLOCK, *WINDOW_FACTS[1:]]].assign(
        model=name, status=status, reason=reason, seconds=np.where(skipped, np.nan, seconds),
        spec_hash=None, history_hash=None, reused=False)[STATUS_COLUMNS]


@dataclass
class Judged:
    """Every candidate's scored windows; what the ensemble learned: (class, window) -> the
    weights of the window's ensemble, class -> the weights learned on every window (what train
    fits), (class, window) -> in words; and each segment's pool chosen on every window."""

    windows: Windows
    scored: pd.DataFrame
    ensemble_by_window: dict[tuple[str, int], tuple[float, ...]] = field(default_factory=dict)
    ensemble: dict[str, tuple[float, ...]] = field(default_factory=dict)
    ensemble_why: dict[tuple[str, int], str] = field(default_factory=dict)
    pools: dict[str, tuple[list[str], str]] = field(default_factory=dict)  # segment -> on every window


def judge(rows: pd.DataFrame, segments: pd.DataFrame, candidates: Candidates, settings: JudgeSettings) -> Judged:
    """Every candidate's windows and scores for a set of segments.

    Args:
        rows: the fit stage's window forecasts of the segments (fitted candidates and production).
        segments: a row per segment: ``segment_id``, ``demand_class``, ``production_spec``.
        candidates: what is fitted and derived per demand class (the race's drops included).
    """
    fitted_windows = Windows.of(rows)
    scored = score(fitted_windows, settings)
    classes = segments.set_index("segment_id")["demand_class"]
    parts, scored_parts = [fitted_windows], [scored]
    cubes: dict[str, tuple[Cube, Block]] = {}
    pools: dict[str, tuple[list[str], str]] = {}
    for demand_class, own in scored.groupby(scored["segment_id"].map(classes)):
        ids = set(own["segment_id"])
        block = Block.of(own, settings.metric)
        names = candidates.fitted(demand_class)
        cube = Cube(fitted_windows.values[fitted_windows.values["segment_id"].isin(ids)], names)
        derived = [Fixed(name, COMBINATION_METHODS[name], tuple(members))
                   for name, members in candidates.fixed(demand_class).items()]
        made = []
        for d in derived:
            made.append(d.derive(block, cube))
            cube.add(d.name, made[-1].values)
        universe = candidates.pool(demand_class)
        if universe:
            pool = PoolChoice(tuple(universe), settings.margin, settings.metric, settings.gap)
            made.append(pool.derive(block, cube))
            cube.add(POOL, made[-1].values)
            pools.update(pool.on_every_window(block))
        made.extend(_production(block, cube, segments[segments["segment_id"].isin(ids)], candidates, demand_class))
        for m in made:
            parts.append(m)
            scored_parts.append(score(m, settings))
        cubes[demand_class] = (cube, block)
    windows = Windows.concat(parts)
    scored = pd.concat(scored_parts, ignore_index=True)
    judged = Judged(windows, scored, pools=pools)
    if ENSEMBLE in candidates.combinations:
        _ensemble(judged, cubes, classes, candidates, settings)
    return judged


def _production(block: Block, cube: Cube, segments: pd.DataFrame, candidates: Candidates,
                demand_class: str) -> list[Windows]:
    """The production model's windows where it is a combination of configured candidates."""
    out = []
    specs = segments.dropna(subset=["production_spec"])
    for spec, own in specs.groupby("production_spec"):
        production = candidates.production(spec, demand_class)
        if production is None or not production.derived:
            continue
        combo = Fixed(PRODUCTION, production.method, production.members, production.weights)
        out.append(combo.derive(block, cube, block.facts["segment_id"].isin(set(own["segment_id"]))))
    return out


def _ensemble(judged: Judged, cubes: Mapping[str, tuple[Cube, Block]], classes: pd.Series,
              candidates: Candidates, settings: JudgeSettings) -> None:
    """Learn each class's ensemble weights from its members' window forecasts and derive its
    windows: window k's from the weights learned on the windows that ended by k's cutoff."""
    members = {c: candidates.ensemble_members(c) for c in cubes}
    values = judged.windows.values
    learn = values[values["model"].isin(sorted(set(sum(members.values(), []))))]
    learn = learn.merge(judged.windows.status[["segment_id", "model", "window", "scale"]],
                        on=["segment_id", "model", "window"])
    learn = learn.assign(demand_class=learn["segment_id"].map(classes))
    present = {c: m for c, m in members.items() if c in set(learn["demand_class"])}
    by_window, final, why = learn_ensembles(learn, present, metric=settings.metric, gap=settings.gap,
                                            cost_under=settings.cost_under, cost_over=settings.cost_over)
    judged.ensemble_by_window, judged.ensemble, judged.ensemble_why = by_window, final, why
    parts, scored = [], []
    status = judged.windows.status
    for demand_class, (cube, block) in cubes.items():
        names = members[demand_class]
        own = status[status["segment_id"].isin(set(block.facts["segment_id"]))]
        ok_all = Block.of(own.assign(**{settings.metric: np.nan}), settings.metric)
        ok = ok_all.column(ok_all.ok, names, False)
        seconds = ok_all.column(ok_all.seconds, fitted(names), 0.0).sum(axis=1)
        facts = block.facts
        windows = facts["window"].to_numpy()
        weights = np.array([by_window.get((demand_class, int(w)), (0.0,) * len(names)) for w in windows]).reshape(
            len(facts), len(names))
        used = np.where(ok, weights, 0.0)
        none = ok.any(axis=1) & (used.sum(axis=1) <= 0)
        weights = np.where(none[:, None], 1.0, weights)
        reasons = np.array([why.get((demand_class, int(w))) for w in windows], dtype=object)
        reasons = np.where(none, [f"{r}; its members failed here: mean of the others" for r in reasons], reasons)
        derived = _derived_status(ENSEMBLE, facts, ok, seconds, reasons=reasons)
        live = facts["skipped"].isna().to_numpy() & ok.any(axis=1)
        made = Windows(derived, cube.combine(ENSEMBLE, facts[live], names, ok[live], "weighted", weights[live]))
        parts.append(made)
        scored.append(score(made, settings))
    judged.windows = Windows.concat([judged.windows, *parts])
    judged.scored = pd.concat([judged.scored, *scored], ignore_index=True)
