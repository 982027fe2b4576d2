"""Ground truth of one batch, keyed by id, from the project's one label rule (shared.labels)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from shared import labels as label_rule


@dataclass
class Truth:
    """0/1 labels (NaN = unlabelled) of alerts by alert_id and clusters by cluster_id."""

    alerts: pd.Series
    clusters: pd.Series

    @property
    def has_labels(self) -> bool:
        """True when at least one alert is labelled."""
        return bool(self.alerts.notna().any())


def from_batch(alerts: pd.DataFrame, clusters: pd.DataFrame, labels: pd.DataFrame | None) -> Truth:
    """Apply SOT_CONTRACT.md section 3 to a batch's alerts and clusters."""
    alert_ids = alerts["alert_id"].astype(str).to_numpy(dtype=object)
    alert_y = label_rule.alert_labels(alerts["address"].to_numpy(dtype=object), labels)
    cluster_y = label_rule.cluster_labels(clusters, alert_ids, alert_y)
    return Truth(
        alerts=pd.Series(alert_y, index=pd.Index(alert_ids, name="alert_id"), dtype="float64"),
        clusters=pd.Series(cluster_y, index=pd.Index(clusters["cluster_id"].astype(str).to_numpy(
            dtype=object), name="cluster_id"), dtype="float64"),
    )
