"""Parity of a compiled model with LightGBM: the rows it is checked on, and the check.

A compiled model is used only where its scores are within TOLERANCE of LightGBM's: on probe
rows made from the model's own split thresholds when it is loaded, and on a sample of each
date's real rows before they are scored.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-9
PROBE_ROWS = 4_096
SAMPLE_ROWS = 1_024
PROBE_SEED = 0


def _walk(root: dict, numeric: dict[int, set], categories: dict[int, set]) -> None:
    stack = [root]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        if node["decision_type"] == "==":  # categorical: threshold "1||3||7"
            values = categories.setdefault(node["split_feature"], set())
            values.update(float(v) for v in str(node["threshold"]).split("||"))
        else:
            numeric.setdefault(node["split_feature"], set()).add(float(node["threshold"]))
        stack += [node["left_child"], node["right_child"]]


def split_values(booster) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per feature index, the thresholds its numerical splits compare it with, and the
    categories its categorical splits test."""
    numeric: dict[int, set] = {}
    categories: dict[int, set] = {}
    for tree in booster.dump_model()["tree_info"]:
        _walk(tree["tree_structure"], numeric, categories)
    return ({j: np.array(sorted(v)) for j, v in numeric.items()},
            {j: np.array(sorted(v)) for j, v in categories.items()})


_EXTREMES = np.array([np.nan, 0.0, -1.0, np.finfo(np.float32).max, -np.finfo(np.float32).max])


def _near(thresholds: np.ndarray) -> np.ndarray:
    """The float32 inputs nearest each threshold (below, at, above), widened to float64: the
    inputs on which a comparison could go either way; plus NaN, zero and the extremes."""
    with np.errstate(over="ignore"):  # thresholds beyond float32's range: +-inf, as inputs are
        at = thresholds.astype(np.float32)
    below, above = np.nextafter(at, np.float32(-np.inf)), np.nextafter(at, np.float32(np.inf))
    return np.concatenate([below, at, above]).astype(np.float64).tolist() + _EXTREMES.tolist()


def _codes(categories: np.ndarray) -> list[float]:
    """Category codes a categorical split may see: its own, one past the largest, -1, NaN."""
    return categories.tolist() + [categories.max() + 1.0, -1.0, np.nan]


def probe_rows(booster, rows: int = PROBE_ROWS, seed: int = PROBE_SEED) -> np.ndarray:
    """Rows mixing, at random (seeded), each feature's boundary values: a C-order float64 matrix
    on which the model's splits meet inputs on both sides of their thresholds."""
    rng = np.random.default_rng(seed)
    out = np.full((rows, booster.num_feature()), np.nan)
    numeric, categorical = split_values(booster)
    for j, thresholds in numeric.items():
        out[:, j] = rng.choice(_near(thresholds), rows)
    for j, categories in categorical.items():
        out[:, j] = rng.choice(_codes(categories), rows)
    return out


def sample_positions(n: int, rows: int = SAMPLE_ROWS) -> np.ndarray:
    """Row positions spread evenly over n rows (all of them when n <= rows)."""
    return np.unique(np.linspace(0, n - 1, min(n, rows)).astype(np.int64)) if n else \
        np.empty(0, dtype=np.int64)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| (NaN on one side only counts as infinite, on both as equal)."""
    if len(a) == 0:
        return 0.0
    diff = np.abs(a - b)
    both_nan = np.isnan(a) & np.isnan(b)
    diff[both_nan] = 0.0
    diff[np.isnan(diff)] = np.inf
    return float(diff.max())
