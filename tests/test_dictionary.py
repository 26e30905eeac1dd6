"""The data dictionary is generated from the contracts and must be regenerated when they change."""

from __future__ import annotations

from jobs.common import dictionary
from jobs.common.config import load_config
from tests.conftest import write_config


def test_committed_dictionary_is_up_to_date():
    assert dictionary.DICTIONARY.read_text() == dictionary.render(load_config()), (
        "docs/data_dictionary.md is stale: run `.venv/bin/lakecast dictionary` and commit it"
    )
    assert dictionary.main(["--check"]) == 0


def test_a_schema_change_without_regeneration_is_caught(tmp_path):
    base = write_config(tmp_path / "base").raw["dataset"]
    changed = write_config(tmp_path / "changed", {"dataset": {**base, "regressors": {"temperature": "Temp"}}})
    assert "`temperature` | double" in dictionary.render(changed)
    assert dictionary.main(["--check", "--config", str(changed.path)]) == 1


def test_metastore_carries_the_same_column_comments(spark, make_cfg):
    from jobs.common.lake import ensure_table

    cfg = make_cfg()
    ensure_table(spark, cfg, "sales")
    comments = {r.col_name: r.comment for r in spark.sql("DESCRIBE TABLE bronze.sales").collect()}
    assert comments["customer_hash"] == "HMAC-SHA256 of the customer id under the secret key (hex); the raw id is never stored"
    assert "Raw sales lines" in spark.sql("DESCRIBE TABLE EXTENDED bronze.sales").filter(
        "col_name = 'Comment'").first().data_type


def test_the_configuration_reference_names_every_key_and_variable_and_is_up_to_date():
    import re
    from pathlib import Path

    from jobs.common.config import ENVIRONMENT, sections

    text = dictionary.CONFIGURATION.read_text()
    assert text == dictionary.render_configuration(), (
        "docs/configuration.md is stale: run `.venv/bin/lakecast dictionary` and commit it")
    for name, section in sections().items():
        for key, field in section.model_fields.items():
            assert field.description, f"{name}.{key} has no meaning in jobs.common.config.MEANINGS"
            assert f"`{key}`" in text
    root = Path(dictionary.PROJECT_DIR)
    used = set()
    for path in [*root.joinpath("jobs").rglob("*.py"), *root.joinpath("dags").rglob("*.py"), root / "Makefile"]:
        used |= set(re.findall(r"(?<![A-Z_])LAKECAST_[A-Z_]+", path.read_text()))
    assert used <= set(ENVIRONMENT), f"variables read but not documented: {sorted(used - set(ENVIRONMENT))}"
    assert all(f"`{v}`" in text for v in ENVIRONMENT)
