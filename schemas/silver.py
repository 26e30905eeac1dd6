"""Contract of the silver layer: demand per segment and period."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
)

from schemas import TableContract, col


def segment_columns(keys: Iterable[str]) -> list:
    """The segment key columns, then ``segment_id`` (the keys joined with '|')."""
    return [col(k, StringType(), f"Segment key {k!r}", False) for k in keys] + [
        col("segment_id", StringType(), "Segment keys joined with '|'", False)
    ]


def demand_contract(keys: Iterable[str], regressors: Iterable[str] = ()) -> TableContract:
    """``silver.demand``: one row per segment and period, complete calendar, as of a run date."""
    return TableContract(
        schema=StructType(
            segment_columns(keys)
            + [
                col("ds", DateType(), "Period start (weeks start on Monday)", False),
                col("y", DoubleType(), "Net demand in the period; null when the business was closed"),
                col("n_lines", LongType(), "Source lines behind y", False),
                col("is_closed", BooleanType(), "No invoices at all for any segment in the period", False),
                col("is_holiday", BooleanType(), "A public holiday falls in the period", False),
                col("holiday_name", StringType(), "Names of the holidays in the period"),
                col("day_of_week", IntegerType(), "1 = Monday ... 7 = Sunday (period start)", False),
                col("week_of_year", IntegerType(), "ISO week of the period start", False),
                col("month", IntegerType(), "Month of the period start", False),
                col("quarter", IntegerType(), "Quarter of the period start", False),
                col("year", IntegerType(), "Year of the period start", False),
            ]
            + [col(r, DoubleType(), f"Regressor {r!r}, mean over the period") for r in regressors]
            + [
                col("eligible", BooleanType(), "Enough history for a model; else baseline only", False),
                col("ineligible_reason", StringType(), "Why the segment is not eligible"),
                col("lifecycle", StringType(),
                    "The segment at the run date: active, intermittent (mostly zero periods), new (too "
                    "little history), inactive (no demand in the last features.inactive_periods)", False),
                col("as_of_date", DateType(), "Run date the table was built for", False),
                col("run_id", StringType(), "Run that built the table", False),
            ]
        ),
        comment="Demand per segment and period with calendar, holiday and eligibility features.",
        zorder_by=("segment_id",),
    )
