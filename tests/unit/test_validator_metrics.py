"""The validator's numpy metrics agree with scikit-learn (and scipy) on fixed examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn import metrics as skm

from services.validator import metrics

# A fixed example with ties across classes and within a class.
Y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1])
S = np.array([.10, .80, .35, .35, .90, .20, .80, .60, .35, .05, .50, .95, .50, .20, .70])


def examples():
    yield "fixed", Y, S
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 200)
        s = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.25, 200), 0, 1), 2)  # rounding makes ties
        yield f"random{seed}", y, s


@pytest.mark.parametrize("name,y,s", list(examples()))
def test_roc_auc_pr_auc_and_brier_match_sklearn(name, y, s):
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert metrics.brier(y, s) == pytest.approx(skm.brier_score_loss(y, s), abs=1e-12)


@pytest.mark.parametrize("name,y,s", list(examples()))
def test_curves_match_sklearn(name, y, s):
    fpr, tpr = metrics.roc_curve(y, s)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    recall, precision = metrics.pr_curve(y, s)
    sk_precision, sk_recall, _ = skm.precision_recall_curve(y, s)
    # sklearn lists thresholds lowest first and appends the (recall 0, precision 1) end point.
    np.testing.assert_allclose(recall, sk_recall[:-1][::-1], atol=1e-12)
    np.testing.assert_allclose(precision, sk_precision[:-1][::-1], atol=1e-12)


@pytest.mark.parametrize("name,y,s", list(examples()))
@pytest.mark.parametrize("k", [1, 5, 10, 100])
def test_ndcg_at_k_of_a_ranking_matches_sklearn(name, y, s, k):
    order = np.lexsort((np.arange(len(s)), -s))  # a strict ranking: by score, ties by position
    in_rank_order = y[order]
    rank_score = np.empty(len(s))
    rank_score[order] = -np.arange(len(s), dtype=float)  # no ties, so sklearn sees the same order
    expected = skm.ndcg_score(y[None, :], rank_score[None, :], k=k)
    assert metrics.ndcg_at_k(in_rank_order, k) == pytest.approx(expected, abs=1e-12)


def test_precision_at_k_counts_positives_in_the_first_k():
    in_rank_order = np.array([1, 1, 0, 1, 0, 0, 0, 1])
    assert metrics.precision_at_k(in_rank_order, 1) == 1.0
    assert metrics.precision_at_k(in_rank_order, 4) == 0.75
    assert metrics.precision_at_k(in_rank_order, 8) == 0.5
    assert metrics.precision_at_k([], 3) is None


def test_average_ranks_match_scipy():
    values = np.array([3, 1, 2, 3, 3, 0.5, 2])
    np.testing.assert_array_equal(metrics.average_ranks(values), rankdata(values, method="average"))


def test_one_class_gives_no_auc_instead_of_a_number():
    assert metrics.roc_auc([1, 1, 1], [0.2, 0.4, 0.9]) is None
    assert metrics.average_precision([0, 0], [0.2, 0.4]) is None
    assert metrics.roc_auc([], []) is None
    assert metrics.ndcg_at_k([0, 0, 0], 2) is None


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.roc_auc([0, 1], [0.5])


def test_ground_truth_skips_unlabelled_rows_and_counts_them():
    truth = pd.Series([1.0, 0.0, np.nan, 1.0, 0.0], index=["a", "b", "c", "d", "e"])
    alerts = pd.DataFrame({"alert_id": ["a", "b", "c", "d", "e"], "score": [.9, .8, .7, .3, .1]})
    ranking = pd.DataFrame({"alert_id": ["a", "b", "c", "d", "e"], "rank": [1, 2, 3, 4, 5]})
    clusters = pd.DataFrame({"cluster_id": ["k1", "k2"], "score": [0.7, 0.2]})
    cluster_truth = pd.Series([1.0, 0.0], index=["k1", "k2"])
    gt = metrics.ground_truth(truth, cluster_truth, alerts, ranking, clusters)
    y, s = np.array([1, 0, 1, 0]), np.array([.9, .8, .3, .1])
    assert gt["alerts"]["rows"] == 5 and gt["alerts"]["labelled"] == 4 and gt["alerts"]["positives"] == 2
    assert gt["alerts"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert gt["alerts"]["brier"] == pytest.approx(skm.brier_score_loss(y, s))
    assert gt["ranking"]["labelled"] == 4
    assert gt["ranking"]["precision_at_10"] is None  # fewer labelled alerts than k
    assert gt["clusters"]["roc_auc"] == 1.0


def test_ranking_metrics_follow_rank_not_score():
    truth = pd.Series([1.0] * 10 + [0.0] * 10, index=[f"id{i:02d}" for i in range(20)])
    ids = list(truth.index)
    ranking = pd.DataFrame({"alert_id": ids[::-1], "rank": range(1, 21), "score": 0.5})
    block = metrics.ranking_block(truth, ranking, ks=(10,))
    assert block["precision_at_10"] == 0.0  # the ranking put every negative first
    ranking["alert_id"] = ids
    assert metrics.ranking_block(truth, ranking, ks=(10,))["precision_at_10"] == 1.0
