"""One input date folder as the processor reads it: validated Arrow tables, META.json, checksums.

Arrow, not pandas: converting list and string columns of a large date to Python
objects would cost more than the models' predictions. Only the columns the
features use are read from alerts, features and money_flows (the alerts' long
text columns are streamed straight into alerts_scored when it is written, so
they never sit in memory beside the feature matrices); clusters are read whole.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset  # noqa: F401  pq.read_table imports it on first use: the worker
import pyarrow.parquet as pq  # pays that once at start, not in every forked job

from services.processor.links import Links, link
from shared import contract
from shared.contract import ContractError
from shared.manifest import recorded_digests
from shared.storage import sha256_file

log = logging.getLogger(__name__)

_NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean)
_NOT_FEATURES = {"window_days", "processing_date", "community_id"}

# Address feature columns the processor may use; any of them may be absent.
FEATURE_COLUMNS = tuple(
    f.name for f in contract.FEATURES_SCHEMA
    if any(check(f.type) for check in _NUMERIC) and f.name not in _NOT_FEATURES
) + contract.LEGACY_FEATURE_COLUMNS

FLOW_COLUMNS = ("tx_count", "amount_usd_sum", "is_bidirectional", "reciprocity_ratio")
ALERT_COLUMNS = ("alert_id", "address", "typology_type", "severity", "suspected_address_type",
                 "alert_confidence_score", "volume_usd", "risk_indicators", "pattern_id",
                 "processing_date", "window_days")


@dataclass
class Inputs:
    """The validated tables of one date (alerts: feature columns only; flows: None if absent).

    links resolves their references to each other; resolving them is also where the
    uniqueness of alerts.alert_id and features.address is checked (one hash table each).
    """

    folder: Path
    alerts: pa.Table
    features: pa.Table
    clusters: pa.Table
    money_flows: pa.Table | None
    meta: dict
    links: Links


def read_meta(folder: Path) -> dict:
    """META.json of a date folder as a dict ({} when absent)."""
    path = Path(folder) / contract.META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(path, f"not readable JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ContractError(path, "is not a JSON object")
    return meta


def load_inputs(folder: Path | str) -> Inputs:
    """Read, validate and link a date folder for processing, or raise ContractError naming
    the problem.

    The files are read side by side: decoding is multi-threaded inside Arrow, but the
    casts and checks are not, so one file's checks overlap another's decoding.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(folder, "date folder does not exist")
    has_flows = (folder / contract.MONEY_FLOWS_FILE).exists()
    if not has_flows:
        log.warning("%s: optional %s is absent; money-flow features will be NaN",
                    folder, contract.MONEY_FLOWS_FILE)
    reads = {  # (spec, columns, unique key checked here rather than by link)
        "alerts": (contract.ALERTS, ALERT_COLUMNS, False),
        "features": (contract.FEATURES, FEATURE_COLUMNS, False),
        "clusters": (contract.CLUSTERS, None, True),
        **({"money_flows": (contract.MONEY_FLOWS, FLOW_COLUMNS, True)} if has_flows else {}),
    }
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="read") as pool:
        futures = {name: pool.submit(contract.read_arrow, folder, spec, columns, unique)
                   for name, (spec, columns, unique) in reads.items()}
        tables = {name: future.result() for name, future in futures.items()}
    alerts, features, clusters = tables["alerts"], tables["features"], tables["clusters"]
    _check_passed_on(folder, alerts)
    flows = tables.get("money_flows")
    return Inputs(folder=folder, alerts=alerts, features=features, clusters=clusters,
                  money_flows=flows, meta=read_meta(folder),
                  links=link(alerts, features, clusters, flows, folder))


def _check_passed_on(folder: Path, alerts: pa.Table) -> None:
    """The alert columns not read (copied into alerts_scored as they are) must still have a
    type the contract accepts; checked from the file's schema, without their data."""
    path = folder / contract.ALERTS_FILE
    schema = pq.read_schema(path)
    contract.check_types(path, schema, contract.ALERTS,
                         [name for name in schema.names if name not in alerts.column_names])


def alert_rows(inputs: Inputs, batch_rows: int = 131_072) -> Iterator[pa.Table]:
    """Every alert column in the file's order, a batch of rows at a time.

    Columns already in inputs.alerts are sliced from memory; only the others (the
    long text ones) are read and validated from the file, so nothing is decoded twice.
    """
    path = inputs.folder / contract.ALERTS_FILE
    names = pq.read_schema(path).names
    held = inputs.alerts
    streamed = [name for name in names if name not in held.column_names] or ["alert_id"]
    offset = 0
    for batch in contract.iter_arrow(inputs.folder, contract.ALERTS, batch_rows, streamed):
        rows = held.slice(offset, batch.num_rows)
        if rows.num_rows != batch.num_rows:
            raise ContractError(path, f"has more rows than the {held.num_rows} read before")
        offset += batch.num_rows
        yield pa.table({name: batch.column(name) if name in batch.column_names
                        else rows.column(name).combine_chunks() for name in names})


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of each batch file present in the folder (META.json included).

    A file whose digest the download recorded (DOWNLOAD.json) and that still has the
    recorded size and modification time keeps that digest: the downloader hashed those
    bytes as it fetched them. Any other file is hashed here.
    """
    folder = Path(folder)
    recorded = recorded_digests(folder)
    names = [name for name in (*contract.BATCH_FILES, contract.META_FILE)
             if (folder / name).is_file()]
    sums = {name: recorded.get(name) or sha256_file(folder / name) for name in names}
    reused = sum(name in recorded for name in names)
    log.info("%s: sha256 of %d input files (%d recorded by the download, %d hashed)", folder,
             len(names), reused, len(names) - reused)
    return sums


def _single_value(inputs: Inputs, column: str):
    values = pc.unique(inputs.alerts.column(column)).drop_null().to_pylist()
    if len(values) > 1:
        shown = ", ".join(map(str, sorted(values)[:5]))
        raise ContractError(inputs.folder / contract.ALERTS_FILE,
                            f"column {column!r} holds several values ({shown}); one batch has one")
    return values[0] if values else None


def batch_identity(inputs: Inputs, processing_date: str, default_network: str,
                   default_window: int) -> tuple[str, int]:
    """(network, window_days) of the batch; the alerts' processing_date must be the asked one."""
    found = _single_value(inputs, "processing_date")
    if found is not None and str(found) != processing_date:
        raise ContractError(inputs.folder / contract.ALERTS_FILE,
                            f"processing_date is {found}, not the requested {processing_date}")
    window = _single_value(inputs, "window_days")
    if window is None:
        window = inputs.meta.get("window_days", default_window)
    network = inputs.meta.get("network") or default_network
    return str(network), int(window)
