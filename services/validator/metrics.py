"""Ground-truth metrics in plain numpy: ROC AUC, PR AUC, Brier, precision@k and NDCG@k.

Written here rather than imported so the validator image needs no scikit-learn;
the tests check every function against scikit-learn on fixed examples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_K = (10, 50, 100)


def _arrays(y, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    s = np.asarray(scores, dtype="float64")
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.shape}) and scores ({s.shape}) differ in shape")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool(len(y)) and 0 < y.sum() < len(y)


def average_ranks(values) -> np.ndarray:
    """1-based ranks of values, ties sharing their average rank."""
    _, inverse, counts = np.unique(np.asarray(values), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def roc_auc(y, scores) -> float | None:
    """Area under the ROC curve (Mann-Whitney form, ties count one half); None for one class."""
    y, s = _arrays(y, scores)
    if not _both_classes(y):
        return None
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    rank_sum = average_ranks(s)[y == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _curve_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct threshold, highest threshold first."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_value]
    fps = last_of_value + 1 - tps
    return tps, fps


def roc_curve(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct threshold, starting at (0, 0)."""
    y, s = _arrays(y, scores)
    tps, fps = _curve_counts(y, s)
    n_pos, n_neg = tps[-1], fps[-1]
    return np.r_[0.0, fps / max(n_neg, 1)], np.r_[0.0, tps / max(n_pos, 1)]


def pr_curve(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each distinct threshold, highest threshold first."""
    y, s = _arrays(y, scores)
    tps, fps = _curve_counts(y, s)
    return tps / max(tps[-1], 1), tps / (tps + fps)


def average_precision(y, scores) -> float | None:
    """PR AUC as average precision: sum of precision times each step in recall."""
    y, s = _arrays(y, scores)
    if not _both_classes(y):
        return None
    recall, precision = pr_curve(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier(y, scores) -> float | None:
    """Mean squared difference between score and label."""
    y, s = _arrays(y, scores)
    return float(np.mean((s - y) ** 2)) if len(y) else None


def precision_at_k(y_in_rank_order, k: int) -> float | None:
    """Share of positives among the first k (labelled) alerts of the ranking."""
    y = np.asarray(y_in_rank_order, dtype="float64")[:k]
    return float(y.mean()) if len(y) else None


def _dcg(gains: np.ndarray) -> float:
    return float(np.sum(gains / np.log2(np.arange(2, len(gains) + 2))))


def ndcg_at_k(y_in_rank_order, k: int) -> float | None:
    """Normalised discounted cumulative gain of the first k places (linear gains, log2 discount)."""
    y = np.asarray(y_in_rank_order, dtype="float64")
    ideal = _dcg(np.sort(y)[::-1][:k])
    return _dcg(y[:k]) / ideal if ideal > 0 else None


def _labelled(truth: pd.Series, frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows of a scored frame with a 0/1 label, first row per id, in the frame's order."""
    unique = frame.drop_duplicates(subset=[key]).dropna(subset=[key])
    labels = unique[key].map(truth)
    labelled = unique.assign(label=labels)
    return labelled.dropna(subset=[c for c in ("label", "score") if c in labelled.columns])


def _scores_block(labelled: pd.DataFrame, n_rows: int) -> dict:
    y, s = labelled["label"].to_numpy(), labelled["score"].to_numpy()
    return {"rows": int(n_rows), "labelled": int(len(y)), "positives": int(y.sum()),
            "roc_auc": roc_auc(y, s), "pr_auc": average_precision(y, s), "brier": brier(y, s)}


def ranking_block(truth: pd.Series, ranking: pd.DataFrame, ks=TOP_K) -> dict:
    """precision@k and NDCG@k of the ranking, over labelled alerts in rank order.

    Unlabelled alerts are skipped, so k counts labelled alerts; a k larger than the
    number of labelled alerts gives None rather than a value over fewer rows.
    """
    ordered = _labelled(truth, ranking.sort_values("rank", kind="stable"), "alert_id")
    y = ordered["label"].to_numpy()
    out = {"labelled": int(len(y))}
    for k in ks:
        out[f"precision_at_{k}"] = precision_at_k(y, k) if k <= len(y) else None
        out[f"ndcg_at_{k}"] = ndcg_at_k(y, k) if k <= len(y) else None
    return out


def ground_truth(alert_truth: pd.Series, cluster_truth: pd.Series, alerts: pd.DataFrame,
                 ranking: pd.DataFrame, clusters: pd.DataFrame) -> dict:
    """The ground-truth section: alert scores, ranking, cluster scores against the labels."""
    scored = _labelled(alert_truth, alerts, "alert_id")
    return {
        "alerts": _scores_block(scored, len(alerts)),
        "ranking": ranking_block(alert_truth, ranking),
        "clusters": _scores_block(_labelled(cluster_truth, clusters, "cluster_id"), len(clusters)),
    }


def labelled_pairs(truth: pd.Series, frame: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the labelled rows of a scored frame, for curves and pooled metrics."""
    labelled = _labelled(truth, frame, key)
    return labelled["label"].to_numpy(dtype="float64"), labelled["score"].to_numpy(dtype="float64")
