"""Ensemble selection's weights, on forecasts made up so that the right answer is known."""

import numpy as np
import pandas as pd
import pytest

from jobs.evaluation.ensemble import greedy_weights


def _forecasts(offsets: dict[str, float], segments: int = 6, windows: int = 3, periods: int = 5) -> pd.DataFrame:
    """Each member forecasts the actuals plus its offset; MASE scale 1."""
    rng = np.random.default_rng(1)
    index = pd.MultiIndex.from_product([[f"s{i}" for i in range(segments)], range(1, windows + 1), range(periods)],
                                       names=["segment_id", "window", "ds"]).to_frame(index=False)
    index["actual"] = rng.gamma(2.0, 10.0, len(index))
    return pd.concat([index.assign(model=name, yhat=index["actual"] + offset, scale=1.0)
                      for name, offset in offsets.items()], ignore_index=True)


def test_one_selection_over_every_member_finds_the_pair_whose_errors_cancel():
    forecasts = _forecasts({"far": 10.0, "over": 2.0, "under": -2.0})
    weights, loss = greedy_weights(forecasts, ["far", "over", "under"], metric="mase", bags=1, share=1.0)
    assert weights == pytest.approx({"far": 0.0, "over": 0.5, "under": 0.5})
    assert loss == pytest.approx(0.0)


def test_bagged_weights_spread_over_the_members_that_are_good_without_the_best_and_repeat_exactly():
    forecasts = _forecasts({"far": 10.0, "over": 2.0, "under": -2.0, "exact": 0.0})
    members = ["far", "over", "under", "exact"]
    one, _ = greedy_weights(forecasts, members, metric="mase", bags=1, share=1.0)
    assert one == pytest.approx({"far": 0.0, "over": 0.0, "under": 0.0, "exact": 1.0})
    bagged, loss = greedy_weights(forecasts, members, metric="mase")
    assert sum(bagged.values()) == pytest.approx(1.0)
    # a draw of two without "exact" learns a mix of the other two (five of "under" and one of
    # "far" cancel out too): the weight is spread, the windows' leader keeps the most
    assert 0.0 < bagged["exact"] < 1.0 and bagged["over"] > 0.0 and bagged["under"] > 0.0
    assert max(bagged, key=bagged.get) == "exact"
    # the bagged mix is worse on the data it learned on, by construction: that is the price of
    # not betting everything on the windows' leader
    assert 0.0 < loss < 2.0
    assert greedy_weights(forecasts, members, metric="mase") == (bagged, loss)


def test_a_member_with_no_forecast_gets_no_weight_and_none_learned_means_equal_weights():
    forecasts = _forecasts({"over": 2.0, "under": -2.0})
    weights, _ = greedy_weights(forecasts, ["over", "under", "missing"], metric="wape", bags=1, share=1.0)
    assert weights == pytest.approx({"over": 0.5, "under": 0.5, "missing": 0.0})
    equal, loss = greedy_weights(forecasts.iloc[0:0], ["over", "under"], metric="mase")
    assert equal == {"over": 0.5, "under": 0.5} and np.isnan(loss)
