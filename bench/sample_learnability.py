"""Learnability check of sample data: train a quick LightGBM on some dates, report test AUC.

Alert features = the alert's numeric columns + its address's numeric features;
labels per SOT_CONTRACT.md section 3. Prints AUCs; not a test (no thresholds).
Usage: python bench/sample_learnability.py [--alerts N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from shared.sample import generate_batch  # noqa: E402

TRAIN_DATES = ("2025-10-20", "2025-10-21", "2025-10-22")
TEST_DATE = "2025-10-26"


def frame(date: str, n_alerts: int, seed: int) -> pd.DataFrame:
    """Alert rows joined with address features, and a label column (NaN = unlabelled)."""
    batch = generate_batch("bitcoin", date, 7, n_alerts=n_alerts, seed=seed)
    alerts = batch.alerts.to_pandas()
    feats = batch.features.to_pandas()
    labels = batch.labels.to_pandas()
    positive = labels.risk_level.isin(["high", "critical"]).groupby(labels.address).max()
    alerts["label"] = alerts.address.map(positive).astype(float)
    alerts["typology"] = alerts.typology_type.astype("category")
    alerts["n_alerts_address"] = alerts.groupby("address").alert_id.transform("count")
    numeric = [c for c in feats.columns if feats[c].dtype.kind in "fiub" or c.endswith("_usd")]
    feats = feats[["address"] + [c for c in numeric if c not in ("window_days",)]]
    for col in feats.columns[1:]:
        feats[col] = feats[col].astype(float)
    out = alerts.merge(feats, on="address", how="left")
    out["volume_usd"] = out.volume_usd.astype(float)
    return out


def main() -> int:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = pd.concat([frame(d, args.alerts, args.seed) for d in TRAIN_DATES], ignore_index=True)
    test = frame(TEST_DATE, args.alerts, args.seed)
    drop = {"alert_id", "address", "typology_type", "pattern_id", "pattern_type", "severity",
            "suspected_address_type", "suspected_address_subtype", "description", "evidence_json",
            "risk_indicators", "processing_date", "window_days", "label"}
    cols = [c for c in train.columns if c not in drop]
    train, test = train[train.label.notna()], test[test.label.notna()]
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31,
                               deterministic=True, seed=0, verbose=-1)
    model.fit(train[cols], train.label)
    auc = roc_auc_score(test.label, model.predict_proba(test[cols])[:, 1])
    conf_auc = roc_auc_score(test.label, test.alert_confidence_score)
    labelled = test.shape[0] / frame(TEST_DATE, args.alerts, args.seed).shape[0]
    print(f"train rows {len(train)} (pos rate {train.label.mean():.3f}), test rows {len(test)} "
          f"(pos rate {test.label.mean():.3f}, labelled share of alerts {labelled:.2f})")
    print(f"LightGBM test AUC {auc:.3f}; alert_confidence_score alone {conf_auc:.3f}")
    top = sorted(zip(model.feature_importances_, cols), reverse=True)[:10]
    print("top features:", ", ".join(f"{c}({v})" for v, c in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
