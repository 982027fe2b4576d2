"""Reductions over integer group codes (numpy, no Python loop over rows).

Codes are 0..n-1 positions of the group; a code of -1 means "no group" and is
skipped. Empty groups give 0 for counts and sums and NaN for means and maxima.
Values are float; NaN values are ignored by every reduction.
"""

from __future__ import annotations

import numpy as np


def _valid(codes: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    keep = codes >= 0
    if values is not None:
        keep &= ~np.isnan(values)
    return keep


def count(codes: np.ndarray, n: int, values: np.ndarray | None = None) -> np.ndarray:
    """Rows per group (only rows whose value is not NaN when values are given)."""
    keep = _valid(codes, values)
    return np.bincount(codes[keep], minlength=n).astype(np.float64)


def total(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum of values per group."""
    keep = _valid(codes, values)
    return np.bincount(codes[keep], weights=values[keep], minlength=n)


def mean(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mean of values per group (NaN for a group without values)."""
    counts = count(codes, n, values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total(codes, values, n) / counts, np.nan)


def maximum(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Maximum of values per group (NaN for a group without values)."""
    out = np.full(n, np.nan)
    keep = _valid(codes, values)
    np.fmax.at(out, codes[keep], values[keep])
    return out


def unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (sort-based: faster than np.unique's hashing)."""
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def distinct(codes: np.ndarray, keys: np.ndarray, n: int) -> np.ndarray:
    """Number of distinct non-negative integer keys per group."""
    keep = (codes >= 0) & (keys >= 0)
    width = int(keys.max(initial=0)) + 1
    pairs = unique(codes[keep].astype(np.int64) * width + keys[keep].astype(np.int64))
    return np.bincount(pairs // width, minlength=n).astype(np.float64)


class Lookup:
    """Positions into a table (-1 = not found), prepared once to gather many columns."""

    def __init__(self, positions: np.ndarray):
        self.index = np.maximum(positions, 0)
        self.missing = np.flatnonzero(positions < 0)
        self.size = len(positions)

    def take(self, values: np.ndarray) -> np.ndarray:
        """values at the positions (float values), NaN where not found."""
        if len(values) == 0:
            return np.full(self.size, np.nan, dtype=values.dtype)
        out = values[self.index]
        out[self.missing] = np.nan
        return out


def take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions] for float values, NaN where the position is -1 (not found)."""
    return Lookup(positions).take(values)
