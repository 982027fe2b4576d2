"""Sample labels are learnable from features, but not trivially (the training data's purpose)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.sample_fixtures import alert_frame, small_batch

lgb = pytest.importorskip("lightgbm")
metrics = pytest.importorskip("sklearn.metrics")

TRAIN = ("2025-10-20", "2025-10-21", "2025-10-22")
N = 4000


def test_a_model_trained_on_other_dates_ranks_labels_well_but_not_perfectly():
    train = pd.concat([alert_frame(small_batch(d, n_alerts=N)) for d in TRAIN])
    train = train.dropna(subset=["label"])
    test = alert_frame(small_batch("2025-10-26", n_alerts=N)).dropna(subset=["label"])
    features = [c for c in train.columns if c != "label"]
    model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15,
                               deterministic=True, seed=0, n_jobs=1, verbose=-1)
    model.fit(train[features], train.label)
    auc = metrics.roc_auc_score(test.label, model.predict_proba(test[features])[:, 1])
    assert 0.72 < auc < 0.95, auc
    # The detector's own confidence alone must be a weaker signal than the features.
    assert metrics.roc_auc_score(test.label, test.alert_confidence_score) < auc - 0.05
