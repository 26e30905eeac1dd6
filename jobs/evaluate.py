"""Evaluate job: rolling-origin backtests of every candidate, model choice and the promotion gate.

For run date D, each eligible segment of ``silver.demand`` (history up to D's last complete
period) is backtested inside ``groupBy(keys).applyInPandas``: K windows of H periods, S apart,
every candidate fitted only on the periods before each cutoff. The model in production (the
latest trained before D) is a candidate too when its settings differ from the configured ones.
Errors go to ``gold.backtest_metrics``; the champion, the gate's decision with its reason and the
value added over seasonal naive go to ``gold.model_selection``, which ``train`` then fits.
Segments too sparse or short for a model get seasonal naive, with the reason. Rerunning D
replaces D's rows.

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
from functools import partial
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config
from jobs.common.contracts import contract_for
from jobs.common.lake import demand_as_of, ensure_table, replace_run_date
from jobs.common.periods import last_complete_period
from jobs.common.runlog import JobMetrics
from jobs.common.runs import LakecastError, job_parser, run_job
from jobs.models import COMBINATIONS, MODELS, POOL, build_model, model_spec, strategy
from jobs.models.backtest import RESULT_COLUMNS, backtest_segment, pooled
from jobs.models.selection import (
    BASELINE,
    PRODUCTION,
    choose,
    format_strategies,
    held_out_strategies,
    portfolios,
)
from jobs.models.prophet_model import ProphetForecaster
from jobs.models.naive import SeasonalNaive
from jobs.models.stats import StatsForecaster
from jobs.score import current_models

log = logging.getLogger(__name__)

INTERMITTENT_CLASS = "intermittent"
SMOOTH_CLASS = "smooth"


def candidate_specs(cfg: Config) -> dict[str, str]:
    """Configured candidate name -> spec (family and settings as canonical JSON)."""
    ds, m = cfg.dataset, cfg.model
    path_periods = max(90, ds.horizon + 31)  # a month of scoring days past the training origin
    built = {
        SeasonalNaive.name: lambda: SeasonalNaive(ds.frequency, m.interval_width),
        ProphetForecaster.name: lambda: ProphetForecaster(
            {**m.prophet, "interval_width": m.interval_width}, ds.holidays_country, tuple(ds.regressors)
        ),
    }
    specs = {}
    for name in [*base_candidates(cfg.evaluation.candidates), *cfg.evaluation.intermittent_candidates]:
        family = MODELS[name]
        if name in built:
            specs[name] = built[name]().spec()
        elif issubclass(family, StatsForecaster):
            specs[name] = family(ds.frequency, m.interval_width, path_periods).spec()
        else:
            raise LakecastError(f"no settings known for candidate {name!r}")
    return specs


def base_candidates(names: tuple[str, ...] | list[str]) -> list[str]:
    """The candidates that are fitted (not combinations)."""
    return [n for n in names if n not in COMBINATIONS]


def candidates_for(params: dict[str, Any], demand_class: str) -> dict[str, str]:
    """A segment's candidates (name -> spec): the configured families, the intermittent ones for
    intermittent segments, and the combinations and the pool of all of these (the pool's members
    are chosen from the backtest: unresolved here)."""
    names = list(params["smooth"]) + (list(params["intermittent"]) if demand_class == INTERMITTENT_CLASS else [])
    specs = {n: params["specs"][n] for n in names}
    members = [specs[n] for n in names]
    for combo in params["combinations"]:
        if combo == POOL:
            specs[POOL] = model_spec(POOL, {"members": [], "candidates": members, "margin": params["margin"]})
        else:
            specs[combo] = model_spec(combo, {"members": members})
    return specs


def fitted_candidates(names: list[str] | dict[str, str]) -> list[str]:
    """The candidates a combination or the pool draws on: every fitted one (the baseline too)."""
    return [n for n in names if n not in COMBINATIONS and n != PRODUCTION]


def resolve_pool(specs: dict[str, str], backtest: pd.DataFrame, params: dict[str, Any]) -> tuple[str, str]:
    """The pool's spec with its members chosen on every backtest window, and why (when nothing
    scored, the pool is every candidate)."""
    universe = fitted_candidates(specs)
    members, why = pooled(backtest, universe, params["margin"], params["metric"])
    if not members:
        members, why = universe, f"every candidate ({why})"
    args = json.loads(specs[POOL])["args"]
    return model_spec(POOL, {**args, "members": [specs[n] for n in members]}), why


def evaluate_params(cfg: Config, run_date: dt.date, run_id: str, force: bool = False) -> dict[str, Any]:
    """Everything the per-segment functions need, as plain picklable values."""
    ds, e = cfg.dataset, cfg.evaluation
    specs = candidate_specs(cfg)
    return {
        "keys": list(ds.segment_keys),
        "regressors": list(ds.regressors),
        "frequency": ds.frequency,
        "horizon": ds.horizon,
        "windows": e.windows,
        "step": e.step,
        "interval_width": cfg.model.interval_width,
        "cost_under": e.cost_under,
        "cost_over": e.cost_over,
        "metric": e.metric,
        "tolerance": e.promotion_tolerance,
        "force": force,
        "specs": specs,
        "smooth": base_candidates(e.candidates),
        "intermittent": list(e.intermittent_candidates),
        "combinations": [n for n in e.candidates if n in COMBINATIONS],
        "zero_share": e.intermittent_zero_share,
        "rule": e.rule,
        "margin": e.margin,
        "portfolio": {},
        "rank": {name: i for i, name in enumerate(MODELS)},
        "run_date": run_date,
        "run_id": run_id,
    }


def production_name(spec: str | None, specs: dict[str, str]) -> str | None:
    """The candidate that stands for the production model: a configured one with the same
    strategy (spec, a pool's members aside), else :data:`PRODUCTION`; None when nothing is in
    production."""
    if not spec:
        return None
    return next((name for name, s in specs.items() if strategy(s) == strategy(spec)), PRODUCTION)


def production_combination(spec: str, specs: dict[str, str]) -> tuple[str, list[str]] | None:
    """(method, member names) when production is a combination of configured candidates: it is
    then scored from their window forecasts, without fits of its own."""
    d = json.loads(spec)
    if d["family"] not in COMBINATIONS:
        return None
    names = {s: n for n, s in specs.items() if n not in COMBINATIONS}
    members = [names.get(m) for m in d["args"]["members"]]
    return (MODELS[d["family"]].method, members) if members and None not in members else None


def backtest_rows(pdf: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One segment's backtest rows (the function applyInPandas runs); none for ineligible ones."""
    keys, regressors = params["keys"], params["regressors"]
    out_columns = [*keys, "segment_id", *RESULT_COLUMNS, "run_date", "run_id"]
    if not bool(pdf["eligible"].iloc[0]):
        return pd.DataFrame(columns=out_columns)
    specs = candidates_for(params, pdf["demand_class"].iloc[0])
    combinations = {n: (MODELS[n].method, fitted_candidates(specs)) for n in specs if n in COMBINATIONS and n != POOL}
    pool = fitted_candidates(specs) if POOL in specs else None
    production = pdf["production_spec"].iloc[0]
    if production_name(production, specs) == PRODUCTION:
        combined = production_combination(production, specs)
        if combined:
            combinations[PRODUCTION] = combined
        else:
            specs[PRODUCTION] = production
    history = pdf[["ds", "y", "is_closed", *regressors]]
    out = backtest_segment(
        history,
        {name: partial(build_model, spec) for name, spec in specs.items() if name not in COMBINATIONS
         and name not in combinations},
        combinations=combinations,
        pool=pool,
        margin=params["margin"],
        metric=params["metric"],
        frequency=params["frequency"],
        horizon=params["horizon"],
        windows=params["windows"],
        step=params["step"],
        interval_width=params["interval_width"],
        regressors=tuple(regressors),
        cost_under=params["cost_under"],
        cost_over=params["cost_over"],
    )
    out["cutoff"] = pd.to_datetime(out["cutoff"]).dt.date
    for k in keys:
        out[k] = pdf[k].iloc[0]
    out["segment_id"] = pdf["segment_id"].iloc[0]
    return out.assign(run_date=params["run_date"], run_id=params["run_id"])[out_columns]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def selection_row(segment: pd.DataFrame, backtest: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One segment's choice and gate decision (the function the cogroup runs)."""
    s = segment.iloc[0]
    specs = candidates_for(params, s["demand_class"])
    portfolio = params["portfolio"].get(s["demand_class"]) if params["rule"] == "portfolio" else None
    production_spec = s["production_spec"] if isinstance(s["production_spec"], str) else None
    production = production_name(production_spec, specs)
    if production == PRODUCTION:
        specs[PRODUCTION] = production_spec
    rank = {**params["rank"], PRODUCTION: params["rank"].get(_family(production_spec), 99)}
    if not bool(s["eligible"]):
        choice_kw = {"decision": "fallback", "promoted": BASELINE, "reason": str(s["ineligible_reason"])}
        scores, costs, n_windows, champion, production_score = {}, {}, 0, None, None
    else:
        c = choose(backtest, rank=rank, production=production, metric=params["metric"],
                   tolerance=params["tolerance"], force=params["force"], portfolio=portfolio,
                   margin=params["margin"])
        choice_kw = {"decision": c.decision, "promoted": c.promoted, "reason": c.reason}
        scores, costs, n_windows, champion = c.scores, c.costs, c.n_windows, c.champion
        production_score = c.production_score
    promoted = choice_kw["promoted"]
    if promoted == POOL:
        specs[POOL], why = resolve_pool(specs, backtest, params)
        choice_kw["reason"] += f"; {why}"
    promoted_score = _finite(scores.get(promoted))
    naive_score = _finite(scores.get(BASELINE))
    value_added = (
        1 - promoted_score / naive_score if promoted_score is not None and naive_score else None
    )
    return pd.DataFrame(
        [
            {
                **{k: s[k] for k in params["keys"]},
                "segment_id": s["segment_id"],
                "demand_class": s["demand_class"],
                "metric": params["metric"],
                "scores": {n: v for n, v in scores.items() if math.isfinite(v)},
                "n_windows": n_windows,
                "champion": champion,
                "portfolio_model": portfolio,
                "champion_score": _finite(scores.get(champion)) if champion else None,
                "production_model": _family(production_spec),
                "production_score": _finite(production_score),
                "decision": choice_kw["decision"],
                "promoted_model": promoted,
                "promoted_spec": specs[promoted],
                "promoted_score": promoted_score,
                "naive_score": naive_score,
                "value_added": value_added,
                "promoted_cost": _finite(costs.get(promoted)),
                "naive_cost": _finite(costs.get(BASELINE)),
                "reason": choice_kw["reason"],
                "run_date": params["run_date"],
                "run_id": params["run_id"],
            }
        ]
    )


def _family(spec: str | None) -> str | None:
    return json.loads(spec)["family"] if spec else None


def segments_with_production(
    demand: DataFrame, models: DataFrame | None, run_date: dt.date, keys: list[str], zero_share: float
) -> DataFrame:
    """One row per segment: keys, eligibility, demand class (intermittent when at least
    ``zero_share`` of its open periods sold nothing) and the spec of the model in production."""
    is_zero = F.when(F.col("y") == 0, 1.0).when(F.col("y").isNotNull(), 0.0)
    segments = demand.groupBy(*keys, "segment_id", "eligible", "ineligible_reason").agg(
        F.when(F.avg(is_zero) >= zero_share, INTERMITTENT_CLASS).otherwise(SMOOTH_CLASS).alias("demand_class"))
    if models is None:
        return segments.withColumn("production_spec", F.lit(None).cast("string"))
    production = current_models(models, run_date - dt.timedelta(days=1)).select(
        "segment_id", F.col("model_spec").alias("production_spec")
    )
    return segments.join(production, "segment_id", "left")


def evaluate(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str, force: bool = False) -> JobMetrics:
    """Backtest, choose and gate every segment of ``silver.demand`` for ``run_date``."""
    ds = cfg.dataset
    keys = list(ds.segment_keys)
    models_ref = ensure_table(spark, cfg, "models")
    metrics_ref = ensure_table(spark, cfg, "backtest_metrics")
    selection_ref = ensure_table(spark, cfg, "model_selection")
    demand = demand_as_of(spark, cfg, run_date)
    params = evaluate_params(cfg, run_date, run_id, force)
    history = demand.filter(F.col("ds") <= F.lit(last_complete_period(run_date, ds.frequency)))
    segments = segments_with_production(history, spark.table(models_ref.name), run_date, keys,
                                        params["zero_share"]).cache()
    columns = [*keys, "segment_id", "ds", "y", "is_closed", "eligible", *ds.regressors]
    partitions = 16 * spark.sparkContext.defaultParallelism

    def backtest_one(pdf: pd.DataFrame) -> pd.DataFrame:
        return backtest_rows(pdf, params)

    def select_one(segment: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        return selection_row(segment, rows, params)

    backtest = (
        history.select(*columns)
        .join(segments.select("segment_id", "demand_class", "production_spec"), "segment_id")
        .repartition(partitions, *keys)
        .groupBy(*keys)
        .applyInPandas(backtest_one, schema=contract_for(cfg, "backtest_metrics").schema)
    )
    replace_run_date(spark, metrics_ref, backtest, run_date)
    written = spark.table(metrics_ref.name).filter(F.col("run_date") == F.lit(run_date))
    per_window = (
        written.filter(f"status = 'ok' and model != '{PRODUCTION}'")
        .join(segments.select("segment_id", "demand_class"), "segment_id")
        .select("segment_id", "demand_class", "model", "window", "mase", "wape", "mae", "rmse", "smape",
                "pinball", "cost", "bias", "coverage", "n_test", "actual_total", "seconds")
        .toPandas()
    )
    params["portfolio"] = portfolios(per_window, params["metric"], params["rank"])
    log.info("portfolio best by demand class: %s", params["portfolio"])

    selection = (
        segments.groupBy("segment_id")
        .cogroup(written.groupBy("segment_id"))
        .applyInPandas(select_one, schema=contract_for(cfg, "model_selection").schema)
    )
    replace_run_date(spark, selection_ref, selection, run_date)
    chosen = spark.table(selection_ref.name).filter(F.col("run_date") == F.lit(run_date))
    summary = summarise(written, chosen, params["metric"])
    held = held_out_strategies(per_window, metric=params["metric"], rank=params["rank"], margin=params["margin"],
                               gap=math.ceil(params["horizon"] / params["step"]))
    summary["overall"]["held_out"] = held
    print_summary(summary, run_date, params["metric"])
    decisions = {r.decision: r["count"] for r in chosen.groupBy("decision").count().collect()}
    return JobMetrics(
        rows_in=history.count(),
        rows_out=written.count(),
        segments_ok=sum(n for d, n in decisions.items() if d != "fallback"),
        segments_fallback=decisions.get("fallback", 0),
        detail=json.loads(summary["families"].set_index("model").to_json(orient="index"))
        | {"decisions": decisions, "portfolio": params["portfolio"],
           "overall": {**summary["overall"], "held_out": json.loads(held.to_json(orient="index"))}},
    )


def summarise(backtest: DataFrame, selection: DataFrame, metric: str) -> dict[str, Any]:
    """Per family: segments, WAPE (pooled), mean MASE, cost, share of wins; overall value added.

    Every figure is over the segments where each of their candidates forecast every window, so
    the families are compared on the same series (the methods for intermittent demand: on the
    intermittent ones among them).
    """
    ok = backtest.filter("status = 'ok'")
    complete = (
        backtest.filter(f"status != 'skipped' and model != '{PRODUCTION}'")
        .groupBy("segment_id")
        .agg(F.sum(F.when(F.col("status") == "ok", 0).otherwise(1)).alias("bad"))
        .filter("bad = 0")
        .select("segment_id")
    )
    per_segment = (
        ok.join(complete, "segment_id")
        .groupBy("model", "segment_id")
        .agg(F.sum(F.col("mae") * F.col("n_test")).alias("abs_error"), F.sum("actual_total").alias("actual"),
             F.avg("mase").alias("mase"), F.avg("cost").alias("cost"))
    )
    wins = (
        selection.join(complete, "segment_id")
        .groupBy(F.col("champion").alias("model"))
        .agg(F.count("*").alias("wins"))
    )
    families = (
        per_segment.filter(F.col("model") != PRODUCTION)
        .groupBy("model")
        .agg(F.count("*").alias("segments"), (F.sum("abs_error") / F.sum("actual")).alias("wape"),
             F.avg("mase").alias("mase"), F.avg("cost").alias("cost"))
        .join(wins, "model", "left")
        .fillna({"wins": 0})
        .toPandas()
    )
    promoted = (
        selection.join(complete, "segment_id")
        .join(per_segment.withColumnRenamed("model", "promoted_model"), ["segment_id", "promoted_model"])
        .agg(F.count("*").alias("segments"), (F.sum("abs_error") / F.sum("actual")).alias("wape"),
             F.avg("mase").alias("mase"), F.avg("cost").alias("cost"))
        .first()
        .asDict()
    )
    if len(families):
        families["win_share"] = families["wins"] / max(int(families["wins"].sum()), 1)
        families["rank"] = families["model"].map({n: i for i, n in enumerate(MODELS)})
        families = families.sort_values("rank").drop(columns="rank").reset_index(drop=True)
    naive = families[families["model"] == BASELINE]
    overall = {"chosen": promoted}
    if len(naive) and promoted["mase"] is not None:
        n = naive.iloc[0]
        overall["value_added_mase"] = 1 - promoted["mase"] / n["mase"]
        overall["value_added_wape"] = 1 - promoted["wape"] / n["wape"]
        overall["value_added_cost"] = 1 - promoted["cost"] / n["cost"]
    decisions = selection.groupBy("decision").count().toPandas().set_index("decision")["count"].to_dict()
    return {"families": families, "overall": overall, "decisions": decisions}


def print_summary(summary: dict[str, Any], run_date: dt.date, metric: str) -> None:
    families, overall = summary["families"], summary["overall"]
    chosen = overall["chosen"]
    print(f"\nevaluate {run_date}: backtest over {chosen['segments'] or 0:,} segments where each of their "
          f"candidates forecast every window (choice on {metric})")
    print(f"  {'model':<16}{'segments':>9}{'WAPE':>8}{'MASE':>8}{'cost':>9}{'wins':>7}")
    for r in families.itertuples():
        print(f"  {r.model:<16}{r.segments:>9,}{r.wape:>8.3f}{r.mase:>8.3f}{r.cost:>9.3f}{r.win_share:>7.0%}")
    if chosen["segments"]:
        print(f"  {'chosen':<16}{chosen['segments']:>9,}{chosen['wape']:>8.3f}{chosen['mase']:>8.3f}"
              f"{chosen['cost']:>9.3f}   (picked and scored on the same windows: flattering)")
    held = overall.get("held_out")
    if held is not None and len(held):
        print(f"  held out: the last window alone, every choice made on the earlier windows that ended by its cutoff "
              f"({held.attrs['segments']:,} segments that every configured candidate forecast)")
        print(format_strategies(held, indent="  "))
    if "value_added_mase" in overall:
        print(f"  in-sample value added over seasonal naive: MASE {overall['value_added_mase']:+.1%}, "
              f"WAPE {overall['value_added_wape']:+.1%}, cost {overall['value_added_cost']:+.1%}")
    print("  decisions: " + ", ".join(f"{d} {n:,}" for d, n in sorted(summary["decisions"].items())))


def _body(spark: SparkSession, cfg: Config, args: argparse.Namespace, run_id: str) -> JobMetrics:
    return evaluate(spark, cfg, args.run_date, run_id, force=args.force)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("evaluate", "silver.demand -> gold.backtest_metrics, gold.model_selection")
    parser.add_argument("--force", action="store_true",
                        help="promote each champion even where it is worse than production (recorded)")
    return run_job("evaluate", _body, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
