"""Evaluate job: rolling-origin backtests of every candidate, model choice and the promotion gate.

For run date D, each eligible segment of ``silver.demand`` (history up to D's last complete
period) is backtested inside ``groupBy(keys).applyInPandas``: K windows of H periods, S apart,
every candidate fitted only on the periods before each cutoff. The model in production (the
latest trained before D) is a candidate too when its settings differ from the configured ones.
Errors go to ``gold.backtest_metrics``; the champion, the gate's decision with its reason and the
value added over seasonal naive go to ``gold.model_selection``, which ``train`` then fits.
Segments too sparse or short for a model get seasonal naive, with the reason. Rerunning D
replaces D's rows.

This module is the Spark plumbing only; what happens to one segment, and the scorecard, are in
:mod:`jobs.evaluation`.

    lakecast evaluate --run-date 2011-12-09 [--force]
    spark-submit jobs/evaluate.py --run-date 2011-12-09
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import math
import sys

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark import StorageLevel
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.common.config import Config
from jobs.common.contracts import contract_for
from jobs.common.globals import global_columns, global_group, global_schema
from jobs.common.lake import current_models, ensure_table, history_as_of, replace_run_date
from jobs.common.runlog import JobMetrics
from jobs.common.runs import job_parser, run_job
from jobs.common.scope import add_scope_arg, in_scope
from jobs.core.names import COMBINATIONS, ENSEMBLE, GLOBAL_FAMILIES, INTERMITTENT, METRICS, PRODUCTION, SMOOTH
from jobs.evaluation.candidates import EvaluationSettings, candidate_specs, ensemble_members, fitted
from jobs.evaluation.ensemble import describe, learn_ensembles
from jobs.evaluation.global_forecasts import GLOBAL_COLUMNS, group_forecasts, window_origins
from jobs.evaluation.scorecard import held_out_strategies, print_scorecard, summarise
from jobs.evaluation.segment import FORECAST_ROW, METRICS_ROW, backtest_rows, ensemble_rows, selection_row
from jobs.evaluation.race import ClassRace, RaceSettings, race, replayed, sample_shares
from jobs.evaluation.selection import portfolios
from jobs.models import family_of

log = logging.getLogger(__name__)

# Backtest columns the driver collects for the portfolio and the scorecard (about a hundred
# thousand rows for a few thousand segments).
SCORED_COLUMNS = ["segment_id", "model", "window", "status", *METRICS, "n_test", "actual_total", "seconds"]


def evaluation_settings(cfg: Config, run_date: dt.date, run_id: str, force: bool = False) -> EvaluationSettings:
    """The configuration's evaluation settings, with every configured candidate's spec."""
    dataset, e = cfg.dataset, cfg.evaluation
    smooth = fitted(e.candidates)
    return EvaluationSettings(
        keys=tuple(dataset.segment_keys),
        regressors=tuple(dataset.regressors),
        frequency=dataset.frequency,
        horizon=dataset.horizon,
        windows=e.windows,
        step=e.step,
        interval_width=cfg.model.interval_width,
        cost_under=e.cost_under,
        cost_over=e.cost_over,
        metric=e.metric,
        tolerance=e.promotion_tolerance,
        rule=e.rule,
        margin=e.margin,
        specs=candidate_specs(
            [*smooth, *e.intermittent_candidates], frequency=dataset.frequency, horizon=dataset.horizon,
            interval_width=cfg.model.interval_width, prophet=cfg.model.prophet,
            holidays_country=dataset.holidays_country, regressors=tuple(dataset.regressors),
            global_lgbm=cfg.model.global_lgbm.model_dump(exclude={"group_by", "buckets", "serve_new"}),
        ),
        smooth=tuple(smooth),
        intermittent=tuple(e.intermittent_candidates),
        combinations=tuple(n for n in e.candidates if n in COMBINATIONS),
        run_date=run_date,
        run_id=run_id,
        force=force,
    )


def backtest_schema(metrics: StructType, forecasts: StructType) -> StructType:
    """What the per-segment backtest returns: ``kind``, then every column of the metrics and the
    forecasts tables (nullable: a row fills those of its kind)."""
    fields = {f.name: f for f in [*metrics.fields, *forecasts.fields]}
    return StructType([StructField("kind", StringType(), False)]
                      + [StructField(f.name, f.dataType, True, f.metadata) for f in fields.values()])


def ensemble_backtest(backtest: DataFrame, segments: DataFrame, settings: EvaluationSettings, schema: StructType,
                      partitions: int) -> tuple[DataFrame | None, dict[str, tuple[float, ...]]]:
    """The ensemble's backtest rows (both kinds) for every segment, and each demand class's final
    weights: learned on the driver from the members' backtest forecasts (ensemble selection
    across the class's segments), then applied per segment. (None, {}) when the ensemble is not
    a configured candidate."""
    if ENSEMBLE not in settings.combinations:
        return None, {}
    classes = segments.select("segment_id", "demand_class")
    members = {c: ensemble_members(settings, c) for c in (SMOOTH, INTERMITTENT)}
    learn = (
        backtest.filter((F.col("kind") == FORECAST_ROW) & F.col("model").isin(sorted(set(sum(members.values(), [])))))
        .select("segment_id", "window", "ds", "model", "actual", "yhat", "scale")
        .join(classes, "segment_id")
        .toPandas()
    )
    present = {c: m for c, m in members.items() if c in set(learn["demand_class"])}
    by_window, final, why = learn_ensembles(learn, present, metric=settings.metric, gap=settings.gap,
                                            cost_under=settings.cost_under, cost_over=settings.cost_over)
    for demand_class, weights in final.items():
        log.info("ensemble of the %s segments: %s", demand_class, describe(dict(zip(present[demand_class], weights))))

    def ensemble_group(rows: pd.DataFrame) -> pd.DataFrame:
        return ensemble_rows(rows, settings, by_window, why)

    ensemble = (
        backtest.join(classes, "segment_id")
        .repartition(partitions, *settings.keys)
        .groupBy(*settings.keys)
        .applyInPandas(ensemble_group, schema=schema)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    return ensemble, final


def global_backtests(inputs: DataFrame, settings: EvaluationSettings, cfg: Config) -> DataFrame | None:
    """The global candidates' forecasts from every backtest window's cutoff of every eligible
    segment, persisted: one model per training group and window, each in one Spark task (the
    group's history is shipped once per window, so the windows' fits run side by side;
    :mod:`jobs.evaluation.global_forecasts`). None when no global family is a candidate."""
    models = {n: settings.specs[n] for n in fitted(list(settings.specs)) if family_of(settings.specs[n]) in GLOBAL_FAMILIES}
    if not models:
        return None
    columns = global_columns(cfg)

    def group(pdf: pd.DataFrame) -> pd.DataFrame:
        origins = window_origins(pdf, horizon=settings.horizon, windows=settings.windows, step=settings.step,
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


def backtest_of(inputs: DataFrame, settings: EvaluationSettings, schema: StructType, partitions: int,
                global_rows: DataFrame | None = None) -> DataFrame:
    """Every segment's backtest rows (both kinds), persisted: ``inputs`` are the segments'
    calendars with their demand class and production spec; ``global_rows`` the global
    candidates' forecasts of them (:func:`global_backtests`)."""

    def backtest_group(pdf: pd.DataFrame) -> pd.DataFrame:
        return backtest_rows(pdf, settings)

    def backtest_with_global(pdf: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        if pdf.empty:  # a segment of the global rows that is not among these inputs
            return pd.DataFrame(columns=schema.fieldNames())
        return backtest_rows(pdf, settings, global_rows=rows)

    if global_rows is None:
        rows = inputs.repartition(partitions, *settings.keys).groupBy(*settings.keys).applyInPandas(
            backtest_group, schema=schema)
    else:
        rows = inputs.groupBy("segment_id").cogroup(global_rows.groupBy("segment_id")).applyInPandas(
            backtest_with_global, schema=schema)
    return rows.persist(StorageLevel.MEMORY_AND_DISK)  # one backtest, two tables and the ensemble


@dataclasses.dataclass
class Raced:
    """What racing the candidates leaves for the rest of the backtest."""

    settings: EvaluationSettings  # without the families each class dropped
    races: list[ClassRace]  # one per demand class, raced or not
    persisted: list[DataFrame] = dataclasses.field(default_factory=list)  # to unpersist at the end
    rows: DataFrame | None = None  # the sampled segments' final backtest rows (None: no class sampled)
    sampled: DataFrame | None = None  # their ids: none of them is backtested again


def race_candidates(inputs: DataFrame, segments: DataFrame, settings: EvaluationSettings, schema: StructType,
                    partitions: int, race_settings: RaceSettings, global_rows: DataFrame | None = None) -> Raced:
    """Race the candidates on a sample of each demand class (:mod:`jobs.evaluation.race`)."""
    sizes = segments.filter(F.col("eligible")).groupBy("demand_class").count().toPandas()
    shares, unraced = sample_shares(dict(zip(sizes["demand_class"], sizes["count"])), race_settings)
    for r in unraced:
        print(f"evaluate: race {r.describe()}")
    if not shares:
        return Raced(settings, unraced)
    threshold = F.lit(0)
    for demand_class, share in shares.items():
        threshold = F.when(F.col("demand_class") == demand_class, F.lit(math.ceil(share * 10_000))).otherwise(threshold)
    # read once: the sample's calendars feed its backtest, every replay and the final rows
    sampled = inputs.filter(F.col("eligible") & (F.pmod(F.xxhash64("segment_id"), F.lit(10_000)) < threshold)
                            ).persist(StorageLevel.MEMORY_AND_DISK)
    print(f"evaluate: racing the candidates on about {race_settings.sample_segments:,} segments of "
          f"{', '.join(shares)} first")
    first = backtest_of(sampled, settings, schema, partitions, global_rows)
    names = fitted(list(settings.specs))
    own_fits = first.filter(F.col("model").isin(names) & (F.col("kind") == METRICS_ROW))
    fits = own_fits.select("segment_id", "model", "seconds").join(
        sampled.select("segment_id", "demand_class").distinct(), "segment_id").toPandas()
    stored = first.filter(F.col("model").isin([*names, PRODUCTION])).persist(StorageLevel.MEMORY_AND_DISK)

    def replay(trial: EvaluationSettings, demand_class: str, production: bool = False) -> DataFrame:
        """The class's sampled segments backtested under ``trial``, replayed from ``stored``."""
        def group(history: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
            return replayed(history, rows, trial, production) if len(history) and len(rows) else pd.DataFrame(
                columns=schema.fieldNames())

        own = sampled.filter(F.col("demand_class") == demand_class)
        return (own.groupBy("segment_id")
                .cogroup(stored.join(own.select("segment_id").distinct(), "segment_id", "left_semi")
                         .groupBy("segment_id"))
                .applyInPandas(group, schema=schema))

    races = race(fits, settings, race_settings, lambda trial, c: replay(trial, c).toPandas())
    for r in races:
        print(f"evaluate: race {r.describe()}")
    dropped = {r.demand_class: tuple(r.dropped) for r in races if r.dropped}
    raced_settings = dataclasses.replace(settings, dropped=dropped)
    # the sample's final rows: as backtested where the class kept everything, else the replay
    final = first.join(sampled.filter(~F.col("demand_class").isin(list(dropped))).select("segment_id").distinct(),
                       "segment_id", "left_semi")
    for demand_class in dropped:
        final = final.unionByName(replay(raced_settings, demand_class, production=True))
    final = final.persist(StorageLevel.MEMORY_AND_DISK)
    return Raced(raced_settings, [*unraced, *races], [sampled, first, stored, final], final,
                 sampled.select("segment_id").distinct())


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
             scope: str = "all") -> JobMetrics:
    """Backtest, choose and gate every segment of ``silver.demand`` for ``run_date`` (or only the
    drifting ones: ``scope``)."""
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
    settings = evaluation_settings(cfg, run_date, run_id, force)
    segments = segments_with_production(history, spark.table(models_ref.name), run_date, keys).cache()
    columns = [*keys, "segment_id", "ds", "y", "is_closed", "eligible", *dataset.regressors]
    partitions = 16 * spark.sparkContext.defaultParallelism
    schema = backtest_schema(contract_for(cfg, "backtest_metrics").schema,
                             contract_for(cfg, "backtest_forecasts").schema)
    inputs = history.select(*columns).join(
        segments.select("segment_id", "demand_class", "production_spec"), "segment_id")
    race_settings = RaceSettings(**cfg.evaluation.race.model_dump())
    global_rows = global_backtests(inputs, settings, cfg)
    raced = Raced(settings, [])
    if race_settings.enabled and scope == "all":  # a drifting scope is too few segments to race
        raced = race_candidates(inputs, segments, settings, schema, partitions, race_settings, global_rows)
    settings, races, persisted = raced.settings, raced.races, raced.persisted
    if raced.rows is not None:
        rest = backtest_of(inputs.join(raced.sampled, "segment_id", "left_anti"), settings, schema, partitions,
                           global_rows)
        persisted, backtest = [*persisted, rest], raced.rows.unionByName(rest)
    else:
        backtest = backtest_of(inputs, settings, schema, partitions, global_rows)
        persisted.append(backtest)
    if global_rows is not None:
        persisted.append(global_rows)
    ensemble, final_weights = ensemble_backtest(backtest, segments, settings, schema, partitions)
    rows = backtest if ensemble is None else backtest.unionByName(ensemble)
    kind = F.col("kind")
    replace_run_date(spark, metrics_ref, rows.filter(kind == METRICS_ROW), run_date)
    replace_run_date(spark, forecasts_ref, rows.filter(kind == FORECAST_ROW), run_date)
    for frame in [*persisted, ensemble]:
        if frame is not None:
            frame.unpersist()
    written = spark.table(metrics_ref.name).filter(F.col("run_date") == F.lit(run_date))
    scored = written.select(*SCORED_COLUMNS).toPandas()
    classes = segments.select("segment_id", "demand_class").toPandas()
    per_window = scored[(scored["status"] == "ok") & (scored["model"] != PRODUCTION)].merge(classes)
    chosen_settings = dataclasses.replace(settings, portfolio=portfolios(per_window, settings.metric, settings.rank),
                                          ensemble=final_weights)
    log.info("portfolio best by demand class: %s", dict(chosen_settings.portfolio))

    def select_group(segment: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        return selection_row(segment, rows, chosen_settings)

    selection = (
        segments.groupBy("segment_id")
        .cogroup(written.groupBy("segment_id"))
        .applyInPandas(select_group, schema=contract_for(cfg, "model_selection").schema)
    )
    replace_run_date(spark, selection_ref, selection, run_date)
    chosen = (
        spark.table(selection_ref.name).filter(F.col("run_date") == F.lit(run_date))
        .select("segment_id", "champion", "promoted_model", "decision").toPandas()
    )
    summary = summarise(scored, chosen, settings.rank)
    held = held_out_strategies(per_window, metric=settings.metric, rank=settings.rank, margin=settings.margin,
                               gap=settings.gap, rule=settings.rule)
    summary["overall"]["held_out"] = held
    print_scorecard(summary, run_date, settings.metric)
    decisions = summary["decisions"]
    return JobMetrics(
        rows_in=history.count(),
        rows_out=len(scored),
        segments_ok=sum(n for d, n in decisions.items() if d != "fallback"),
        segments_fallback=decisions.get("fallback", 0),
        detail=json.loads(summary["families"].set_index("model").to_json(orient="index"))
        | {"scope": scope, "segments": len(classes), "decisions": decisions, "portfolio": dict(chosen_settings.portfolio),
           "overall": {**summary["overall"], "held_out": json.loads(held.to_json(orient="index"))},
           "race": {r.demand_class: r.record() for r in races}},
    )


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    metrics = evaluate(spark, cfg, args.run_date, run_id, force=args.force, scope=args.scope)
    metrics.detail["training_reason"] = args.reason
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("evaluate", "silver.demand -> gold.backtest_metrics, gold.model_selection")
    parser.add_argument("--force", action="store_true",
                        help="promote each champion even where it is worse than production (recorded)")
    add_scope_arg(parser)
    return run_job("evaluate", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
