"""Score spread, same-address consistency and day-over-day stability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from services.validator import behaviour


def test_entropy_is_zero_for_one_bin_and_one_for_uniform():
    assert behaviour.normalised_entropy([0.51, 0.52, 0.55]) == 0.0
    uniform = np.linspace(0.05, 0.95, 10)
    assert behaviour.normalised_entropy(uniform) == pytest.approx(1.0)


def test_entropy_of_two_equal_bins_is_log2_over_log10():
    assert behaviour.normalised_entropy([0.05, 0.05, 0.95, 0.95]) == pytest.approx(math.log(2) / math.log(10))


def test_histogram_keeps_the_edges_and_ignores_nan():
    assert behaviour.histogram([0.0, 1.0, 0.1, float("nan")]) == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert behaviour.normalised_entropy([float("nan")]) is None


def test_same_address_spread():
    frame = pd.DataFrame({"address": ["a", "a", "b", "b", "b", "c"],
                          "score": [0.2, 0.6, 0.5, 0.5, 0.5, 0.9]})
    out = behaviour.address_consistency(frame)
    assert out["addresses_with_several_alerts"] == 2 and out["alerts_involved"] == 5
    assert out["max_range"] == pytest.approx(0.4) and out["widest_address"] == "a"
    assert out["mean_std"] == pytest.approx((0.2 + 0.0) / 2)
    assert behaviour.address_consistency(frame[frame.address == "c"])["addresses_with_several_alerts"] == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.random(50), 1)  # ties
    y = np.round(x + rng.normal(0, 0.3, 50), 1)
    assert behaviour.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert behaviour.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert behaviour.pearson([1, 1, 1], [1, 2, 3]) is None


def test_stability_joins_by_alert_id_and_by_address():
    today = pd.DataFrame({"alert_id": ["t1", "t2", "t3", "s"], "address": ["a", "a", "b", "c"],
                          "score": [0.2, 0.4, 0.8, 0.5]})
    before = pd.DataFrame({"alert_id": ["y1", "y2", "s"], "address": ["a", "b", "d"],
                           "score": [0.3, 0.6, 0.1]})
    out = behaviour.stability(today, before, "2025-10-25")
    assert out["by_alert_id"] == {"common": 1, "spearman": None, "pearson": None,
                                  "mean_abs_diff": pytest.approx(0.4)}
    by_address = out["by_address"]
    assert by_address["common"] == 2
    assert by_address["mean_abs_diff"] == pytest.approx((0.0 + 0.2) / 2)  # a: mean(0.2, 0.4) vs 0.3
    assert by_address["spearman"] == pytest.approx(1.0)


def test_notes_flag_collapsed_scores_and_unstable_days():
    flat = pd.DataFrame({"alert_id": list("abcd"), "address": list("abcd"), "score": [0.5] * 4})
    shuffled = flat.assign(score=[0.9, 0.1, 0.8, 0.2])
    reversed_ = flat.assign(score=[0.1, 0.9, 0.2, 0.8])
    assert any("entropy" in n for n in behaviour.summarise(flat)["notes"])
    summary = behaviour.summarise(shuffled, reversed_, "2025-10-25")
    assert any("Spearman" in n for n in summary["notes"])
    assert behaviour.summarise(shuffled, shuffled, "2025-10-25")["notes"] == []
