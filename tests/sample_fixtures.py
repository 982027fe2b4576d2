"""Helpers of the sample-generator and contract tests: small generated batches."""

from __future__ import annotations

from functools import lru_cache

from shared.sample import SampleBatch, generate_batch

DATE = "2025-10-26"
SMALL = 600


@lru_cache(maxsize=8)
def small_batch(date: str = DATE, seed: int = 0, legacy: bool = False,
                n_alerts: int = SMALL, network: str = "bitcoin") -> SampleBatch:
    """A cached small batch (tables are immutable, so sharing them between tests is safe)."""
    return generate_batch(network, date, 7, n_alerts=n_alerts, seed=seed, legacy_columns=legacy)


def alert_frame(batch: SampleBatch):
    """Alerts joined with their address's numeric features and a label (NaN = unlabelled)."""
    alerts = batch.alerts.to_pandas()
    features = batch.features.to_pandas()
    labels = batch.labels.to_pandas()
    positive = labels.risk_level.isin(["high", "critical"]).groupby(labels.address).max()
    numeric = [c for c in features.columns
               if c not in ("address", "window_days", "processing_date")
               and (features[c].dtype.kind in "fiub" or c.endswith("_usd"))]
    model_input = features[numeric].astype(float)
    model_input["address"] = features.address
    frame = alerts[["address", "alert_confidence_score"]].merge(
        model_input, on="address", how="left")
    frame["volume_usd"] = alerts.volume_usd.astype(float)
    frame["alerts_of_address"] = alerts.groupby("address").alert_id.transform("count")
    frame["label"] = alerts.address.map(positive).astype(float)
    return frame.drop(columns="address")
