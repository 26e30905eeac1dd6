"""Evaluate job: rolling-origin backtests of every candidate, model choice and the promotion gate.

For run date D, each eligible segment of ``silver.demand`` (history up to D's last complete
period) is backtested in two stages. The fit stage runs on the executors
(``groupBy(segment_id).applyInPandas`` over :func:`jobs.evaluation.fitting.window_forecasts`): K
windows of H periods, S apart, every fitted candidate fitted only on the periods before each
cutoff; the model in production (the latest trained before D) too when no configured candidate
stands for it. The judge stage runs on the driver over the collected window forecasts
(:func:`jobs.evaluation.judge.judge`, no fit): the combinations, the pool and the ensemble are
derived, every candidate is scored, and each segment's model is chosen and gated
(:func:`jobs.evaluation.selection.selection_rows`). With the race on, a sample of each demand
class is fitted and judged first (:mod:`jobs.evaluation.race`), and the rest is fitted without
what the race dropped. Errors go to ``gold.backtest_metrics``, window forecasts to
``gold.backtest_forecasts``; the champion, the gate's decision with its reason and the value
added over seasonal naive go to ``gold.model_selection``, which ``train`` then fits. Segments
too sparse or short for a model get seasonal naive, with the reason. Rerunning D replaces D's
rows. The run log's ``detail.stages`` says how long each stage took.

This module is the Spark plumbing only; the two stages are in :mod:`jobs.evaluation`.

    lakecast evaluate --run-date 2011-12-09 [--force]
    spark-submit jobs/evaluate.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import sys
import time
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import Window
from pyspark.sql.types import BooleanType, DateType, DoubleType, IntegerType, StringType, StructField, StructType

from jobs.common.config import Config
from jobs.common.contracts import contract_for
from jobs.common.globals import global_columns, global_group, global_schema
from jobs.common.progress import plan
from jobs.common.lake import current_models, ensure_table, history_as_of, replace_run_date
from jobs.core.calendar import periods_back
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.common.scope import add_scope_arg, in_scope
from jobs.core.names import COMBINATIONS, GLOBAL_FAMILIES, INTERMITTENT, METRICS, PRODUCTION, PROPHET, PROPHET_FITTERS, SMOOTH
from jobs.core.specs import family_of
from jobs.evaluation.candidates import WINDOW_COLUMNS, Candidates, FitSettings, JudgeSettings, fitted, gap_of
from jobs.evaluation.ensemble import describe
from jobs.evaluation.fitting import GIVEN_COLUMNS, candidate_specs, window_forecasts
from jobs.evaluation.global_forecasts import GLOBAL_COLUMNS, group_forecasts, window_origins
from jobs.evaluation.judge import Judged, judge
from jobs.evaluation.race import ClassRace, RaceSettings, candidates_key, kept_rows, race, raced, sample_shares
from jobs.evaluation.scorecard import held_out_strategies, print_scorecard, summarise
from jobs.evaluation.selection import Rule, selection_rows

log = logging.getLogger(__name__)

# Backtest columns the scorecard reads.
SCORED_COLUMNS = ["segment_id", "model", "window", "status", *METRICS, "n_test", "actual_total", "seconds"]
# The fit stage's rows as Spark carries them.
TYPES = {"kind": StringType(), "segment_id": StringType(), "model": StringType(), "status": StringType(),
         "reason": StringType(), "spec_hash": StringType(), "history_hash": StringType(), "reused": BooleanType(),
         "window": IntegerType(), "n_train": IntegerType(), "n_test": IntegerType(), "cutoff": DateType(),
         "origin": DateType(), "ds": DateType()}
WINDOW_SCHEMA = StructType([StructField(name, TYPES.get(name, DoubleType())) for name in WINDOW_COLUMNS])
# What the fit stage is given besides the calendars (jobs.evaluation.fitting.GIVEN_COLUMNS).
GIVEN_SCHEMA = StructType([StructField(name, TYPES.get(name, DoubleType())) for name in GIVEN_COLUMNS])


def candidates_of(cfg: Config) -> Candidates:
    """The configuration's candidates, every fitted one with its spec."""
    dataset, e = cfg.dataset, cfg.evaluation
    smooth = fitted(e.candidates)
    return Candidates(
        specs=candidate_specs(
            [*smooth, *e.intermittent_candidates], frequency=dataset.frequency, horizon=dataset.horizon,
            interval_width=cfg.model.interval_width, prophet=cfg.model.prophet,
            holidays_country=dataset.holidays_country, regressors=tuple(dataset.regressors),
            global_lgbm=cfg.model.global_lgbm.model_dump(exclude={"group_by", "buckets", "serve_new"}),
        ),
        smooth=tuple(smooth),
        intermittent=tuple(e.intermittent_candidates),
        combinations=tuple(n for n in e.candidates if n in COMBINATIONS),
        margin=e.margin,
    )


def fit_settings(cfg: Config, candidates: Candidates) -> FitSettings:
    dataset, e = cfg.dataset, cfg.evaluation
    batched = (PROPHET,) if cfg.model.prophet.get("fitter", PROPHET_FITTERS[0]) == "batch" else ()
    return FitSettings(regressors=tuple(dataset.regressors), frequency=dataset.frequency, horizon=dataset.horizon,
                       windows=e.windows, step=e.step, candidates=candidates, batched=batched)


def judge_settings(cfg: Config, run_date: dt.date, run_id: str, force: bool = False) -> JudgeSettings:
    dataset, e = cfg.dataset, cfg.evaluation
    return JudgeSettings(keys=tuple(dataset.segment_keys), metric=e.metric, margin=e.margin,
                         tolerance=e.promotion_tolerance, rule=e.rule, cost_under=e.cost_under, cost_over=e.cost_over,
                         interval_width=cfg.model.interval_width, gap=gap_of(dataset.horizon, e.step),
                         run_date=run_date, run_id=run_id, force=force)


def global_backtests(inputs: DataFrame, settings: FitSettings, cfg: Config) -> DataFrame | None:
    """The global candidates' forecasts from every backtest window's cutoff of every eligible
    segment, persisted: one model per training group and window, each in one Spark task (the
    group's history is shipped once per window, so the windows' fits run side by side;
    :mod:`jobs.evaluation.global_forecasts`). None when no global family is a candidate."""
    specs = settings.candidates.specs
    models = {n: spec for n, spec in specs.items() if family_of(spec) in GLOBAL_FAMILIES}
    if not models:
        return None
    columns = global_columns(cfg)

    def group(pdf: pd.DataFrame) -> pd.DataFrame:
        origins = window_origins(pdf, frequency=settings.frequency, horizon=settings.horizon, windows=settings.windows,
                                 step=settings.step,
                                 window=int(pdf["_window"].iloc[0]))
        return group_forecasts(pdf[columns], origins, models, settings.horizon)

    spark = inputs.sparkSession
    windows = spark.range(1, settings.windows + 1).select(F.col("id").cast("int").alias("_window"))
    eligible = inputs.filter(F.col("eligible")).withColumn("_group", global_group(cfg))
    groups = eligible.select("_group").distinct().count()
    print(f"evaluate: fitting {', '.join(models)} once per backtest window and training group "
          f"({groups} group(s) x {settings.windows} windows)")
    # one (group, window) per task: range partitioning keeps two fits out of one task
    return (eligible.crossJoin(windows).repartitionByRange(max(groups * settings.windows, 1), "_group", "_window")
            .groupBy("_group", "_window").applyInPandas(group, schema=global_schema(GLOBAL_COLUMNS))
            .persist(StorageLevel.MEMORY_AND_DISK))


def fit(inputs: DataFrame, settings: FitSettings, tasks: int, given: DataFrame | None = None,
        done: Any = None) -> pd.DataFrame:
    """The fit stage over ``inputs`` (the segments' calendars with their demand class and
    production spec; ``given``: the global candidates' forecasts of them and the window forecasts
    of earlier runs to reuse, :data:`GIVEN_COLUMNS`), on the executors: every segment's window
    forecasts (:func:`~jobs.evaluation.fitting.window_forecasts`), collected. The segments are
    hashed into ``tasks`` groups, one task each, so that a family that fits many models at once
    gets a task's windows in one call. ``done``: an accumulator each task adds the eligible
    segments it fitted to (the job's progress, :func:`~jobs.common.progress.plan`)."""

    def counted(pdf: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        if done is not None:
            done.add(int(pdf.loc[pdf["eligible"].astype(bool), "segment_id"].nunique()))
        return rows

    def fit_group(pdf: pd.DataFrame) -> pd.DataFrame:
        return counted(pdf, window_forecasts(pdf, settings))

    def fit_with_given(pdf: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        if pdf.empty:  # segments of the given rows that are not among these inputs
            return pd.DataFrame(columns=WINDOW_COLUMNS)
        return counted(pdf, window_forecasts(pdf, settings, given=rows))

    def bucket(frame: DataFrame) -> DataFrame:
        return frame.withColumn("_task", F.pmod(F.xxhash64("segment_id"), F.lit(tasks)))

    if given is None:
        rows = bucket(inputs).repartition(tasks, "_task").groupBy("_task").applyInPandas(
            fit_group, schema=WINDOW_SCHEMA)
    else:
        rows = bucket(inputs).groupBy("_task").cogroup(bucket(given).groupBy("_task")).applyInPandas(
            fit_with_given, schema=WINDOW_SCHEMA)
    return rows.toPandas()


def given_rows(global_rows: DataFrame | None, cached: DataFrame | None) -> DataFrame | None:
    """The global candidates' forecasts and the reusable window forecasts, as one frame of
    :data:`GIVEN_COLUMNS` (None when there are neither)."""
    parts = []
    if global_rows is not None:
        parts.append(global_rows.select(F.lit("global").alias("kind"), "*"))
    if cached is not None:
        parts.append(cached.select(F.lit("cached").alias("kind"), "*"))
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part, allowMissingColumns=True)
    return out.select(*[F.col(c).cast(GIVEN_SCHEMA[c].dataType) if c in out.columns
                        else F.lit(None).cast(GIVEN_SCHEMA[c].dataType).alias(c) for c in GIVEN_COLUMNS])


def reusable_windows(spark: SparkSession, cfg: Config, run_date: dt.date, metrics_ref, forecasts_ref) -> DataFrame:
    """The window forecasts of earlier runs that a window of this run may reuse: each fitted
    candidate's latest ok forecast of each (segment, spec, cutoff) recent enough to be one of this
    run's windows, with the hash of the data it was fitted on (the fit stage reuses it only where
    that hash is unchanged)."""
    e, dataset = cfg.evaluation, cfg.dataset
    origin = dataset.origin(run_date)
    oldest = periods_back(origin, (e.windows + 1) * e.step + dataset.horizon, dataset.frequency)
    recent = (F.col("run_date") < F.lit(run_date)) & (F.col("run_date") >= F.lit(oldest))
    latest = Window.partitionBy("segment_id", "spec_hash", "cutoff").orderBy(F.col("run_date").desc())
    metrics = (spark.table(metrics_ref.name).filter(recent & (F.col("status") == "ok") & F.col("history_hash").isNotNull()
                                                     & (F.col("cutoff") >= F.lit(oldest)))
               .withColumn("_latest", F.row_number().over(latest)).filter("_latest = 1")
               .select("run_date", "segment_id", "model", "window", "cutoff", "spec_hash", "history_hash", "seconds",
                       "reason"))
    forecasts = spark.table(forecasts_ref.name).filter(recent).select(
        "run_date", "segment_id", "model", "window", "ds", "yhat", "yhat_lower", "yhat_upper")
    return metrics.join(forecasts, ["run_date", "segment_id", "model", "window"]).drop("run_date", "window")


class Stages:
    """Wall seconds of each stage of the job, in order (printed and kept in the run log)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, stage: str) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now
        return self.seconds[stage]


def race_candidates(inputs: DataFrame, segments: pd.DataFrame, candidates: Candidates, fitting: FitSettings,
                    judging: JudgeSettings, race_settings: RaceSettings, partitions: int, stages: Stages,
                    given: DataFrame | None = None, done: Any = None) -> tuple[list[ClassRace], pd.DataFrame | None]:
    """Race the candidates on a sample of each demand class (:mod:`jobs.evaluation.race`): the
    races, and the sample's window forecasts without what they dropped (None: nothing sampled)."""
    eligible = segments[segments["eligible"]]
    shares, unraced = sample_shares(eligible["demand_class"].value_counts().to_dict(), race_settings)
    for r in unraced:
        print(f"evaluate: race {r.describe()}")
    if not shares:
        return unraced, None
    threshold = F.lit(0)
    for demand_class, share in shares.items():
        threshold = F.when(F.col("demand_class") == demand_class, F.lit(math.ceil(share * 10_000))).otherwise(threshold)
    sampled = inputs.filter(F.col("eligible") & (F.pmod(F.xxhash64("segment_id"), F.lit(10_000)) < threshold))
    print(f"evaluate: racing the candidates on about {race_settings.sample_segments:,} segments of "
          f"{', '.join(shares)} first")
    rows = fit(sampled, fitting, partitions, given, done)
    stages.done("sample_fits")
    sample = eligible[eligible["segment_id"].isin(set(rows["segment_id"]))]
    races = race(rows, sample, candidates, judging, race_settings)
    for r in races:
        print(f"evaluate: race {r.describe()}")
    rows = kept_rows(rows, sample, candidates, raced(candidates, races))
    stages.done("race")
    return [*unraced, *races], rows


def last_race(spark: SparkSession, cfg: Config, run_date: dt.date, key: str,
              renew_days: int) -> tuple[dt.date, dict, str] | None:
    """(the date it was raced, each class's race, which run) of the latest evaluation before
    ``run_date`` with these candidates and settings (``key``) whose race was run within
    ``renew_days`` days; None when there is none (race again)."""
    if renew_days <= 0:
        return None
    runs = ensure_table(spark, cfg, "pipeline_runs")
    rows = (spark.table(runs.name)
            .filter((F.col("job") == "evaluate") & (F.col("status") == "success") & (F.col("run_date") < F.lit(run_date))
                    & (F.col("run_date") >= F.lit(run_date - dt.timedelta(days=renew_days))))
            .select("run_id", "run_date", "finished_at", "detail").orderBy(F.desc("run_date"), F.desc("finished_at"))
            .collect())
    for row in rows:
        detail = json.loads(row.detail or "{}")
        raced_on = detail.get("race_date")
        if detail.get("candidates_key") != key or raced_on is None:
            continue
        if not any(r.get("raced") for r in (detail.get("race") or {}).values()):
            return None  # nothing was raced (classes too small): racing again costs no fit
        raced_on = dt.date.fromisoformat(str(raced_on))
        if (run_date - raced_on).days <= renew_days:
            return raced_on, detail["race"], f"the race of {raced_on} (run {row.run_id})"
        return None
    return None


def segments_with_production(history: DataFrame, models: DataFrame, run_date: dt.date, keys: list[str]) -> DataFrame:
    """One row per segment: keys, eligibility, demand class (intermittent when its lifecycle,
    from features, says so) and the spec of the model in production."""
    segments = history.select(
        *keys, "segment_id", "eligible", "ineligible_reason",
        F.when(F.col("lifecycle") == INTERMITTENT, INTERMITTENT).otherwise(SMOOTH).alias("demand_class"),
    ).distinct()
    production = current_models(models, run_date - dt.timedelta(days=1)).select(
        "segment_id", F.col("model_spec").alias("production_spec")
    )
    return segments.join(production, "segment_id", "left")


def evaluate(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str, force: bool = False,
             scope: str = "all", reuse: bool = True) -> JobMetrics:
    """Backtest, choose and gate every segment of ``silver.demand`` for ``run_date`` (or only the
    drifting ones: ``scope``); ``reuse``: take a window's forecasts from an earlier run where its
    spec, cutoff and data are unchanged (:func:`reusable_windows`)."""
    stages = Stages()
    dataset = cfg.dataset
    keys = list(dataset.segment_keys)
    models_ref = ensure_table(spark, cfg, "models")
    metrics_ref = ensure_table(spark, cfg, "backtest_metrics")
    forecasts_ref = ensure_table(spark, cfg, "backtest_forecasts")
    selection_ref = ensure_table(spark, cfg, "model_selection")
    history = in_scope(spark, cfg, history_as_of(spark, cfg, run_date), run_date, scope)
    if scope != "all" and history.limit(1).count() == 0:
        print(f"evaluate: no segment in scope {scope} for {run_date}; nothing to backtest")
        return JobMetrics(rows_in=0, rows_out=0, detail={"scope": scope, "segments": 0})
    candidates = candidates_of(cfg)
    judging = judge_settings(cfg, run_date, run_id, force)
    segments_df = segments_with_production(history, spark.table(models_ref.name), run_date, keys).cache()
    segments = segments_df.toPandas()
    columns = [*keys, "segment_id", "ds", "y", "is_closed", "eligible", *dataset.regressors]
    partitions = 16 * spark.sparkContext.defaultParallelism
    inputs = history.select(*columns).join(
        segments_df.select("segment_id", "demand_class", "production_spec"), "segment_id")
    race_settings = RaceSettings(**cfg.evaluation.race.model_dump())
    done = plan(spark, int(segments["eligible"].sum()), "segments")
    stages.done("start")
    global_rows = global_backtests(inputs, fit_settings(cfg, candidates), cfg)
    cached = reusable_windows(spark, cfg, run_date, metrics_ref, forecasts_ref) if reuse else None
    given = given_rows(global_rows, cached)
    if given is not None:
        given = given.persist(StorageLevel.MEMORY_AND_DISK)  # read by the race's fits and the rest's
    key = candidates_key(candidates, judging, race_settings)
    races, sample_rows, race_date = [], None, None
    if race_settings.enabled and scope == "all":  # a drifting scope is too few segments to race
        earlier = last_race(spark, cfg, run_date, key, race_settings.renew_days) if reuse else None
        if earlier is not None:
            race_date, records, source = earlier
            races = [ClassRace.carried(r, source) for r in records.values()]
            for r in races:
                print(f"evaluate: race {r.describe()} ({r.reason})")
        else:
            races, sample_rows = race_candidates(inputs, segments, candidates, fit_settings(cfg, candidates), judging,
                                                 race_settings, partitions, stages, given, done)
            race_date = run_date
        candidates = raced(candidates, [r for r in races if r.raced])
    rest = inputs
    if sample_rows is not None:
        sampled = spark.createDataFrame(pd.DataFrame({"segment_id": sorted(set(sample_rows["segment_id"]))}),
                                        "segment_id string")
        rest = inputs.join(sampled, "segment_id", "left_anti")
    rows = fit(rest, fit_settings(cfg, candidates), partitions, given, done)
    if sample_rows is not None:
        rows = pd.concat([sample_rows, rows], ignore_index=True)
    for frame in (global_rows, given):
        if frame is not None:
            frame.unpersist()
    windows = rows[rows["status"] != "skipped"].drop_duplicates(["segment_id", "model", "window"])
    fits = {"fitted": int((~windows["reused"].astype(bool)).sum()), "reused": int(windows["reused"].astype(bool).sum())}
    stages.done("fits")
    print(f"evaluate: {fits['fitted']:,} window fits, {fits['reused']:,} window forecasts reused from earlier runs"
          + ("" if reuse else " (--no-reuse)"))
    eligible = segments[segments["eligible"]]
    judged = judge(rows, eligible, candidates, judging)
    for demand_class, weights in judged.ensemble.items():
        log.info("ensemble of the %s segments: %s", demand_class,
                 describe(dict(zip(candidates.ensemble_members(demand_class), weights))))
    scored = judged.scored
    classes = segments[["segment_id", "demand_class"]]
    per_window = scored[(scored["status"] == "ok") & (scored["model"] != PRODUCTION)].merge(classes)
    rule = Rule.of(judging)
    best = rule.best(per_window)
    log.info("the rule's strategy by demand class: %s", best)
    selection = selection_rows(scored, segments, candidates, judging, best, judged.ensemble, judged.pools)
    stages.done("judge")
    write_tables(spark, cfg, judged, segments, selection, run_date, run_id,
                 (metrics_ref, forecasts_ref, selection_ref))
    segments_df.unpersist()
    stages.done("write")
    chosen = selection[["segment_id", "champion", "promoted_model", "decision"]]
    summary = summarise(scored[SCORED_COLUMNS], chosen, judging.rank)
    held = held_out_strategies(per_window, metric=judging.metric, rank=judging.rank, margin=judging.margin,
                               gap=judging.gap, rule=judging.rule)
    summary["overall"]["held_out"] = held
    print_scorecard(summary, run_date, judging.metric)
    stages.done("scorecard")
    print("evaluate: stages " + ", ".join(f"{k} {v:,.1f} s" for k, v in stages.seconds.items()))
    decisions = summary["decisions"]
    return JobMetrics(
        rows_in=history.count(),
        rows_out=len(scored),
        segments_ok=sum(n for d, n in decisions.items() if d != "fallback"),
        segments_fallback=decisions.get("fallback", 0),
        detail=json.loads(summary["families"].set_index("model").to_json(orient="index"))
        | {"scope": scope, "segments": len(classes), "decisions": decisions, "portfolio": best,
           "overall": {**summary["overall"], "held_out": json.loads(held.to_json(orient="index"))},
           "race": {r.demand_class: r.record() for r in races}, "stages": stages.seconds, "fits": fits,
           "candidates_key": key, "race_date": race_date},
    )


def write_tables(spark: SparkSession, cfg: Config, judged: Judged, segments: pd.DataFrame, selection: pd.DataFrame,
                 run_date: dt.date, run_id: str, refs: tuple) -> None:
    """``gold.backtest_metrics``, ``gold.backtest_forecasts`` and ``gold.model_selection``: each
    replaces the run date's rows in one commit."""
    keys = segments[[*cfg.dataset.segment_keys, "segment_id"]]
    stamp = {"run_date": run_date, "run_id": run_id}
    tables = {
        "backtest_metrics": judged.scored.merge(keys, on="segment_id"),
        "backtest_forecasts": judged.windows.forecasts().merge(keys, on="segment_id"),
        "model_selection": selection,
    }
    for (logical, frame), ref in zip(tables.items(), refs):
        schema = contract_for(cfg, logical).schema
        frame = frame.assign(**stamp)[schema.fieldNames()]
        for f in schema.fields:
            if isinstance(f.dataType, IntegerType):
                frame[f.name] = frame[f.name].astype("int32")
        replace_run_date(spark, ref, spark.createDataFrame(frame, schema), run_date)


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    metrics = evaluate(spark, cfg, args.run_date, run_id, force=args.force, scope=args.scope, reuse=not args.no_reuse)
    metrics.detail["training_reason"] = args.reason
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("evaluate", "silver.demand -> gold.backtest_metrics, gold.model_selection")
    parser.add_argument("--force", action="store_true",
                        help="promote each champion even where it is worse than production (recorded)")
    parser.add_argument("--no-reuse", action="store_true",
                        help="fit every window again instead of reusing an earlier run's where nothing changed")
    add_scope_arg(parser)
    return run_job("evaluate", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
