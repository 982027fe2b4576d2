"""Recency weights of the learner's binary models: newer labelled days weigh more."""

import numpy as np
import pandas as pd
import pytest

from services.processor.dataset import Part
from services.processor.train import SPECS, ModelSpec, fit, recency_weights


def test_the_newest_date_weighs_one_and_each_half_life_halves_it():
    dates = np.array(["2025-10-10", "2025-10-03", "2025-10-10", "2025-09-26"])
    assert recency_weights(dates, None) is None and recency_weights(dates, 0) is None
    assert recency_weights(dates, 7.0) == pytest.approx([1.0, 0.5, 1.0, 0.25])


def _flipping_history(n: int = 4000) -> Part:
    """Two days on which one feature means the opposite: the old day's positives have x > 0,
    the newest day's positives have x < 0 (the old day holds three times the rows)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    old = np.arange(n) < 3 * n // 4
    label = np.where(old, x > 0, x < 0).astype(np.int64)
    dates = np.where(old, "2025-10-01", "2025-10-08")
    return Part(pd.DataFrame({"x": x.astype(np.float32)}), label, dates)


@pytest.mark.parametrize("half_life, newest_wins", [(None, False), (1.0, True)])
def test_a_short_half_life_follows_the_newest_day(half_life, newest_wins):
    spec = ModelSpec("alert_scorer", "alerts", {**SPECS[0].params, "min_data_in_leaf": 20}, 20)
    booster = fit(spec, _flipping_history(), half_life)
    low, high = booster.predict(np.array([[-1.5], [1.5]]))
    # Unweighted, the old day's three quarters decide; with a 1-day half-life the newest
    # day's rows weigh 2**7 times as much and its meaning wins.
    assert bool(low > high) == newest_wins
