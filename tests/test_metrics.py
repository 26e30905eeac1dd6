"""Forecast metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jobs.evaluation.metrics import seasonal_naive_scale, window_metrics

Y = [10.0, 0.0, 5.0, 5.0]
YHAT = [8.0, 2.0, 5.0, 9.0]
LOWER = [6.0, 0.0, 4.0, 6.0]
UPPER = [12.0, 3.0, 6.0, 8.0]
HISTORY = [1, 2, 3, 4, 5, 6, 7, 3, 2, 3, 4, 5, 6, 9]  # seasonal diffs (m=7): 2,0,0,0,0,0,2


def test_metrics_match_hand_computed_values():
    scale = seasonal_naive_scale(np.array(HISTORY, dtype=float), 7)
    assert scale == pytest.approx(4 / 7)
    m = window_metrics(Y, YHAT, LOWER, UPPER, scale=scale, interval_width=0.8)
    assert m["mae"] == pytest.approx(2.0)
    assert m["rmse"] == pytest.approx(math.sqrt(6.0))
    assert m["wape"] == pytest.approx(8 / 20)
    assert m["smape"] == pytest.approx((4 / 18 + 4 / 2 + 0 + 8 / 14) / 4)
    assert m["mase"] == pytest.approx(2.0 / (4 / 7))
    assert m["bias"] == pytest.approx(1.0)
    assert m["coverage"] == pytest.approx(0.75)
    # pinball at 0.1 on the lower bounds: (0.4 + 0 + 0.1 + 0.9) / 4; at 0.9 on the upper: 0.9 / 4
    assert m["pinball"] == pytest.approx((0.35 + 0.225) / 2)
    # errors -2 (short), +2, 0, +4 (over): unit costs 1 both ways -> 8 / 4
    assert m["cost"] == pytest.approx(2.0)


def test_cost_weighs_under_and_over_forecasting_by_their_unit_costs():
    m = window_metrics(Y, YHAT, LOWER, UPPER, scale=1.0, interval_width=0.8, cost_under=3.0, cost_over=0.5)
    # short by 2 once (3 x 2 = 6), over by 2 and 4 (0.5 x 6 = 3): 9 / 4 periods
    assert m["cost"] == pytest.approx(9 / 4)


def test_undefined_metrics_are_nan_not_invented():
    flat = seasonal_naive_scale(np.array([3.0] * 14), 7)
    assert math.isnan(flat)
    m = window_metrics([0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0], scale=flat, interval_width=0.8)
    assert math.isnan(m["wape"]) and math.isnan(m["mase"])
    assert m["smape"] == pytest.approx(1.0)  # 0/0 counts as a perfect period, 2*1/1 = 2
    assert all(math.isnan(v) for v in window_metrics([], [], [], [], scale=1.0, interval_width=0.8).values())


def test_closed_periods_in_the_history_are_skipped_in_the_scale():
    history = np.array([1, 2, 3, 4, 5, 6, np.nan, 3, 2, 3, 4, 5, 6, 9], dtype=float)
    assert seasonal_naive_scale(history, 7) == pytest.approx(2 / 6)


def test_every_metric_has_a_column_in_the_backtest_contract():
    from jobs.core.names import METRICS
    from schemas.gold import METRIC_COMMENTS, backtest_metrics_contract

    assert tuple(METRIC_COMMENTS) == METRICS
    assert set(METRICS) <= set(backtest_metrics_contract(["item_id"]).columns)
