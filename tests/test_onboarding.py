"""Your own sales file, from the README alone: `lakecast init` proposes a config from a plain CSV the
project has never seen, `lakecast check` validates it without Spark, and every command refuses a
bad config with exit code 2 and one message, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from jobs.cli import main as lakecast

ROOT = Path(__file__).resolve().parents[1]


def daily_store_sku_sales(path: Path, stores: int = 2, skus: int = 6, days: int = 500, seed: int = 3) -> Path:
    """A plain CSV: date, store, sku, units (days without a sale have no row)."""
    rng = np.random.default_rng(seed)
    calendar = pd.date_range("2022-01-03", periods=days, freq="D")
    rows = []
    for s in range(stores):
        for k in range(skus):
            level = rng.gamma(2, 3) * (0.1 if k == 0 else 1)
            units = rng.poisson(level * (1 + 0.3 * np.sin(2 * np.pi * calendar.dayofweek / 7)))
            rows += [(d.strftime("%Y-%m-%d"), f"store {s}", f"SKU-{k:03d}", int(u))
                     for d, u in zip(calendar, units) if u > 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["date", "store", "sku", "units"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    return daily_store_sku_sales(folder / "sales.csv"), folder / "conf" / "sales.yaml"


def test_init_proposes_a_config_that_check_accepts(own, capsys):
    source, config = own
    assert lakecast(["init", str(source), "--out", str(config)]) == 0
    said = capsys.readouterr().out
    assert "timestamp 'date' (yyyy-MM-dd), quantity 'units', segments by store, sku ('sku' as item_id)" in said
    raw = yaml.safe_load(config.read_text())
    dataset = raw["dataset"]
    assert dataset["columns"] == {"timestamp": "date", "quantity": "units", "item_id": "sku"}
    assert dataset["attributes"] == {"store": "store"} and dataset["segment_keys"] == ["store", "item_id"]
    assert (dataset["frequency"], dataset["horizon"], dataset["timestamp_format"]) == ("daily", 28, "yyyy-MM-dd")
    assert (config.parent / dataset["source"]).resolve() == source.resolve()
    assert lakecast(["init", str(source), "--out", str(config)]) == 2  # never overwrites unasked

    assert lakecast(["check", "--config", str(config)]) == 0
    lines = capsys.readouterr().out
    assert "100.0% parse with 'yyyy-MM-dd': 2022-01-03 .. 2023-05-17" in lines
    assert "by ['store', 'item_id']: 12 in the sample" in lines
    assert "eligible for a model: 12" in lines and "the source can be ingested as configured" in lines


def test_check_names_what_does_not_fit_the_source(own, tmp_path, capsys):
    source, config = own
    raw = yaml.safe_load(config.read_text())
    raw["dataset"]["source"] = str(source)
    raw["dataset"]["columns"]["quantity"] = "qty"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(raw))
    assert lakecast(["check", "--config", str(wrong)]) == 2
    assert "PROBLEM: not in the source: columns.quantity = 'qty'; its columns: date, store, sku, units" in \
        capsys.readouterr().out
    raw["dataset"]["columns"]["quantity"] = "units"
    raw["dataset"]["timestamp_format"] = "d/M/yyyy"
    wrong.write_text(yaml.safe_dump(raw))
    assert lakecast(["check", "--config", str(wrong)]) == 2
    assert "the values read as 'yyyy-MM-dd'" in capsys.readouterr().out
    raw["dataset"]["timestamp_format"] = "yyyy-MM-dd"
    raw["dataset"]["frequency"] = "weekly"
    wrong.write_text(yaml.safe_dump(raw))
    assert lakecast(["check", "--config", str(wrong)]) == 2  # daily dates summed per week: fine, but then
    said = capsys.readouterr().out                             # 71 weeks are too short for 28-week windows
    assert "weekly: the dates are daily apart, summed per weekly period" in said
    assert "PROBLEM: 4 windows of 28 periods, 28 apart, need 216 periods of history" in said


BAD = {
    "unknown key": lambda raw: raw["features"].update(min_history_period=10),
    "wrong type": lambda raw: raw["dataset"].update(horizon="28"),
    "unknown candidate": lambda raw: raw["evaluation"].update(candidates=["seasonal_naive", "zero"]),
    "unknown Prophet argument": lambda raw: raw["model"]["prophet"].update(seasonality_prior=3),
    "unknown holiday country": lambda raw: raw["dataset"].update(holidays_country="XX"),
}
COMMANDS = {
    **{job: ["--run-date", "2011-12-09"] for job in ("ingest", "features", "accuracy", "monitor", "evaluate",
                                                       "train", "score", "run", "summary", "report")},
    "backfill": ["--start", "2011-12-08", "--end", "2011-12-09"], "forget": ["--customer-id", "12345"],
    "maintain": [], "dictionary": ["--check"], "sql-server": [], "check": [],
}


def bad_configs(folder: Path) -> dict[str, Path]:
    from tests.conftest import write_config

    out = {}
    for name, spoil in BAD.items():
        raw = yaml.safe_load(write_config(folder / "base").path.read_text())
        spoil(raw)
        path = folder / f"{name.replace(' ', '_')}.yaml"
        path.write_text(yaml.safe_dump(raw))
        out[name] = path
    duplicated = folder / "duplicated_key.yaml"
    text = (folder / "base" / "lakecast.yaml").read_text()
    duplicated.write_text(text.replace("  horizon: 28\n", "  horizon: 28\n  horizon: 14\n"))
    out["duplicated key"] = duplicated
    return out


def test_every_command_refuses_a_bad_config_with_exit_2_and_no_traceback(tmp_path, capsys, caplog):
    configs = bad_configs(tmp_path)
    assert "horizon: 14" in configs["duplicated key"].read_text()
    for command, args in COMMANDS.items():
        for problem, path in configs.items():
            capsys.readouterr()
            caplog.clear()
            code = lakecast([command, *args, "--config", str(path)])
            said = capsys.readouterr().err + caplog.text
            assert code == 2, (command, problem, said)
            assert "Traceback" not in said and said.count("invalid") + said.count("twice") >= 1, (command, problem, said)
    # and as a process: the exit code the shell sees
    result = subprocess.run([sys.executable, "-m", "jobs.cli", "summary", "--run-date", "2011-12-09", "--config",
                             str(configs["unknown holiday country"])], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "dataset.holidays_country = 'XX': the holidays package has no calendar for 'XX'" in result.stderr


def test_version():
    result = subprocess.run([sys.executable, "-m", "jobs.cli", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.startswith("lakecast ")
