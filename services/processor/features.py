"""Model features of a batch: one row per alert and one row per cluster.

Everything is vectorised over Arrow columns and numpy arrays: string joins use
Arrow's hash lookup (`index_in`), group statistics use integer group codes
(`grouping`). Categorical columns get fixed codes from fixed vocabularies, never
codes learned from the data, so the same value means the same number on every
date. Optional columns are used when present and simply absent otherwise (the
model fills NaN for a feature it was trained with). Labels never enter here.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from services.processor import grouping
from services.processor.inputs import FEATURE_COLUMNS
from services.processor.links import MS_PER_DAY, Links, flow_codes, link, positions
from shared.contract import SEVERITIES, TYPOLOGIES

log = logging.getLogger(__name__)

CLUSTER_TYPES = ("same_entity", "same_pattern", "related_network", "time_based")
# Known suspected_address_type values; any other non-empty value gets the code "other".
ADDRESS_TYPES = (
    "unknown", "exchange", "mixer", "gambling", "defi", "bridge", "merchant", "mining_pool",
    "wallet", "service", "contract", "darknet_market", "scam", "ransomware", "sanctioned",
    "individual", "payment_processor",
)
# Codes that are categories, not quantities (LightGBM is told so at training).
CATEGORICAL = ("alert_typology", "alert_address_type", "cl_type")
# Categorical columns coded from fixed vocabularies: (feature, column, vocabulary, options).
_ALERT_CODES = (("alert_typology", "typology_type", TYPOLOGIES, {"upper": True}),
                ("alert_severity", "severity", SEVERITIES, {}),
                ("alert_address_type", "suspected_address_type", ADDRESS_TYPES, {"other": True}))
_CLUSTER_CODES = (("cl_type", "cluster_type", CLUSTER_TYPES, {"other": True}),
                  ("cl_severity_max", "severity_max", SEVERITIES, {}))

MS_PER_HOUR = 3_600_000.0
_TIMESTAMPS = {"first_activity_timestamp": "days_since_first", "last_activity_timestamp":
               "days_since_last"}

# Address features summarised over the addresses a cluster involves.
CLUSTER_ADDRESS_COLUMNS = (
    "total_volume_usd", "degree_total", "tx_total_count", "pagerank", "structuring_score",
    "velocity_score", "burst_factor", "reciprocity_ratio", "is_new_address",
    "counterparty_concentration", "flow_diversity", "night_transaction_ratio",
)
# Alert features summarised over a cluster's member alerts.
CLUSTER_MEMBER_COLUMNS = (
    "alert_confidence", "alert_volume_usd", "alert_severity", "peer_alerts",
    "flow_counterparties", "flow_out_usd", "flow_in_usd", "addr_total_volume_usd",
)


def floats(column, dtype=pa.float64()) -> np.ndarray:
    """An Arrow column as a float numpy array (float64 unless told), nulls as NaN."""
    return column.cast(dtype, safe=False).to_numpy(zero_copy_only=False)


def codes(column, vocabulary: tuple[str, ...], upper: bool = False,
          other: bool = False) -> np.ndarray:
    """Fixed integer codes of a string column: position in vocabulary, -1 if null/unknown.

    With other=True an unknown non-empty value gets len(vocabulary) instead of -1.
    """
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    text = pc.utf8_upper(text) if upper else pc.utf8_lower(text)
    found = positions(text, pa.array(vocabulary))
    if other:
        present = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False)
        found[(found < 0) & present.to_numpy(zero_copy_only=False)] = len(vocabulary)
    return found


def _code_floats(found: np.ndarray) -> np.ndarray:
    return np.where(found >= 0, found, np.nan)


def _coded(table: pa.Table, specs) -> dict[str, np.ndarray]:
    """Fixed codes (NaN where null or unknown) of the categorical columns the table has.

    specs: (feature name, column, vocabulary, options of `codes`) in feature order.
    """
    return {feature: _code_floats(codes(table.column(column), vocabulary, **options))
            for feature, column, vocabulary, options in specs if column in table.column_names}


def _frame(columns: dict[str, np.ndarray], n: int) -> pd.DataFrame:
    """A float32 frame, one block per column (no consolidation copy)."""
    data = {name: np.ascontiguousarray(values, dtype=np.float32)
            for name, values in columns.items()}
    return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)


def _list_lengths(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return floats(pc.list_value_length(table.column(column)))


def _column(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return floats(table.column(column))


def _alert_own(alerts: pa.Table) -> dict[str, np.ndarray]:
    """The alert's own columns, categorical ones as fixed codes."""
    cols = {
        "alert_confidence": _column(alerts, "alert_confidence_score"),
        "alert_volume_usd": _column(alerts, "volume_usd"),
        "alert_risk_indicators": _list_lengths(alerts, "risk_indicators"),
    }
    cols.update(_coded(alerts, _ALERT_CODES))
    if "pattern_id" in alerts.column_names:
        pattern = pc.fill_null(pc.utf8_length(alerts.column("pattern_id").cast(pa.string())), 0)
        cols["alert_has_pattern"] = (floats(pattern) > 0).astype(np.float64)
    return cols


def _address_columns(features: pa.Table, rows: np.ndarray, reference_ms: float,
                     prefix: str = "addr_") -> dict[str, np.ndarray]:
    """The address features of each row's address (NaN when the address has no features row)."""
    lookup = grouping.Lookup(rows)
    cols = {}
    for name in FEATURE_COLUMNS:
        if name not in features.column_names:
            continue
        if name in _TIMESTAMPS:  # epoch ms need float64; the age in days fits float32
            values = lookup.take(floats(features.column(name)))
            cols[prefix + _TIMESTAMPS[name]] = (reference_ms - values) / MS_PER_DAY
        else:
            cols[prefix + name] = lookup.take(floats(features.column(name), pa.float32()))
    return cols


def _peer_stats(own: dict[str, np.ndarray], links: Links) -> dict[str, np.ndarray]:
    """Statistics over all alerts of the same address (the alert itself included)."""
    group, n = links.alert_address, len(links.addresses)
    typology = np.nan_to_num(own.get("alert_typology", np.full(len(group), np.nan)), nan=-1)
    per_address = {
        "peer_alerts": grouping.count(group, n),
        "peer_typologies": grouping.distinct(group, typology.astype(np.int64), n),
        "peer_confidence_max": grouping.maximum(group, own["alert_confidence"], n),
        "peer_confidence_mean": grouping.mean(group, own["alert_confidence"], n),
        "peer_volume_usd_sum": grouping.total(group, own["alert_volume_usd"], n),
    }
    if "alert_severity" in own:
        per_address["peer_severity_max"] = grouping.maximum(group, own["alert_severity"], n)
    return _per_alert(per_address, group)


def _per_alert(per_address: dict[str, np.ndarray], group: np.ndarray) -> dict[str, np.ndarray]:
    """Spread per-address values to the alerts (as float32: half the bytes to move)."""
    return {name: values.astype(np.float32)[group] for name, values in per_address.items()}


def _cluster_sizes(clusters: pa.Table) -> np.ndarray:
    sizes = _column(clusters, "total_alerts")
    return np.where(np.isnan(sizes), _list_lengths(clusters, "related_alert_ids"), sizes)


def _membership(clusters: pa.Table, links: Links, n_alerts: int) -> dict[str, np.ndarray]:
    """How many clusters hold the alert, and the largest of them."""
    sizes = _cluster_sizes(clusters)[links.member_cluster]
    return {
        "clusters_count": grouping.count(links.member_alert, n_alerts),
        "clusters_size_max": grouping.maximum(links.member_alert, sizes, n_alerts),
    }


def _flow_stats(flows: pa.Table, links: Links) -> dict[str, np.ndarray]:
    """Money-flow aggregates per alert address (rows are directed pairs, one per counterparty)."""
    n = len(links.addresses)
    out_code, in_code = links.flow_codes or flow_codes(flows, links.addresses)
    usd, tx = _column(flows, "amount_usd_sum"), _column(flows, "tx_count")
    bidir = _column(flows, "is_bidirectional")
    stats = {
        "flow_out_edges": grouping.count(out_code, n), "flow_in_edges": grouping.count(in_code, n),
        "flow_out_tx": grouping.total(out_code, tx, n),
        "flow_in_tx": grouping.total(in_code, tx, n),
        "flow_out_usd": grouping.total(out_code, usd, n),
        "flow_in_usd": grouping.total(in_code, usd, n),
        "flow_out_usd_max": grouping.maximum(out_code, usd, n),
        "flow_in_usd_max": grouping.maximum(in_code, usd, n),
    }
    both = stats["flow_out_edges"] + stats["flow_in_edges"]
    bidir_out, bidir_in = grouping.total(out_code, bidir, n), grouping.total(in_code, bidir, n)
    # A bidirectional pair appears once per direction: count its counterparty once.
    stats["flow_counterparties"] = both - bidir_out
    volume = stats["flow_out_usd"] + stats["flow_in_usd"]
    with np.errstate(invalid="ignore", divide="ignore"):
        stats["flow_bidirectional_share"] = np.where(both > 0, (bidir_out + bidir_in) / both,
                                                     np.nan)
        stats["flow_balance"] = np.where(volume > 0, (stats["flow_in_usd"] - stats["flow_out_usd"])
                                         / volume, np.nan)
    reciprocity = _column(flows, "reciprocity_ratio")
    stats["flow_reciprocity_mean"] = grouping.mean(
        np.concatenate([out_code, in_code]), np.concatenate([reciprocity, reciprocity]), n)
    return _per_alert(stats, links.alert_address)


def alert_features(alerts: pa.Table, features: pa.Table, clusters: pa.Table,
                   money_flows: pa.Table | None = None,
                   links: Links | None = None) -> pd.DataFrame:
    """One feature row per alert, in the alerts' row order."""
    links = links if links is not None else link(alerts, features, clusters, money_flows)
    # The address lookups and flow sums run beside the alert's own columns (numpy and
    # Arrow release the GIL), so this step uses both cores.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="features") as pool:
        address = pool.submit(_address_columns, features, links.alert_row, links.reference_ms)
        flows = pool.submit(_flow_stats, money_flows, links) if money_flows is not None else None
        own = _alert_own(alerts)
        peers = _peer_stats(own, links)  # need no address columns: done before waiting
        membership = _membership(clusters, links, alerts.num_rows)
        cols = {**own, **address.result(), **peers, **membership}
        if flows is not None:
            cols.update(flows.result())
    return _frame(cols, alerts.num_rows)


def _cluster_own(clusters: pa.Table, reference_ms: float) -> dict[str, np.ndarray]:
    """The cluster's own columns."""
    earliest = _column(clusters, "earliest_alert_timestamp")
    latest = _column(clusters, "latest_alert_timestamp")
    cols = {
        "cl_total_alerts": _column(clusters, "total_alerts"),
        "cl_total_volume_usd": _column(clusters, "total_volume_usd"),
        "cl_confidence_avg": _column(clusters, "confidence_avg"),
        "cl_duration_h": (latest - earliest) / MS_PER_HOUR,
        "cl_age_h": (reference_ms - latest) / MS_PER_HOUR,
        "cl_related": _list_lengths(clusters, "related_alert_ids"),
        "cl_addresses": _list_lengths(clusters, "addresses_involved"),
    }
    cols.update(_coded(clusters, _CLUSTER_CODES))
    return cols


def _cluster_members(alert_frame: pd.DataFrame, links: Links, n: int) -> dict[str, np.ndarray]:
    """Statistics over the member alerts found in the batch (NaN when none is)."""
    group, alert = links.member_cluster, links.member_alert
    found = grouping.count(group, n)
    cols = {"cl_members_found": found}
    if "alert_typology" in alert_frame:
        typology = np.nan_to_num(alert_frame["alert_typology"].to_numpy()[alert], nan=-1)
        cols["cl_member_typologies"] = grouping.distinct(group, typology.astype(np.int64), n)
    for name in CLUSTER_MEMBER_COLUMNS:
        if name in alert_frame:
            values = alert_frame[name].to_numpy(np.float64)[alert]
            cols[f"cl_member_{name}_mean"] = grouping.mean(group, values, n)
            cols[f"cl_member_{name}_max"] = grouping.maximum(group, values, n)
    return cols


def cluster_address_columns(features: pa.Table) -> pa.Table:
    """Only the address feature columns that cluster features summarise."""
    return features.select([c for c in CLUSTER_ADDRESS_COLUMNS if c in features.column_names])


def _cluster_addresses(features: pa.Table, links: Links, n: int) -> dict[str, np.ndarray]:
    """Statistics over the involved addresses that have a features row."""
    group, row = links.involved_cluster, links.involved_row
    cols = {"cl_addresses_found": grouping.count(group, n)}
    for name in CLUSTER_ADDRESS_COLUMNS:
        if name in features.column_names:
            values = floats(features.column(name))[row] if len(row) else np.array([])
            cols[f"cl_addr_{name}_mean"] = grouping.mean(group, values, n)
            cols[f"cl_addr_{name}_max"] = grouping.maximum(group, values, n)
    return cols


def cluster_features(clusters: pa.Table, alerts: pa.Table, features: pa.Table,
                     money_flows: pa.Table | None = None, links: Links | None = None,
                     alert_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One feature row per cluster, in the clusters' row order, also when no member is found."""
    links = links if links is not None else link(alerts, features, clusters, money_flows)
    if alert_frame is None:
        alert_frame = alert_features(alerts, features, clusters, money_flows, links)
    n = clusters.num_rows
    cols = _cluster_own(clusters, links.reference_ms)
    cols.update(_cluster_members(alert_frame, links, n))
    related = cols["cl_related"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["cl_members_found_share"] = np.where(related > 0, cols["cl_members_found"] / related,
                                                  np.nan)
    cols.update(_cluster_addresses(features, links, n))
    return _frame(cols, n)
