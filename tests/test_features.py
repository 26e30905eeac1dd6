"""Features: zero-filled versus closed periods, every frequency, holidays, eligibility."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.common.config import FeaturesConfig
from jobs.features import build_demand, holiday_frame

D = dt.date
LAX = FeaturesConfig(min_history_periods=1, min_nonzero_periods=1, min_nonzero_share=0.0)


def sales_frame(spark, rows):
    """rows: (country, item_id, event_date, quantity, line_type)."""
    return spark.createDataFrame(
        rows, "country string, item_id string, event_date date, quantity double, line_type string"
    )


def as_dict(df, keys=("item_id",)):
    return {
        (*[r[k] for k in keys], r.ds): (r.y, r.is_closed)
        for r in df.collect()
    }


@pytest.fixture
def no_holidays(spark):
    return holiday_frame(spark, None, D(2011, 1, 1), D(2011, 1, 2))


def test_zero_fill_versus_closed_days(spark, no_holidays):
    sales = sales_frame(
        spark,
        [
            ("UK", "A", D(2011, 1, 3), 5.0, "sale"),
            ("UK", "B", D(2011, 1, 4), 2.0, "sale"),
            ("UK", "POST", D(2011, 1, 4), 1.0, "non_product"),
            # 2011-01-05: no invoices at all -> closed for everyone
            ("UK", "A", D(2011, 1, 6), 3.0, "sale"),
            ("UK", "B", D(2011, 1, 6), -4.0, "cancellation"),
            ("UK", "B", D(2011, 1, 6), 1.0, "sale"),
            ("UK", "A", D(2011, 1, 7), 9.0, "sale"),  # after the run date: ignored
        ],
    )
    out = build_demand(
        sales, no_holidays, keys=("item_id",), frequency="daily", run_date=D(2011, 1, 6), features=LAX
    )
    assert as_dict(out) == {
        ("A", D(2011, 1, 3)): (5.0, False),
        ("A", D(2011, 1, 4)): (0.0, False),  # open, no sale: zero demand
        ("A", D(2011, 1, 5)): (None, True),  # closed: not zero demand
        ("A", D(2011, 1, 6)): (3.0, False),
        ("B", D(2011, 1, 4)): (2.0, False),  # calendar starts at the first sale
        ("B", D(2011, 1, 5)): (None, True),
        ("B", D(2011, 1, 6)): (0.0, False),  # net -3 clipped at zero
    }
    row = out.filter("item_id = 'A' and ds = '2011-01-03'").first()
    assert (row.day_of_week, row.month, row.quarter, row.year, row.segment_id) == (1, 1, 1, 2011, "A")


@pytest.mark.parametrize(
    "frequency, run_date, expected",
    [
        # weeks start on Monday; the week of the run date (Wed 2011-01-19) is incomplete
        ("weekly", D(2011, 1, 19), {D(2011, 1, 3): 6.0, D(2011, 1, 10): 0.0}),
        ("weekly", D(2011, 1, 23), {D(2011, 1, 3): 6.0, D(2011, 1, 10): 0.0, D(2011, 1, 17): 4.0}),
        ("monthly", D(2011, 3, 31), {D(2011, 1, 1): 10.0, D(2011, 2, 1): 0.0, D(2011, 3, 1): 7.0}),
        ("quarterly", D(2011, 6, 30), {D(2011, 1, 1): 17.0, D(2011, 4, 1): 7.0}),
    ],
)
def test_each_frequency(spark, no_holidays, frequency, run_date, expected):
    rows = [
        ("UK", "A", D(2011, 1, 3), 2.0, "sale"),
        ("UK", "A", D(2011, 1, 8), 4.0, "sale"),
        ("UK", "X", D(2011, 1, 12), 1.0, "sale"),  # keeps the week of 01-10 open
        ("UK", "A", D(2011, 1, 18), 4.0, "sale"),
        ("UK", "X", D(2011, 2, 15), 1.0, "sale"),
        ("UK", "A", D(2011, 3, 2), 7.0, "sale"),
        ("UK", "A", D(2011, 4, 20), 7.0, "sale"),
    ]
    out = build_demand(
        sales_frame(spark, rows), no_holidays, keys=("item_id",), frequency=frequency,
        run_date=run_date, features=LAX,
    ).filter("item_id = 'A'")
    assert {r.ds: r.y for r in out.collect()} == expected


def test_holidays_and_country_by_product_segments(spark):
    hol = holiday_frame(spark, "GB", D(2011, 1, 1), D(2011, 1, 10))
    sales = sales_frame(
        spark,
        [
            ("UK", "A", D(2011, 1, 3), 1.0, "sale"),
            ("FR", "A", D(2011, 1, 3), 2.0, "sale"),
            ("UK", "A", D(2011, 1, 4), 3.0, "sale"),
        ],
    )
    out = build_demand(
        sales, hol, keys=("country", "item_id"), frequency="daily", run_date=D(2011, 1, 4), features=LAX
    )
    got = {(r.segment_id, r.ds): (r.y, r.is_holiday) for r in out.collect()}
    assert got == {
        ("UK|A", D(2011, 1, 3)): (1.0, True),  # New Year's Day (observed) in England
        ("UK|A", D(2011, 1, 4)): (3.0, False),
        ("FR|A", D(2011, 1, 3)): (2.0, True),
        ("FR|A", D(2011, 1, 4)): (0.0, False),
    }
    assert "New Year" in out.filter("ds = '2011-01-03'").first().holiday_name


def test_eligibility_flags_short_and_sparse_segments_without_dropping_them(spark, no_holidays):
    days = [D(2011, 1, 1) + dt.timedelta(days=i) for i in range(30)]
    rows = [("UK", "DENSE", d, 1.0 + i % 3, "sale") for i, d in enumerate(days)]
    rows += [("UK", "SPARSE", days[0], 1.0, "sale"), ("UK", "SPARSE", days[15], 1.0, "sale")]
    rows += [("UK", "NEW", days[-3], 2.0, "sale")]
    rules = FeaturesConfig(min_history_periods=10, min_nonzero_periods=3, min_nonzero_share=0.2)
    out = build_demand(
        sales_frame(spark, rows), no_holidays, keys=("item_id",), frequency="daily",
        run_date=days[-1], features=rules,
    )
    flags = {r.item_id: (r.eligible, r.ineligible_reason) for r in out.collect()}
    assert flags["DENSE"] == (True, None)
    assert flags["SPARSE"] == (False, "too_sparse: 2 periods with demand < 3")
    assert flags["NEW"] == (False, "too_short: 3 open periods < 10")
    assert out.filter("item_id = 'NEW'").count() == 3


def test_a_series_feed_keeps_only_reported_periods_and_finds_stopped_series_inactive(spark, no_holidays):
    months = [D(2010, m, 1) for m in range(1, 13)] + [D(2011, m, 1) for m in range(1, 7)]
    rows = [("AU", "RUNNING", d, 10.0 + i, "sale") for i, d in enumerate(months)]
    rows += [("AU", "STOPPED", d, 5.0, "sale") for d in months[:4]]  # last reported 2010-04
    rows += [("AU", "STOPPED_ZERO", d, 5.0 if d < D(2010, 3, 1) else 0.0, "sale") for d in months]
    rows += [("AU", "LATE", d, 3.0, "sale") for d in months if d >= D(2011, 3, 1)]
    rows += [("AU", "NEVER", d, 0.0, "sale") for d in months]
    features = FeaturesConfig(min_history_periods=6, min_nonzero_periods=2, min_nonzero_share=0.05)
    out = build_demand(spark.createDataFrame(rows, "country string, item_id string, event_date date, "
                                                   "quantity double, line_type string"),
                       no_holidays, keys=("item_id",), frequency="monthly", run_date=D(2011, 6, 30),
                       features=features, missing_periods="not_reported")
    by_segment = {r.segment_id: r for r in out.groupBy("segment_id").agg(
        F.count("*").alias("n"), F.max("ds").alias("last"), F.first("lifecycle").alias("lifecycle"),
        F.first("ineligible_reason").alias("reason")).collect()}
    assert by_segment["STOPPED"].n == 4 and by_segment["STOPPED"].last == D(2010, 4, 1)  # no zero-fill after
    assert {s: r.lifecycle for s, r in by_segment.items()} == {
        "RUNNING": "active", "STOPPED": "inactive", "STOPPED_ZERO": "inactive", "LATE": "new", "NEVER": "inactive"}
    assert by_segment["STOPPED"].reason == \
        "inactive: no demand in the last 14 periods (>= features.inactive_periods 12)"
    assert by_segment["NEVER"].reason == "inactive: no demand in the history"
    # the same drop as a transactions feed: every period to the run date, zero where nothing was sold
    filled = build_demand(spark.createDataFrame(rows, "country string, item_id string, event_date date, "
                                                      "quantity double, line_type string"),
                          no_holidays, keys=("item_id",), frequency="monthly", run_date=D(2011, 6, 30),
                          features=features)
    assert filled.filter("segment_id = 'STOPPED'").count() == 18
