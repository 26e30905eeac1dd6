"""Run report: one self-contained HTML file per run date, for people who would rather look.

Reads the lake through delta-rs (no Spark, so it runs beside the jobs) and writes one HTML file
with the figures embedded as PNG: run timings, what the forecasts came from and why segments
fell back, forecast against actual for the top segments, the spread of backtest accuracy by
family, the gate's decisions, realized accuracy by forecast run date once actuals arrive, and
the share of segments drifting over time with the run date's drifting segments.

    lakecast report --run-date 2011-12-09 [--out reports/lakecast-2011-12-09.html] [--top 6]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import logging
import sys
from pathlib import Path

import pandas as pd

from jobs.common.config import Config, load_config
from jobs.common.jars import PROJECT_DIR
from jobs.common.reader import read_table
from jobs.common.runs import parse_run_date
from jobs.core.calendar import periods_back
from jobs.core.names import FAMILIES, INACTIVE, PRODUCTION

log = logging.getLogger(__name__)

SECTIONS = ("Run timings", "Forecasts and fallbacks", "Forecast against actual",
            "Backtest accuracy", "Model choice", "Realized accuracy", "Drift")


def _read(cfg: Config, logical: str, **kwargs) -> pd.DataFrame:
    """A table, or an empty frame when it does not exist yet (a section then says so)."""
    from deltalake.exceptions import TableNotFoundError

    try:
        return read_table(logical, cfg, **kwargs)
    except TableNotFoundError:
        return pd.DataFrame()


def _figure(draw) -> str:
    """Run ``draw(ax)`` on a new figure; return it as an embedded PNG ``<img>``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="t", float_format=lambda v: f"{v:,.3f}", na_rep="")


def _none(what: str) -> str:
    return f"<p class='none'>No {html.escape(what)} for this run date yet.</p>"


def timings(cfg: Config, run_date: dt.date) -> str:
    runs = _read(cfg, "pipeline_runs", filters=[("run_date", "=", run_date)])
    if runs.empty:
        return _none("job runs")
    latest = runs.sort_values(["started_at", "finished_at"]).groupby("job", sort=False).tail(1)
    latest = latest.sort_values("started_at")[
        ["job", "status", "duration_s", "rows_in", "rows_out", "segments_ok", "segments_fallback", "error"]
    ].astype({c: "Int64" for c in ("rows_in", "rows_out", "segments_ok", "segments_fallback")})
    latest["error"] = latest["error"].fillna("")
    figure = _figure(lambda ax: (ax.barh(latest["job"][::-1], latest["duration_s"][::-1], color="#4a7ab5"),
                                 ax.set_xlabel("seconds (latest run of each job)")))
    return figure + _table(latest)


def forecasts_section(forecasts: pd.DataFrame) -> str:
    if forecasts.empty:
        return _none("forecasts")
    first = forecasts[forecasts["horizon_step"] == 1]
    by_model = first.groupby(["model", "status"]).size().rename("segments").reset_index()
    reasons = (
        first[first["status"] != "ok"]["reason"].fillna("").str.split(":").str[0]
        .value_counts().rename_axis("fallback reason").rename("segments").reset_index()
    )
    return (f"<p>{len(first):,} segments forecast {int(forecasts['horizon_step'].max())} periods ahead.</p>"
            + _table(by_model) + (_table(reasons) if len(reasons) else "<p>No fallbacks.</p>"))


def forecast_vs_actual(cfg: Config, forecasts: pd.DataFrame, run_date: dt.date, top: int) -> str:
    if forecasts.empty:
        return _none("forecasts")
    dataset = cfg.dataset
    since = periods_back(run_date, 4 * dataset.horizon, dataset.frequency)
    demand = _read(cfg, "demand", columns=["segment_id", "ds", "y", "is_closed"], filters=[("ds", ">=", since)])
    if demand.empty:
        return _none("demand history")
    leaders = demand.groupby("segment_id")["y"].sum().nlargest(top).index
    images = []
    for segment in leaders:
        h = demand[demand["segment_id"] == segment].sort_values("ds")
        f = forecasts[forecasts["segment_id"] == segment].sort_values("ds")
        model = f["model"].iloc[0] if len(f) else "none"

        def draw(ax, h=h, f=f, segment=segment, model=model):
            ax.plot(pd.to_datetime(h["ds"]), h["y"], color="#333", lw=1, label="actual")
            ax.plot(pd.to_datetime(f["ds"]), f["yhat"], color="#d0573a", lw=1.5, label=f"forecast ({model})")
            ax.fill_between(pd.to_datetime(f["ds"]), f["yhat_lower"], f["yhat_upper"], color="#d0573a",
                            alpha=0.2, label="interval")
            ax.set_title(f"segment {segment}")
            ax.legend(loc="upper left", fontsize=8)

        images.append(_figure(draw))
    return "".join(images)


def backtest_section(cfg: Config, run_date: dt.date) -> tuple[str, str]:
    """(backtest accuracy, model choice) of the latest evaluation on or before the run date."""
    selection = _read(cfg, "model_selection", filters=[("run_date", "<=", run_date)])
    if selection.empty:
        return _none("evaluation"), _none("evaluation")
    evaluated_on = selection["run_date"].max()
    selection = selection[selection["run_date"] == evaluated_on]
    backtest = _read(cfg, "backtest_metrics", filters=[("run_date", "=", evaluated_on)])
    ok = backtest[(backtest["status"] == "ok") & (backtest["model"] != PRODUCTION)]
    per_segment = ok.groupby(["model", "segment_id"])["mase"].mean().reset_index()
    families = [m for m in FAMILIES if m in set(per_segment["model"])]  # simplest first

    def spread(ax):
        data = [per_segment.loc[per_segment["model"] == m, "mase"].dropna().clip(upper=3) for m in families]
        ax.boxplot(data, tick_labels=families, showfliers=False)
        ax.set_ylabel("MASE per segment (clipped at 3)")
        ax.set_title(f"backtest of {evaluated_on}")

    summary = (
        ok.assign(abs_error=ok["mae"] * ok["n_test"])
        .groupby("model")
        .agg(segments=("segment_id", "nunique"), abs_error=("abs_error", "sum"),
             actual=("actual_total", "sum"), coverage=("coverage", "mean"), bias=("bias", "mean"))
        .join(per_segment.groupby("model")["mase"].mean())  # mean over segments of their mean
        .reset_index()
    )
    summary["wape"] = summary["abs_error"] / summary["actual"].where(summary["actual"] != 0)
    accuracy = (f"<p>Evaluation of {evaluated_on}.</p>" + (_figure(spread) if families else "")
                + _table(summary[["model", "segments", "wape", "mase", "bias", "coverage"]]))
    decisions = selection.groupby(["decision", "promoted_model"]).size().rename("segments").reset_index()
    value = selection["value_added"].dropna()
    choice = (_table(decisions)
              + f"<p>Value added over seasonal naive (1 - promoted / naive {selection['metric'].iloc[0]}), "
              f"median over {len(value):,} evaluated segments: {value.median():+.1%}.</p>" if len(value)
              else _table(decisions))
    return accuracy, choice


def realized_section(cfg: Config, run_date: dt.date) -> str:
    acc = _read(cfg, "forecast_accuracy", filters=[("forecast_run_date", "<=", run_date)])
    if "status" in acc:  # inactive segments are forecast zero by policy: not a model's accuracy
        acc = acc[acc["status"] != INACTIVE]
    if acc.empty:
        return _none("realized accuracy (forecasts whose periods have happened)")
    by_date = (
        acc.groupby("forecast_run_date")
        .agg(periods=("abs_error", "size"), abs_error=("abs_error", "sum"), actual=("actual", "sum"),
             bias=("error", "mean"), coverage=("in_interval", "mean"))
        .reset_index()
    )
    by_date["wape"] = by_date["abs_error"] / by_date["actual"].abs().where(by_date["actual"] != 0)  # undefined: NaN
    figure = _figure(lambda ax: (ax.plot(pd.to_datetime(by_date["forecast_run_date"]), by_date["wape"], marker="o"),
                                 ax.set_ylabel("realized WAPE"), ax.set_xlabel("forecast run date")))
    return figure + _table(by_date[["forecast_run_date", "periods", "wape", "bias", "coverage"]])


def drift_section(cfg: Config, run_date: dt.date) -> str:
    """Share of segments drifting per monitor run date (a picture over time), and the run
    date's drifting segments with their figures."""
    drift = _read(cfg, "drift", filters=[("run_date", "<=", run_date)])
    if drift.empty:
        return _none("drift figures (lakecast monitor)")
    with_model = drift[drift["status"] != "no_model"]
    share = with_model.groupby("run_date").agg(segments=("retrain", "size"), drifting=("retrain", "sum"),
                                               data=("data_drift", "sum"), concept=("concept_drift", "sum"))
    share = share.reset_index()
    share["drifting_share"] = share["drifting"] / share["segments"]

    def draw(ax):
        days = pd.to_datetime(share["run_date"])
        ax.plot(days, share["data"] / share["segments"], marker="o", label="data drift")
        ax.plot(days, share["concept"] / share["segments"], marker="s", label="concept drift")
        ax.plot(days, share["drifting_share"], marker=".", color="k", label="retrain")
        ax.axhline(cfg.monitor.alert_share, ls="--", color="r", lw=1, label="alert share")
        ax.set_ylabel("share of segments")
        ax.set_xlabel("monitor run date")
        ax.legend(fontsize=8)

    today = drift[(drift["run_date"] == run_date) & drift["retrain"]]
    columns = ["segment_id", "model", "reasons", "level_ratio", "level_p", "error_ratio", "cusum", "bias"]
    listing = (_table(today.sort_values("level_ratio", ascending=False)[columns].head(20)) if len(today)
               else "<p class='none'>No segment drifting on this run date.</p>")
    return _figure(draw) + _table(share.tail(14)) + listing


def render(cfg: Config, run_date: dt.date, top: int = 6) -> str:
    forecasts = _read(cfg, "forecasts", filters=[("run_date", "=", run_date)])
    accuracy, choice = backtest_section(cfg, run_date)
    bodies = [timings(cfg, run_date), forecasts_section(forecasts),
              forecast_vs_actual(cfg, forecasts, run_date, top), accuracy, choice, realized_section(cfg, run_date),
              drift_section(cfg, run_date)]
    sections = "".join(f"<h2>{title}</h2>{body}" for title, body in zip(SECTIONS, bodies))
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "table.t{border-collapse:collapse;margin:.5em 0}table.t td,table.t th{padding:2px 10px;"
             "border-bottom:1px solid #ddd;text-align:right}.none{color:#888}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lakecast {run_date}</title>"
            f"<style>{style}</style></head><body><h1>lakecast run report: {run_date}</h1>"
            f"<p>Dataset {html.escape(cfg.dataset.name)}, lake {html.escape(cfg.lake_root)}, generated "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>{sections}</body></html>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakecast report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True, type=parse_run_date)
    parser.add_argument("--config", default=None)
    parser.add_argument("--out", default=None, help="HTML file (default: reports/lakecast-<date>.html)")
    parser.add_argument("--top", type=int, default=6, help="segments plotted against their actuals")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    out = Path(args.out or PROJECT_DIR / "reports" / f"lakecast-{args.run_date}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(cfg, args.run_date, args.top))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
