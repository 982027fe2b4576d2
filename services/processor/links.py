"""How the tables of a batch point at each other, resolved once to integer positions.

Alerts name their address (a features row) and clusters name their member alerts
and involved addresses, all as strings. Each string join is one Arrow hash table;
the two over the batch's keys (alerts.alert_id, features.address) also check that
the key is unique (contract.positions_in_key), so no key is hashed twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.processor import grouping
from shared import contract

MS_PER_DAY = 86_400_000.0


@dataclass
class Links:
    """How the batch tables point at each other, as integer positions (-1 = not found)."""

    alert_row: np.ndarray          # per alert: row of its address in features
    alert_address: np.ndarray      # per alert: code of its address among `addresses`
    addresses: pa.Array            # the distinct alert addresses
    member_cluster: np.ndarray     # (cluster, alert) pairs of clusters' alerts found in alerts
    member_alert: np.ndarray
    involved_cluster: np.ndarray   # (cluster, features row) pairs of clusters' addresses found
    involved_row: np.ndarray
    reference_ms: float            # the batch's processing date (window end) in epoch ms
    flow_codes: tuple[np.ndarray, np.ndarray] | None = None  # flows' sender/receiver codes


def positions(values, value_set) -> np.ndarray:
    """Position of each value in value_set, -1 where absent or null."""
    found = pc.index_in(values, value_set=value_set)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _flatten(table: pa.Table, column: str) -> tuple[np.ndarray, pa.Array]:
    """(row, value) pairs of a list column; empty when the column is absent."""
    if column not in table.column_names:
        return np.array([], dtype=np.int64), pa.array([], pa.string())
    lists = table.column(column).combine_chunks()
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    return parents, pc.list_flatten(lists).cast(pa.string())


def _with_scalar(table: pa.Table, parents: np.ndarray, values: pa.Array,
                 column: str) -> tuple[np.ndarray, pa.Array]:
    """Add a string column's non-empty values (e.g. the primary id) to (row, value) pairs."""
    if column not in table.column_names:
        return parents, values
    scalar = table.column(column).combine_chunks().cast(pa.string())
    keep = pc.fill_null(pc.greater(pc.utf8_length(scalar), 0), False)
    rows = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
    return (np.concatenate([parents, rows]),
            pa.concat_arrays([values, scalar.filter(keep)]))


def _unique_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (left, right) pairs whose right side was found (>= 0)."""
    keep = right >= 0
    width = int(right.max(initial=0)) + 1
    pairs = grouping.unique(left[keep] * width + right[keep])
    return pairs // width, pairs % width


def _reference_ms(alerts: pa.Table) -> float:
    latest = pc.max(alerts.column("processing_date")).cast(pa.int32()).as_py()
    return float(latest) * MS_PER_DAY if latest is not None else np.nan


def _members(alerts: pa.Table, clusters: pa.Table, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(cluster, alert position) pairs of the clusters' member alerts found in the batch."""
    rows, ids = _with_scalar(clusters, *_flatten(clusters, "related_alert_ids"),
                             "primary_alert_id")
    found = contract.positions_in_key(folder / contract.ALERTS_FILE, alerts, "alert_id", ids)
    return _unique_pairs(rows, found)


def _address_rows(addresses: pa.Array, clusters: pa.Table, features: pa.Table, folder: Path):
    """Features rows of the distinct alert addresses, and (cluster, row) pairs of clusters."""
    rows, involved = _with_scalar(clusters, *_flatten(clusters, "addresses_involved"),
                                  "primary_address")
    # One hash table over features.address serves the alerts' and the clusters' addresses.
    found = contract.positions_in_key(folder / contract.FEATURES_FILE, features, "address",
                                      pa.chunked_array([addresses, involved], pa.string()))
    return found[:len(addresses)], _unique_pairs(rows, found[len(addresses):])


def flow_codes(flows: pa.Table, addresses: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Codes (among the alert addresses) of each flow's sender and receiver, -1 for others."""
    ends = flows.column("from_address").chunks + flows.column("to_address").chunks
    found = positions(pa.chunked_array(ends, pa.string()), addresses)  # one hash table
    return found[:flows.num_rows], found[flows.num_rows:]


def link(alerts: pa.Table, features: pa.Table, clusters: pa.Table,
         money_flows: pa.Table | None = None, folder: Path | str = "") -> Links:
    """Resolve addresses and memberships to positions once for all features.

    Raises ContractError (naming the file under folder) when alerts.alert_id or
    features.address repeats a value. The string hash lookups are the costly part
    and independent of each other, so they run side by side (Arrow releases the GIL
    while hashing).
    """
    folder = Path(folder)
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="link") as pool:
        members = pool.submit(_members, alerts, clusters, folder)  # needs no address codes
        encoded = alerts.column("address").combine_chunks().cast(pa.string()).dictionary_encode()
        alert_address = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        rows = pool.submit(_address_rows, encoded.dictionary, clusters, features, folder)
        flows = pool.submit(flow_codes, money_flows, encoded.dictionary) \
            if money_flows is not None else None
        address_row, (involved_cluster, involved_row) = rows.result()
        member_cluster, member_alert = members.result()
        codes = flows.result() if flows is not None else None
    return Links(
        alert_row=address_row[alert_address], alert_address=alert_address,
        addresses=encoded.dictionary,
        member_cluster=member_cluster, member_alert=member_alert,
        involved_cluster=involved_cluster, involved_row=involved_row,
        reference_ms=_reference_ms(alerts), flow_codes=codes,
    )
