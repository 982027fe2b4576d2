"""Ground-truth labels of alerts and clusters from the SOT address labels (SOT_CONTRACT.md §3).

An address is positive (1.0) when any of its labels has risk_level high or
critical, negative (0.0) when it has labels and all of them are low or medium,
and unlabelled (NaN) otherwise. Mixed labels count as positive: §3 makes one
high/critical label enough, and a validator reading the same file will judge so.
Labels with an unknown or missing risk_level are ignored. Used for training and
for the local validator check; never as a model feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POSITIVE_RISK = ("high", "critical")
NEGATIVE_RISK = ("low", "medium")


def address_labels(labels: pd.DataFrame | None) -> pd.Series:
    """One label per labelled address: a float Series (1.0 / 0.0) indexed by address."""
    if labels is None or len(labels) == 0:
        return pd.Series([], index=pd.Index([], dtype=object, name="address"), dtype="float64")
    risk = labels["risk_level"].astype("str").str.strip().str.lower()
    frame = pd.DataFrame({
        "address": labels["address"].to_numpy(),
        "pos": risk.isin(POSITIVE_RISK).to_numpy(),
        "neg": risk.isin(NEGATIVE_RISK).to_numpy(),
    })
    frame = frame[frame["pos"] | frame["neg"]]
    per_address = frame.groupby("address", sort=True)["pos"].max()
    return per_address.astype("float64")


def alert_labels(alert_addresses, labels: pd.DataFrame | None) -> np.ndarray:
    """Label of each alert from its address: float64 array of 1.0, 0.0 or NaN (unlabelled)."""
    return lookup(address_labels(labels), alert_addresses)


def lookup(per_address: pd.Series, addresses) -> np.ndarray:
    """Values of per_address at each of addresses (NaN where absent)."""
    positions = per_address.index.get_indexer(pd.Index(np.asarray(addresses, dtype=object)))
    values = np.full(len(positions), np.nan)
    found = positions >= 0
    values[found] = per_address.to_numpy()[positions[found]]
    return values


def cluster_members(clusters: pd.DataFrame) -> pd.DataFrame:
    """Member alerts of each cluster: rows (cluster position, alert_id), primary alert included."""
    related = clusters["related_alert_ids"] if "related_alert_ids" in clusters else None
    parts = []
    if related is not None:
        exploded = pd.Series(related.to_numpy(), index=np.arange(len(clusters))).explode()
        parts.append(exploded.dropna())
    if "primary_alert_id" in clusters:
        primary = pd.Series(clusters["primary_alert_id"].to_numpy(),
                            index=np.arange(len(clusters)))
        parts.append(primary[primary.notna() & (primary != "")])
    if not parts:
        return pd.DataFrame({"cluster": np.array([], dtype=np.int64), "alert_id": []})
    members = pd.concat(parts)
    members = pd.DataFrame({"cluster": members.index.to_numpy(np.int64),
                            "alert_id": members.to_numpy(dtype=object)})
    return members.drop_duplicates(ignore_index=True)


def cluster_labels(clusters: pd.DataFrame, alert_ids, alert_y: np.ndarray) -> np.ndarray:
    """Label of each cluster: the maximum over its labelled member alerts, NaN when none is."""
    per_alert = pd.Series(np.asarray(alert_y, dtype="float64"),
                          index=pd.Index(np.asarray(alert_ids, dtype=object)))
    members = cluster_members(clusters)
    member_y = lookup(per_alert, members["alert_id"].to_numpy())
    known = ~np.isnan(member_y)
    best = pd.Series(member_y[known]).groupby(members["cluster"].to_numpy()[known]).max()
    out = np.full(len(clusters), np.nan)
    out[best.index.to_numpy()] = best.to_numpy()
    return out
