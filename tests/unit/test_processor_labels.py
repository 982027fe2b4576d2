"""Alert and cluster labels from address labels (SOT_CONTRACT.md §3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.labels import address_labels, alert_labels, cluster_labels, cluster_members


def _labels(rows):
    return pd.DataFrame(rows, columns=["address", "risk_level"])


def test_high_or_critical_is_positive_low_or_medium_negative_else_unlabelled():
    labels = _labels([("h", "high"), ("c", "CRITICAL"), ("l", "low"), ("m", "medium"),
                      ("n", None), ("w", "unknown-level")])
    y = alert_labels(["h", "c", "l", "m", "n", "w", "absent"], labels)
    np.testing.assert_array_equal(y, [1, 1, 0, 0, np.nan, np.nan, np.nan])


def test_mixed_labels_make_an_address_positive():
    labels = _labels([("x", "low"), ("x", "medium"), ("x", "high"), ("y", "low"), ("y", "medium")])
    per_address = address_labels(labels)
    assert per_address.to_dict() == {"x": 1.0, "y": 0.0}


def test_no_label_file_leaves_every_alert_unlabelled():
    assert np.isnan(alert_labels(["a", "b"], None)).all()
    assert np.isnan(alert_labels(["a"], _labels([]))).all()


def test_cluster_label_is_max_over_labelled_members_and_primary_counts():
    clusters = pd.DataFrame({
        "primary_alert_id": ["p", "", "q", "z"],
        "related_alert_ids": [np.array(["a", "b"]), np.array(["a"]), np.array(["b", "u"]), None],
    })
    ids = ["a", "b", "p", "q", "u", "z"]
    y = np.array([0.0, np.nan, 1.0, np.nan, np.nan, 0.0])
    np.testing.assert_array_equal(cluster_labels(clusters, ids, y), [1.0, 0.0, np.nan, 0.0])


def test_cluster_members_drops_duplicates_and_empty_ids():
    clusters = pd.DataFrame({"primary_alert_id": ["a", None],
                             "related_alert_ids": [np.array(["a", "b", "b"]), np.array([])]})
    members = cluster_members(clusters)
    assert sorted(map(tuple, members.to_numpy().tolist())) == [(0, "a"), (0, "b")]
