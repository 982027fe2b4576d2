"""The rows a compiled model is checked on, and the check's measure."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest

from services.processor import parity
from tests.conftest import REPO


@pytest.fixture(scope="module")
def booster():
    return lightgbm.Booster(model_file=str(REPO / "trained_models" / "cluster_scorer_v1.0.0.txt"))


def test_probe_rows_put_inputs_on_both_sides_of_every_numerical_threshold(booster):
    rows = parity.probe_rows(booster)
    assert rows.shape == (parity.PROBE_ROWS, booster.num_feature())
    assert rows.dtype == np.float64 and rows.flags["C_CONTIGUOUS"]
    assert np.array_equal(rows, parity.probe_rows(booster), equal_nan=True)  # seeded
    numeric, categorical = parity.split_values(booster)
    assert numeric and categorical  # the shipped cluster scorer has both kinds of split
    for j, thresholds in numeric.items():
        values = rows[:, j]
        assert np.isnan(values).any()
        for t in thresholds[:: max(1, len(thresholds) // 20)]:  # a spread of them
            if abs(t) < 1e30:  # LightGBM's open-ended splits have nothing above them
                assert (values <= t).any() and (values > t).any(), (j, t)
    for j, categories in categorical.items():
        assert set(categories) <= set(rows[:, j][~np.isnan(rows[:, j])])


def test_probe_values_are_float32_inputs_nearest_the_threshold():
    near = parity._near(np.array([0.1]))
    below, at, above = near[:3]
    assert np.float32(at) == at and np.float32(below) == below and np.float32(above) == above
    assert below < at < above and below <= 0.1 <= above
    assert np.nextafter(np.float32(below), np.float32(1)) == np.float32(at)


def test_sample_positions_spread_evenly_and_take_every_row_of_a_small_frame():
    assert parity.sample_positions(5).tolist() == [0, 1, 2, 3, 4]
    spread = parity.sample_positions(1_000_000)
    assert len(spread) == parity.SAMPLE_ROWS and spread[0] == 0 and spread[-1] == 999_999
    assert np.diff(spread).max() - np.diff(spread).min() <= 1
    assert parity.sample_positions(0).tolist() == []


def test_max_abs_diff_counts_nan_on_one_side_as_infinite():
    a = np.array([0.5, np.nan, 0.25])
    assert parity.max_abs_diff(a, np.array([0.5, np.nan, 0.25 + 1e-12])) == pytest.approx(1e-12)
    assert parity.max_abs_diff(a, np.array([0.5, 0.1, 0.25])) == np.inf
    assert parity.max_abs_diff(a[:0], a[:0]) == 0.0
