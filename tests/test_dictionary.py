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
