"""Your own sales file in, without Spark: ``lakecast init`` proposes a config from a sample of the
file, ``lakecast check`` validates a config and a sample of its source in seconds.

    lakecast init data/sales.csv [--out conf/sales.yaml] [--rows 200000]
    lakecast check [--config conf/sales.yaml] [--rows 200000]

``init`` reads the first rows of a CSV (any delimiter, compressed or not) or Parquet file and
proposes the dataset section: the timestamp column and its format, the quantity column, the
segment keys (the most detailed one as ``item_id``, the others as attributes), the frequency from
the spacing of the dates, and a horizon for it; it writes a commented starter config to edit.

``check`` loads the config (every key validated, as every command does) and reads a sample of its
source: are the configured columns there, do the dates parse with the configured pattern, are the
quantities numbers, does the frequency fit the dates, how many segments, how long their history,
and what each lifecycle class would hold (an estimate from the sample, by the features job's
rules). It exits 0 when the source can be ingested as configured and 2 with each problem named.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.common.config import Config, load_config
from jobs.core.calendar import FREQUENCIES, period_number, season_length
from jobs.core.errors import ConfigError

ROWS = 200_000
# Spark datetime pattern letters -> strptime directives (longest first)
SPARK_TO_STRPTIME = [("yyyy", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("M", "%m"),
                     ("dd", "%d"), ("d", "%d"), ("HH", "%H"), ("H", "%H"), ("hh", "%I"), ("h", "%I"),
                     ("mm", "%M"), ("m", "%M"), ("ss", "%S"), ("s", "%S"), ("SSSSSS", "%f"), ("SSS", "%f"),
                     ("a", "%p")]
# Candidate formats for a timestamp column: strptime and the Spark pattern that reads it
FORMATS = [("%Y-%m-%d", "yyyy-MM-dd"), ("%Y-%m-%d %H:%M:%S", "yyyy-MM-dd HH:mm:ss"),
           ("%Y-%m-%dT%H:%M:%S", "yyyy-MM-dd'T'HH:mm:ss"), ("%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm"),
           ("%Y/%m/%d", "yyyy/M/d"), ("%m/%d/%Y", "M/d/yyyy"), ("%m/%d/%Y %H:%M", "M/d/yyyy H:mm"),
           ("%d/%m/%Y", "d/M/yyyy"), ("%d/%m/%Y %H:%M", "d/M/yyyy H:mm"), ("%d.%m.%Y", "d.M.yyyy"),
           ("%Y%m%d", "yyyyMMdd")]
HORIZONS = {"daily": 28, "weekly": 13, "monthly": 12, "quarterly": 4}
TIME_HINTS = re.compile(r"date|time|day|week|month|period|^ds$", re.I)
QUANTITY_HINTS = re.compile(r"qty|quantit|units?$|sales|demand|volume|^y$|count|sold", re.I)
KEY_HINTS = re.compile(r"store|shop|sku|item|product|article|region|country|dept|categ|location|warehouse|id$|code",
                       re.I)


def spark_to_strptime(pattern: str) -> str:
    """A Spark datetime pattern as a strptime format ('T' quoted literals kept)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.index("'", i + 1)
            out.append(pattern[i + 1:end])
            i = end + 1
            continue
        for token, directive in SPARK_TO_STRPTIME:
            if pattern.startswith(token, i):
                out.append(directive)
                i += len(token)
                break
        else:
            if pattern[i].isalpha():
                raise ValueError(f"pattern letter {pattern[i]!r} of {pattern!r} cannot be checked without Spark")
            out.append(pattern[i])
            i += 1
    return "".join(out)


def source_file(source: str) -> Path:
    """The file to sample: the source itself, the newest file of a folder of drops, or of a
    ``{run_date}`` pattern's matches."""
    if "{run_date}" in source:
        matches = sorted(Path(source).parent.glob(Path(source).name.replace("{run_date}", "*")))
        if not matches:
            raise FileNotFoundError(f"no file matches {source}")
        return matches[-1]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
        if not files:
            raise FileNotFoundError(f"the folder {source} holds no file")
        return files[-1]
    if not path.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    return path


def sample(path: Path, fmt: str, rows: int, delimiter: str | None = None, quote: str = '"') -> pd.DataFrame:
    """The first ``rows`` rows of a CSV (compressed by its extension or not; ``delimiter`` None:
    sniffed) or Parquet file, every column as text."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows), None)
        return batch.to_pandas().astype(str) if batch is not None else pd.DataFrame()
    if delimiter is None:
        with pd.io.common.get_handle(path, "r", compression="infer") as handle:
            head = handle.handle.read(64_000)
        try:
            delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    return pd.read_csv(path, sep=delimiter, quotechar=quote, nrows=rows, dtype=str, keep_default_na=False,
                       compression="infer")


def parse_dates(values: pd.Series, strptime: str) -> pd.Series:
    return pd.to_datetime(values.str.strip(), format=strptime, errors="coerce")


def guess_format(values: pd.Series) -> tuple[str, str, float] | None:
    """(strptime, Spark pattern, share parsed) of the format that reads most of ``values``."""
    values = values[values.str.strip() != ""].head(5_000)
    if values.empty:
        return None
    best = max(((f, p, float(parse_dates(values, f).notna().mean())) for f, p in FORMATS), key=lambda t: t[2])
    return best if best[2] >= 0.95 else None


def frequency_of(days: pd.Series) -> str:
    """The frequency whose period fits the spacing of the distinct dates (median gap)."""
    distinct = np.sort(days.dropna().dt.normalize().unique())
    if len(distinct) < 3:
        return "daily"
    gap = float(np.median(np.diff(distinct).astype("timedelta64[D]").astype(float)))
    if gap <= 2:
        return "daily"
    if gap <= 10:
        return "weekly"
    if gap <= 45:
        return "monthly"
    return "quarterly"


@dataclass
class Proposal:
    """What ``init`` proposes for the dataset section."""

    timestamp: str
    pattern: str
    quantity: str
    item: str
    attributes: list[str] = field(default_factory=list)
    frequency: str = "daily"
    delimiter: str = ","


def propose(frame: pd.DataFrame, delimiter: str) -> Proposal:
    """The columns' roles, the timestamp pattern and the frequency, from a sample."""
    formats = {c: guess_format(frame[c].astype(str)) for c in frame.columns}
    dated = [c for c, f in formats.items() if f is not None]
    if not dated:
        raise ConfigError("no column of the sample reads as dates in a format lakecast knows "
                          f"({', '.join(p for _, p in FORMATS)}): write dataset.columns.timestamp and "
                          "dataset.timestamp_format (a Spark datetime pattern) by hand")
    timestamp = max(dated, key=lambda c: (bool(TIME_HINTS.search(c)), formats[c][2]))
    numeric = {c: pd.to_numeric(frame[c], errors="coerce").notna().mean() for c in frame.columns if c != timestamp}
    numbers = [c for c, share in numeric.items() if share >= 0.99]
    if not numbers:
        raise ConfigError("no column of the sample holds numbers for the quantity: write dataset.columns.quantity")
    quantity = max(numbers, key=lambda c: (bool(QUANTITY_HINTS.search(c)), -numbers.index(c)))
    rest = [c for c in frame.columns if c not in (timestamp, quantity)]
    keys = [c for c in rest if 1 < frame[c].nunique() < max(len(frame) // 2, 2)
            and (KEY_HINTS.search(c) or c not in numbers)]
    if not keys:
        raise ConfigError("no column of the sample looks like a segment key (store, SKU, product ...): "
                          "write dataset.columns.item_id and dataset.segment_keys by hand")
    item = max(keys, key=lambda c: frame[c].nunique())
    attributes = [c for c in keys if c != item and frame[[c, item]].drop_duplicates()[item].is_unique is False]
    days = parse_dates(frame[timestamp].astype(str), formats[timestamp][0])
    return Proposal(timestamp, formats[timestamp][1], quantity, item, attributes, frequency_of(days), delimiter)


def bronze_name(column: str) -> str:
    """A source column's name as a bronze column: lower case, letters, digits and underscores."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower() or "key"
    return name if not name[0].isdigit() else f"c_{name}"


def starter_config(source: Path, out: Path, proposal: Proposal, rows: int) -> str:
    """The commented starter config for ``proposal``."""
    name = bronze_name(source.name.split(".")[0])
    relative = Path(_relative(source, out.parent))
    m = season_length(proposal.frequency)
    horizon = HORIZONS[proposal.frequency]
    attributes = {bronze_name(a): a for a in proposal.attributes}
    keys = [*attributes, "item_id"]
    attribute_lines = "".join(f"    {k}: {_quoted(v)}\n" for k, v in attributes.items()) or ""
    return f"""# lakecast configuration for {source.name}, proposed by `lakecast init` on {dt.date.today()} from the
# first {rows:,} rows. Check it with `lakecast check --config {out}`; every key, its default and its
# meaning: docs/configuration.md. Relative paths are resolved against the folder of this file.

lake:
  root: ../lake-{name}        # a folder, or s3a://bucket/lake ...; LAKECAST_LAKE overrides it

dataset:
  name: {name}
  source: {relative}          # a file, a folder of daily drop files, or a pattern with {{run_date}}
  format: {"parquet" if source.suffix == ".parquet" else "csv"}
  csv:
    delimiter: {_quoted(proposal.delimiter)}
  columns:                    # role -> column of the source (timestamp and quantity required)
    timestamp: {_quoted(proposal.timestamp)}
    quantity: {_quoted(proposal.quantity)}
    item_id: {_quoted(proposal.item)}           # the most detailed key
  attributes:{" {}" if not attributes else ""}                 # other columns kept in bronze, usable as segment keys
{attribute_lines}  regressors: {{}}              # numeric columns the models may use: bronze name -> column
  timestamp_format: {_quoted(proposal.pattern)}   # a Spark datetime pattern
  segment_keys: [{', '.join(keys)}]   # one forecast per value of these
  frequency: {proposal.frequency}            # the dates' spacing; sales are summed per period
  horizon: {horizon}                # periods to forecast
  holidays_country: null      # an ISO code (GB, US, DE, ...) gives the models that country's holidays
  classify:
    cancellation_prefix: null # order ids starting with this are cancellations (needs columns.order_id)
    non_product_pattern: null # a regex of item ids that are not products (postage, fees)

features:
  min_history_periods: {2 * m + horizon}     # history a segment needs for a model: two seasons and a horizon

privacy:
  allow_demo_key: false       # customer ids (columns.customer_id) are hashed with the key in LAKECAST_HASH_KEY
"""


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), base.resolve())


def init(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lakecast init", description="a starter config for your own sales file")
    parser.add_argument("source", help="a CSV (compressed or not) or Parquet file of your sales")
    parser.add_argument("--out", default=None, help="config file to write (default: conf/<file name>.yaml)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the file to read")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    source = Path(args.source)
    if not source.is_file():
        raise ConfigError(f"{source} is not a file: give the path of your sales file")
    fmt = "parquet" if source.suffix == ".parquet" else "csv"
    frame = sample(source, fmt, args.rows)
    delimiter = "," if fmt == "parquet" else _delimiter_of(source)
    proposal = propose(frame, delimiter)
    from jobs.common.jars import PROJECT_DIR

    out = Path(args.out or PROJECT_DIR / "conf" / f"{bronze_name(source.name.split('.')[0])}.yaml")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists: choose another --out, or --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(starter_config(source, out, proposal, min(args.rows, len(frame))))
    print(f"lakecast init: read {len(frame):,} rows of {source}")
    print(f"  timestamp {proposal.timestamp!r} ({proposal.pattern}), quantity {proposal.quantity!r}, "
          f"segments by {', '.join([*proposal.attributes, proposal.item])} ({proposal.item!r} as item_id)")
    print(f"  frequency {proposal.frequency}, horizon {HORIZONS[proposal.frequency]}")
    print(f"wrote {out}: edit it, then `lakecast check --config {out}`")
    return 0


def _delimiter_of(path: Path) -> str:
    with pd.io.common.get_handle(path, "r", compression="infer") as handle:
        head = handle.handle.read(64_000)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


@dataclass
class Findings:
    """What ``check`` found: lines to print, and the problems that make it exit 2."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def say(self, topic: str, text: str) -> None:
        self.lines.append((topic, text))

    def problem(self, topic: str, text: str) -> None:
        self.lines.append((topic, f"PROBLEM: {text}"))
        self.problems.append(f"{topic}: {text}")


def inspect_source(cfg: Config, rows: int) -> Findings:
    """The checks of ``lakecast check`` on a sample of the configured source."""
    found = Findings()
    ds = cfg.dataset
    found.say("config", f"{cfg.path}: every key known and valid")
    try:
        path = source_file(ds.source)
    except FileNotFoundError as exc:
        found.problem("source", f"{exc}: fix dataset.source")
        return found
    frame = sample(path, ds.format, rows, ds.csv.delimiter, ds.csv.quote)
    found.say("source", f"{path} ({ds.format}); sample: the first {len(frame):,} rows")
    wanted = {**{f"columns.{r}": c for r, c in ds.columns.items()},
              **{f"attributes.{a}": c for a, c in ds.attributes.items()},
              **{f"regressors.{r}": c for r, c in ds.regressors.items()}}
    missing = {k: c for k, c in wanted.items() if c not in frame.columns}
    if missing:
        found.problem("columns", f"not in the source: {', '.join(f'{k} = {c!r}' for k, c in missing.items())}; "
                                 f"its columns: {', '.join(frame.columns)}")
        return found
    found.say("columns", ", ".join(f"{k} {c!r}" for k, c in wanted.items()) + ": all found")
    try:
        strptime = spark_to_strptime(ds.timestamp_format)
    except ValueError as exc:
        found.say("dates", f"not checked: {exc}")
        return found
    stamps = parse_dates(frame[ds.columns["timestamp"]].astype(str), strptime)
    parsed = float(stamps.notna().mean()) if len(stamps) else 0.0
    if parsed < 0.99:
        bad = frame.loc[stamps.isna(), ds.columns["timestamp"]].head(3).tolist()
        guess = guess_format(frame[ds.columns["timestamp"]].astype(str))
        hint = f"; the values read as {guess[1]!r}" if guess else ""
        found.problem("dates", f"{parsed:.1%} parse with timestamp_format {ds.timestamp_format!r} (e.g. not: "
                               f"{bad}){hint}")
        return found
    found.say("dates", f"{parsed:.1%} parse with {ds.timestamp_format!r}: {stamps.min():%Y-%m-%d} .. {stamps.max():%Y-%m-%d}")
    quantity = pd.to_numeric(frame[ds.columns["quantity"]], errors="coerce")
    if quantity.notna().mean() < 0.99:
        bad = frame.loc[quantity.isna(), ds.columns["quantity"]].head(3).tolist()
        found.problem("quantity", f"{quantity.isna().mean():.1%} of {ds.columns['quantity']!r} are not numbers "
                                  f"(e.g. {bad})")
        return found
    found.say("quantity", f"numbers; {float((quantity < 0).mean()):.1%} negative, {float((quantity == 0).mean()):.1%} zero")
    spacing = frequency_of(stamps)
    if FREQUENCIES[spacing].periods_per_year > FREQUENCIES[ds.frequency].periods_per_year:
        found.say("frequency", f"{ds.frequency}: the dates are {spacing} apart, summed per {ds.frequency} period")
    elif spacing != ds.frequency:
        found.problem("frequency", f"configured {ds.frequency}, but the dates are {spacing} apart: most "
                                   f"{ds.frequency} periods would have no rows; set dataset.frequency: {spacing}")
    else:
        found.say("frequency", f"{ds.frequency}, as the dates are spaced")
    lifecycle(found, cfg, frame, stamps, quantity)
    return found


def lifecycle(found: Findings, cfg: Config, frame: pd.DataFrame, stamps: pd.Series, quantity: pd.Series) -> None:
    """Segments, their history, and what each lifecycle class would hold at the sample's last date
    (the features job's rules, on the sample's net demand per period)."""
    ds, features, e = cfg.dataset, cfg.features, cfg.evaluation
    columns = {**{"item_id": ds.columns.get("item_id")}, **ds.attributes}
    keys = [columns[k] for k in ds.segment_keys]
    demand = pd.DataFrame({"key": frame[keys].astype(str).agg("|".join, axis=1),
                           "period": period_number(stamps.dt.normalize(), ds.frequency),  # any day of a period
                           "y": quantity.fillna(0.0)}).dropna()
    per = demand.groupby(["key", "period"])["y"].sum().clip(lower=0).reset_index()
    last = int(per["period"].max())
    first = per.groupby("key")["period"].min()
    n_periods = last - first + 1
    nonzero = per[per["y"] > 0].groupby("key")["period"].agg(["count", "max"]).reindex(first.index)
    n_nonzero = nonzero["count"].fillna(0)
    zero_share = 1 - n_nonzero / n_periods
    idle = last - nonzero["max"]
    inactive = idle.isna() | (idle >= features.inactive_after(ds.frequency))
    short = n_periods < features.min_history_periods
    sparse = (n_nonzero < features.min_nonzero_periods) | (n_nonzero / n_periods < features.min_nonzero_share)
    classes = pd.Series("active", index=first.index)
    classes[zero_share >= e.intermittent_zero_share] = "intermittent"
    classes[short] = "new"
    classes[inactive] = "inactive"
    eligible = ~(inactive | short | sparse)
    found.say("segments", f"by {list(ds.segment_keys)}: {len(first):,} in the sample")
    found.say("history", f"periods from first sale to the sample's last one: median {int(n_periods.median()):,}, "
                         f"shortest {int(n_periods.min()):,}, longest {int(n_periods.max()):,}")
    counts = classes.value_counts()
    found.say("lifecycle", ", ".join(f"{c} {int(counts.get(c, 0)):,}" for c in ("active", "intermittent", "new",
                                                                                 "inactive"))
              + f" (estimated on the sample); eligible for a model: {int(eligible.sum()):,}")
    needed = 2 * season_length(ds.frequency) + ds.horizon + (e.windows - 1) * e.step
    backtested = int((n_periods >= needed).sum())
    text = (f"{e.windows} windows of {ds.horizon} periods, {e.step} apart, need {needed} periods of history "
            f"(two seasons to train on): {backtested:,} segments have them")
    if eligible.sum() and not backtested:
        found.problem("backtests", text + "; lower evaluation.windows or the horizon, or give more history")
    else:
        found.say("backtests", text)


def check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lakecast check",
                                     description="the config and a sample of its source, in seconds, without Spark")
    parser.add_argument("--config", default=None, help="config file (default: LAKECAST_CONFIG or conf/lakecast.yaml)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the source to read")
    args = parser.parse_args(argv)
    found = inspect_source(load_config(args.config), args.rows)
    print("lakecast check:")
    for topic, text in found.lines:
        print(f"  {topic:<10} {text}")
    if found.problems:
        print(f"lakecast check: {len(found.problems)} problem(s): fix them and run it again", file=sys.stderr)
        return 2
    print("lakecast check: the source can be ingested as configured")
    return 0


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    return {"init": init, "check": check}[command](rest)
