"""How the scores behave, beyond being valid: spread, same-address agreement, day-over-day stability.

None of these fail the gate; the subnet's validator weighs them, so the report
shows them with a short note when a value looks unhealthy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10
LOW_ENTROPY = 0.3      # below this the scores sit in two or three of ten bins
LOW_STABILITY = 0.5    # Spearman below this: the ranking of addresses changed a lot overnight


def _finite(scores) -> np.ndarray:
    values = np.asarray(scores, dtype="float64")
    return values[np.isfinite(values)]


def histogram(scores, bins: int = BINS) -> list[int]:
    """Counts of finite scores in `bins` equal bins over [0, 1] (values outside are clipped in)."""
    values = np.clip(_finite(scores), 0.0, 1.0)
    counts, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return [int(c) for c in counts]


def normalised_entropy(scores, bins: int = BINS) -> float | None:
    """Shannon entropy of the score histogram divided by log(bins): 0 = one bin, 1 = uniform."""
    counts = np.asarray(histogram(scores, bins), dtype="float64")
    if counts.sum() == 0:
        return None
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(bins))


def address_consistency(frame: pd.DataFrame) -> dict:
    """Spread of scores among alerts of the same address (addresses with two or more alerts)."""
    scored = frame.dropna(subset=["address", "score"])
    groups = scored.groupby("address", sort=True)["score"]
    sizes = groups.size()
    multi = sizes[sizes >= 2].index
    if len(multi) == 0:
        return {"addresses_with_several_alerts": 0, "alerts_involved": 0}
    std = groups.std(ddof=0)[multi]
    spread = (groups.max() - groups.min())[multi]
    return {
        "addresses_with_several_alerts": int(len(multi)),
        "alerts_involved": int(sizes[multi].sum()),
        "mean_std": float(std.mean()),
        "median_std": float(std.median()),
        "mean_range": float(spread.mean()),
        "p90_range": float(spread.quantile(0.9)),
        "max_range": float(spread.max()),
        "widest_address": str(spread.idxmax()),
    }


def _ranks(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank(method="average").to_numpy()


def pearson(x, y) -> float | None:
    """Pearson correlation, or None when either side is constant or there are fewer than 2 pairs."""
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x, y) -> float | None:
    """Spearman rank correlation (average ranks for ties)."""
    if len(x) < 2:
        return None
    return pearson(_ranks(np.asarray(x, dtype="float64")), _ranks(np.asarray(y, dtype="float64")))


def _compare(current: pd.Series, previous: pd.Series) -> dict:
    common = current.index.intersection(previous.index)
    a, b = current[common].to_numpy(), previous[common].to_numpy()
    out = {"common": int(len(common))}
    if len(common):
        out.update(spearman=spearman(a, b), pearson=pearson(a, b),
                   mean_abs_diff=float(np.mean(np.abs(a - b))))
    return out


def _by(frame: pd.DataFrame, key: str) -> pd.Series:
    scored = frame.dropna(subset=[key, "score"])
    return scored.groupby(key, sort=True)["score"].mean()


def stability(current: pd.DataFrame, previous: pd.DataFrame, previous_date: str) -> dict:
    """Agreement with the previous published date, by alert_id and by address (mean score per address)."""
    out = {"previous_date": previous_date,
           "by_alert_id": _compare(_by(current, "alert_id"), _by(previous, "alert_id"))}
    if "address" in current.columns and "address" in previous.columns:
        out["by_address"] = _compare(_by(current, "address"), _by(previous, "address"))
    return out


def notes(summary: dict) -> list[str]:
    """Plain-language warnings for values that look unhealthy."""
    out = []
    entropy = summary.get("entropy")
    if entropy is not None and entropy < LOW_ENTROPY:
        out.append(f"score entropy {entropy:.2f} < {LOW_ENTROPY}: scores bunch in few bins")
    by_address = (summary.get("stability") or {}).get("by_address") or {}
    rho = by_address.get("spearman")
    if rho is not None and rho < LOW_STABILITY:
        out.append(f"day-over-day Spearman {rho:.2f} < {LOW_STABILITY} on common addresses")
    return out


def summarise(scored: pd.DataFrame, previous: pd.DataFrame | None = None,
              previous_date: str | None = None) -> dict:
    """The behaviour section of a report; `scored` has alert_id, address, score."""
    summary = {
        "histogram": histogram(scored["score"]),
        "entropy": normalised_entropy(scored["score"]),
        "same_address": address_consistency(scored) if "address" in scored.columns else None,
        "stability": stability(scored, previous, previous_date) if previous is not None else None,
    }
    summary["notes"] = notes(summary)
    return summary
