"""The config loader refuses every bad setting at load time, with the key, the value and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobs.common.config import DEFAULT_CONFIG, load_config
from jobs.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lakecast.yaml"
    path.write_text(text)
    return path


def demo_text(**replacements: str) -> str:
    """The bundled config's text with some lines replaced (old line -> new line)."""
    text = DEFAULT_CONFIG.read_text().replace("root: ../lake", "root: lake")
    text = text.replace("source: ../data/", f"source: {ROOT / 'data'}/")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_bundled_configs_load():
    for name in ("lakecast.yaml", "walmart_weekly.yaml", "pbs_monthly.yaml"):
        cfg = load_config(ROOT / "conf" / name)
        assert cfg.evaluation.step >= 1 and cfg.dataset.segment_keys


def test_yaml_boolean_trap_names_the_key_and_the_fix(tmp_path):
    message = error_of(write(tmp_path, demo_text(**{"holidays_country: GB": "holidays_country: NO"})))
    assert "dataset.holidays_country = False" in message
    assert "quote the value" in message
    quoted = load_config(write(tmp_path, demo_text(**{"holidays_country: GB": "holidays_country: 'NO'"})))
    assert quoted.dataset.holidays_country == "NO"


def test_every_problem_is_listed_in_one_error(tmp_path):
    text = demo_text(**{
        "horizon: 28 ": 'horizon: "28" ',
        "min_nonzero_share: 0.05": "min_nonzero_share: 0.05\n  min_nonzero_perods: 3",
        "interval_width: 0.8": "interval_width: 1.5",
        "rule: portfolio": "rule: portfolo",
        "retrain_day_of_month: 1": "retrain_day_of_month: 31",
    })
    message = error_of(write(tmp_path, text))
    assert "(5 problems)" in message
    assert "dataset.horizon = '28'" in message and "without quotes" in message
    assert "features.min_nonzero_perods = 3: unknown key" in message and "min_nonzero_periods" in message
    assert "model.interval_width = 1.5: Input should be less than 1" in message
    assert "evaluation.rule = 'portfolo'" in message and "'portfolio'" in message
    assert "schedule.retrain_day_of_month = 31" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("segment_keys: [item_id]", "segment_keys: [store]", "segment_keys ['store'] must be drawn from"),
        ("candidates: [seasonal_naive, ", "candidates: [", "include seasonal_naive"),
        ("  sales: bronze.sales", "  sales: bronze.sales\n  sails: bronze.sails", "unknown tables ['sails']"),
        ("lake:\n", "laek:\n  root: x\nlake:\n", "laek = "),
        ("    quantity: Quantity\n", "    quantity: Quantity\n    price: Price\n", "unknown roles ['price']"),
        ("  timestamp_format: M/d/yyyy H:mm", "  timestamp_format: 1", "quote the value"),
        ("  allow_demo_key: true", "  allow_demo_key: 'yes'", "write it without quotes"),
        ("  windows: 4", "  windows: 0", "evaluation.windows = 0: Input should be greater than or equal to 1"),
        ("max_abs_quantity: 1.0e+9", "max_abs_quantity: 1e9", "e.g. 1.0e+9"),
        ("    group_by: null", "    group_by: store", "group_by 'store' must be one of dataset.segment_keys"),
        ("    static_features: []", "    static_features: [store]", "static_features ['store'] must be among"),
    ],
)
def test_bad_settings_are_refused(tmp_path, old, new, expected):
    assert expected in error_of(write(tmp_path, demo_text(**{old: new})))


def test_missing_section_and_broken_yaml(tmp_path):
    raw = yaml.safe_load(demo_text())
    del raw["dataset"]
    assert "dataset: required" in error_of(write(tmp_path, yaml.safe_dump(raw)))
    assert "not valid YAML" in error_of(write(tmp_path, "lake: [unclosed\n"))


def test_a_job_exits_2_on_a_bad_config_without_touching_the_lake(tmp_path):
    path = write(tmp_path, demo_text(**{"frequency: daily": "frequency: hourly"}))
    result = subprocess.run(
        [sys.executable, "-m", "jobs.ingest", "--run-date", "2011-12-09", "--config", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "dataset.frequency = 'hourly'" in result.stderr
    assert not (tmp_path / "lake").exists()


def test_a_local_master_computes_delta_state_in_one_task_per_core(spark):
    """Delta's default of 50 snapshot tasks is sized for a cluster; lakecast's session on a local
    master (also under spark-submit) uses one per core unless spark.conf sets it."""
    from jobs.common.spark import SNAPSHOT_PARTITIONS

    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get(SNAPSHOT_PARTITIONS) == "2"


def test_driver_java_options_from_the_environment_follow_lakecasts_own(monkeypatch, tmp_path):
    from jobs.common.spark import DRIVER_JAVA_OPTIONS_ENV, session_conf

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)  # a local run, not under spark-submit
    monkeypatch.setenv("LAKECAST_LAKE", str(tmp_path / "lake"))  # its metastore folder is made here
    monkeypatch.setenv(DRIVER_JAVA_OPTIONS_ENV, "-XX:TieredStopAtLevel=1  -Xss4m")
    options = session_conf(load_config(None))["spark.driver.extraJavaOptions"].split(" ")
    assert options[0].startswith("-Dlog4j2.configurationFile=file:")
    assert options[-2:] == ["-XX:TieredStopAtLevel=1", "-Xss4m"]
    monkeypatch.setenv(DRIVER_JAVA_OPTIONS_ENV, "")
    assert session_conf(load_config(None))["spark.driver.extraJavaOptions"].split(" ") == options[:-2]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    changepoint_prior_scale: 0.05", "    changepoint_prior_scale: 0.05\n    changepoint_prior: 0.1",
         "['changepoint_prior'] is not an argument of Prophet(...)"),
        ("    changepoint_prior_scale: 0.05", "    changepoint_prior_scale: 0.05\n    stan_backend: CMDSTANPY",
         "lakecast does not pass ['stan_backend'] to Prophet"),
        ("    fitter: batch", "    fitter: fast", "fitter must be one of ['batch', 'stan']"),
        ("holidays_country: GB", "holidays_country: XX", "the holidays package has no calendar for 'XX'"),
        ("candidates: [seasonal_naive, ", "candidates: [seasonal_naive, zero, ", "['zero'] cannot be a candidate: candidates are drawn from"),
        ("  horizon: 28 ", "  horizon: 28\n  horizon: 14 ", "the key 'horizon' is written twice in one section"),
    ],
)
def test_settings_checked_against_the_libraries_and_duplicates_are_refused(tmp_path, old, new, expected):
    assert expected in error_of(write(tmp_path, demo_text(**{old: new})))
