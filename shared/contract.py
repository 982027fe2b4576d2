"""The SOT data contract: file names, Arrow schemas and the validator of a date folder.

Schemas are what the producer writes (SOT_CONTRACT.md section 2). The validator is
lenient where the real SOT is loose (decimals, string dates, optional columns) and
strict where the miner's output depends on it (keys, required columns).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

ALERTS_FILE = "alerts.parquet"
FEATURES_FILE = "features.parquet"
CLUSTERS_FILE = "clusters.parquet"
MONEY_FLOWS_FILE = "money_flows.parquet"
LABELS_FILE = "address_labels.parquet"
META_FILE = "META.json"
# The SOT's export since 2025-12-01: structural pattern detections per address (optional).
PATTERNS_FILE = "patterns.parquet"

REQUIRED_BATCH_FILES = (ALERTS_FILE, FEATURES_FILE, CLUSTERS_FILE)
OPTIONAL_BATCH_FILES = (MONEY_FLOWS_FILE,)
BATCH_FILES = REQUIRED_BATCH_FILES + OPTIONAL_BATCH_FILES

# ClickHouse Decimal128(18): precision 38, scale 18.
DECIMAL = pa.decimal128(38, 18)

TYPOLOGIES = (
    "PEEL_CHAIN", "STRUCTURING", "PING_PONG", "HUB_ANOMALY", "FRESH_TO_EXCHANGE",
    "RAPID_FANOUT", "MIXING_BEHAVIOR", "INTRADAY_STRUCTURING", "VELOCITY_ANOMALY",
    "TIME_BASED_PATTERN", "CYCLE_DETECTION", "LAYERING_PATH", "SMURFING_NETWORK",
    "PROXIMITY_RISK", "MOTIF_FANIN", "MOTIF_FANOUT",
)
SEVERITIES = ("low", "medium", "high", "critical")
RISK_LEVELS = SEVERITIES
TRUST_LEVELS = ("verified", "community", "unverified", "official", "blacklisted")

_COMMON = [("window_days", pa.uint16()), ("processing_date", pa.date32())]

ALERTS_SCHEMA = pa.schema([
    ("alert_id", pa.string()),
    ("address", pa.string()),
    ("typology_type", pa.string()),
    ("pattern_id", pa.string()),
    ("pattern_type", pa.string()),
    ("severity", pa.string()),
    ("suspected_address_type", pa.string()),
    ("suspected_address_subtype", pa.string()),
    ("alert_confidence_score", pa.float32()),
    ("description", pa.string()),
    ("volume_usd", DECIMAL),
    ("evidence_json", pa.string()),
    ("risk_indicators", pa.list_(pa.string())),
    *_COMMON,
])

_U32, _U64, _F32, _F64, _U8 = pa.uint32(), pa.uint64(), pa.float32(), pa.float64(), pa.uint8()

FEATURES_SCHEMA = pa.schema([
    ("address", pa.string()),
    *[(c, _U32) for c in ("degree_in", "degree_out", "degree_total", "unique_counterparties")],
    *[(c, DECIMAL) for c in (
        "total_in_usd", "total_out_usd", "net_flow_usd", "total_volume_usd", "avg_tx_in_usd",
        "avg_tx_out_usd", "median_tx_in_usd", "median_tx_out_usd", "max_tx_usd", "min_tx_usd")],
    *[(c, _F64) for c in (
        "amount_variance", "amount_skewness", "amount_kurtosis", "volume_std", "volume_cv",
        "flow_concentration")],
    *[(c, _U64) for c in ("tx_in_count", "tx_out_count", "tx_total_count")],
    ("activity_days", _U32), ("activity_span_days", _U32), ("avg_daily_volume_usd", DECIMAL),
    ("peak_hour", _U8), ("peak_day", _U8), ("regularity_score", _F32), ("burst_factor", _F32),
    *[(c, _F32) for c in (
        "reciprocity_ratio", "flow_diversity", "counterparty_concentration", "concentration_ratio",
        "velocity_score", "structuring_score")],
    ("unique_assets_in", _U32), ("unique_assets_out", _U32),
    ("dominant_asset_in", pa.string()), ("dominant_asset_out", pa.string()),
    ("asset_diversity_score", _F32),
    ("hourly_activity", pa.list_(pa.uint16())), ("daily_activity", pa.list_(pa.uint16())),
    ("peak_activity_hour", _U8), ("peak_activity_day", _U8),
    *[(c, _F32) for c in (
        "hourly_entropy", "daily_entropy", "weekend_transaction_ratio", "night_transaction_ratio",
        "small_transaction_ratio", "consistency_score")],
    *[(c, _F32) for c in ("pagerank", "betweenness", "closeness", "clustering_coefficient",
                          "centrality_score")],
    ("kcore", _U32), ("community_id", _U32),
    *[(c, _U32) for c in ("khop1_count", "khop2_count", "khop3_count")],
    *[(c, DECIMAL) for c in ("khop1_volume_usd", "khop2_volume_usd", "khop3_volume_usd")],
    *[(c, _F32) for c in (
        "flow_reciprocity_entropy", "counterparty_stability", "flow_burstiness",
        "transaction_regularity", "amount_predictability")],
    ("is_new_address", pa.bool_()), ("is_dormant_reactivated", pa.bool_()),
    ("unique_recipients_count", _U32), ("unique_senders_count", _U32),
    ("first_activity_timestamp", _U64), ("last_activity_timestamp", _U64),
    *_COMMON,
])

# Older SOT versions carry these too; newer ones drop them. Never required.
LEGACY_FEATURE_COLUMNS = (
    "behavioral_anomaly_score", "graph_anomaly_score", "neighborhood_anomaly_score",
    "global_anomaly_score", "outlier_transactions", "suspicious_pattern_score",
    "is_exchange_like", "is_whale", "is_mixer_like", "is_contract_like",
    "is_high_volume_trader", "is_hub_address", "is_retail_active", "is_dormant_account",
    "is_high_frequency_trader", "is_cross_chain_active", "completeness_score",
    "quality_score", "outlier_score", "confidence_score",
)

CLUSTERS_SCHEMA = pa.schema([
    ("cluster_id", pa.string()),
    ("cluster_type", pa.string()),
    ("primary_address", pa.string()),
    ("pattern_id", pa.string()),
    ("primary_alert_id", pa.string()),
    ("related_alert_ids", pa.list_(pa.string())),
    ("addresses_involved", pa.list_(pa.string())),
    ("total_alerts", _U32),
    ("total_volume_usd", DECIMAL),
    ("severity_max", pa.string()),
    ("confidence_avg", _F32),
    ("earliest_alert_timestamp", _U64),
    ("latest_alert_timestamp", _U64),
    *_COMMON,
])

MONEY_FLOWS_SCHEMA = pa.schema([
    ("from_address", pa.string()), ("to_address", pa.string()),
    ("tx_count", _U64), ("amount_sum", DECIMAL), ("amount_usd_sum", DECIMAL),
    ("first_seen_timestamp", _U64), ("last_seen_timestamp", _U64),
    ("active_days", _U32), ("unique_assets", _U32), ("avg_tx_size_usd", DECIMAL),
    ("dominant_asset", pa.string()),
    ("hourly_pattern", pa.list_(pa.uint16())), ("weekly_pattern", pa.list_(pa.uint16())),
    ("reciprocity_ratio", _F32), ("is_bidirectional", pa.bool_()),
    ("window_days", pa.uint16()), ("processing_date", pa.string()),
])

LABELS_SCHEMA = pa.schema([
    ("network", pa.string()), ("network_type", pa.string()), ("address", pa.string()),
    ("label", pa.string()), ("address_type", pa.string()), ("address_subtype", pa.string()),
    ("trust_level", pa.string()), ("source", pa.string()), ("risk_level", pa.string()),
    ("confidence_score", _F32), ("created_timestamp", _U64), ("updated_timestamp", _U64),
])


@dataclass(frozen=True)
class TableSpec:
    """How one input file is checked: its schema, required columns and unique key."""

    file: str
    schema: pa.Schema
    required: tuple[str, ...]
    key: str | None = None
    non_empty: bool = False
    # Decimals that only feed models may take the fast conversion (within 2 ulp); decimals
    # that are copied into results keep Arrow's exact cast.
    fast_decimals: bool = False
    # Columns besides the key that no row may leave null or empty (the processor joins on them).
    filled: tuple[str, ...] = ()


ALERTS = TableSpec(ALERTS_FILE, ALERTS_SCHEMA,
                   ("alert_id", "address", "processing_date", "window_days"), "alert_id", True,
                   filled=("address",))
FEATURES = TableSpec(FEATURES_FILE, FEATURES_SCHEMA, ("address",), "address", fast_decimals=True)
CLUSTERS = TableSpec(CLUSTERS_FILE, CLUSTERS_SCHEMA, ("cluster_id",), "cluster_id")
MONEY_FLOWS = TableSpec(MONEY_FLOWS_FILE, MONEY_FLOWS_SCHEMA, ("from_address", "to_address"),
                        fast_decimals=True)
LABELS = TableSpec(LABELS_FILE, LABELS_SCHEMA, ("address", "risk_level"))

# Types a column may arrive in and still be accepted as-is or cast.
_LIST_TYPES = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)


class ContractError(ValueError):
    """An input file breaks the SOT contract; the message names the file and the problem."""

    def __init__(self, file: str | Path, problem: str):
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


@dataclass
class Batch:
    """Clean input tables of one date; money_flows and labels may be absent (None)."""

    alerts: pd.DataFrame
    features: pd.DataFrame
    clusters: pd.DataFrame
    money_flows: pd.DataFrame | None
    labels: pd.DataFrame | None


def _target_type(spec_type: pa.DataType, actual: pa.DataType) -> pa.DataType:
    """The type a column becomes after cleaning: decimals to float64, dates as given."""
    if pa.types.is_decimal(spec_type) or pa.types.is_decimal(actual):
        return pa.float64()
    return spec_type


_TWO_64 = 18446744073709551616.0  # 2**64


def _magnitudes(low: np.ndarray, high: np.ndarray, scale: int) -> np.ndarray:
    """(high * 2**64 + low) / 10**scale as float64, for unsigned 64-bit words."""
    values = high.astype(np.float64)
    values *= _TWO_64
    values += low
    values /= 10.0 ** scale
    return values


def _decimal_chunk_to_float64(chunk: pa.Array) -> pa.Array:
    """One decimal128 array as float64, from its 16-byte little-endian two's complement integers.

    Arrow's own cast divides each 128-bit integer exactly and costs four times as
    much. Here |value| = (high * 2**64 + low) / 10**scale of the magnitude's words
    (the magnitude, so small negative numbers do not cancel), within two ulp of exact.
    All rows are first converted as if non-negative (no temporary arrays), then the
    negative ones again from their magnitude.
    """
    words = np.frombuffer(chunk.buffers()[1], dtype=np.uint64, count=2 * (chunk.offset + len(chunk)))
    low, high = words[2 * chunk.offset::2], words[2 * chunk.offset + 1::2]
    scale = chunk.type.scale
    values = _magnitudes(low, high, scale)
    negative = np.flatnonzero(high.view(np.int64) < 0)
    if len(negative):
        low, high = low[negative], high[negative]
        values[negative] = -_magnitudes(~low + np.uint64(1), ~high + (low == 0), scale)
    if not chunk.null_count:
        return pa.array(values, pa.float64())
    return pa.array(values, pa.float64(), mask=chunk.is_null().to_numpy(zero_copy_only=False))


def decimal_to_float64(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A decimal128 column as float64 (nulls kept); other decimal widths use Arrow's cast."""
    if not pa.types.is_decimal128(column.type):
        return column.cast(pa.float64())
    return pa.chunked_array([_decimal_chunk_to_float64(chunk) for chunk in column.chunks],
                            pa.float64())


def _clean_column(path: Path, name: str, column: pa.ChunkedArray, spec_type: pa.DataType,
                  fast_decimals: bool = False):
    if pa.types.is_dictionary(column.type):  # dictionary-encoded (e.g. LowCardinality) values
        column = column.cast(column.type.value_type)
    actual = column.type
    if any(check(spec_type) for check in _LIST_TYPES):
        if not any(check(actual) for check in _LIST_TYPES) and not pa.types.is_null(actual):
            raise ContractError(path, f"column {name!r} has type {actual}, expected a list")
        return column
    if name == "processing_date":
        return _clean_date(path, column)
    target = _target_type(spec_type, actual)
    if actual == target:
        return column
    if fast_decimals and pa.types.is_decimal(actual) and target == pa.float64():
        return decimal_to_float64(column)
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ContractError(path, f"column {name!r} has type {actual} that cannot be cast "
                                  f"to {target}: {exc}") from exc


def _clean_date(path: Path, column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_date32(column.type):
        return column
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return column.cast(pa.timestamp("s")).cast(pa.date32())
        return column.cast(pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ContractError(path, f"column 'processing_date' of type {column.type} is not a "
                                  f"date: {exc}") from exc


def _read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    if path.exists() and not path.is_file():
        raise ContractError(path, "is not a file")
    if not path.is_file():
        raise ContractError(path, "file is missing")
    try:
        # Mapped, not read into fresh buffers: less page-fault work on large files.
        # Safe because date folders are published by rename and never rewritten in place.
        return pq.read_table(path, columns=columns, memory_map=True)
    except (pa.ArrowException, OSError) as exc:
        raise ContractError(path, f"not a readable parquet file ({exc})") from exc


def _read_schema(path: Path) -> pa.Schema:
    if path.exists() and not path.is_file():
        raise ContractError(path, "is not a file")
    if not path.is_file():
        raise ContractError(path, "file is missing")
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise ContractError(path, f"not a readable parquet file ({exc})") from exc


def _check_filled(path: Path, table: pa.Table, name: str) -> None:
    """A column every row must fill: no null and (for text) no empty value."""
    column = table.column(name)
    empty = column.null_count
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        empty += int(pc.sum(pc.equal(column, "")).as_py() or 0)
    if empty:
        raise ContractError(path, f"{empty} row(s) with null or empty {name!r}")


def _duplicates(path: Path, column, key: str, distinct: int) -> ContractError:
    counts = pc.value_counts(column)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    sample = ", ".join(map(str, repeated[:5].to_pylist()))
    return ContractError(path, f"{len(column) - distinct} duplicate {key!r} value(s), "
                               f"e.g. {sample}")


def _check_key(path: Path, table: pa.Table, key: str, unique: bool = True) -> None:
    _check_filled(path, table, key)
    column = table.column(key)
    if unique and (distinct := pc.count_distinct(column).as_py()) != len(column):
        raise _duplicates(path, column, key, distinct)


def positions_in_key(path: Path, table: pa.Table, key: str, queries) -> np.ndarray:
    """Row of each query value in table's key column (-1 where absent or null).

    Checks on the way that the key is unique (ContractError naming path otherwise):
    one hash table over key and queries serves both, where a separate uniqueness
    check would hash a million keys a second time. Dictionary codes follow first
    appearance, so the key's n values are distinct exactly when the last gets code n-1.
    """
    column = table.column(key)
    n = len(column)
    queries = queries.chunks if isinstance(queries, pa.ChunkedArray) else [queries]
    encoded = pc.dictionary_encode(pa.chunked_array([*column.chunks, *queries], column.type))
    codes = pc.fill_null(pa.chunked_array([chunk.indices for chunk in encoded.chunks]), -1)
    codes = codes.to_numpy().astype(np.int64)
    if n and codes[n - 1] != n - 1:
        raise _duplicates(path, column, key, int(codes[:n].max()) + 1)
    found = codes[n:]
    found[found >= n] = -1
    return found


def clean_arrow(path: Path, table: pa.Table, spec: TableSpec, unique_key: bool = True) -> pa.Table:
    """Check one table against its spec and return it as an Arrow table with clean types.

    unique_key=False leaves the key's uniqueness to the caller, who checks it with
    positions_in_key while looking values up in it (the processor's links).
    """
    missing = [c for c in spec.required if c not in table.column_names]
    if missing:
        raise ContractError(path, f"missing required column(s): {', '.join(missing)}")
    if spec.non_empty and table.num_rows == 0:
        raise ContractError(path, "has no rows")
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        index = spec.schema.get_field_index(name)
        spec_type = spec.schema.field(index).type if index >= 0 else column.type
        columns[name] = _clean_column(path, name, column, spec_type, spec.fast_decimals)
    cleaned = pa.table(columns)
    for name in spec.filled:
        if name in cleaned.column_names:
            _check_filled(path, cleaned, name)
    if spec.key:
        _check_key(path, cleaned, spec.key, unique_key)
    return cleaned


def result_schema(schema: pa.Schema, spec: TableSpec) -> pa.Schema:
    """The one schema the processor's results give cleaned input columns, whatever wrote the
    input: the spec's types (decimals as float64, lists as the spec's), all nullable; columns
    the spec does not name keep their type."""
    fields = []
    for field in schema:
        index = spec.schema.get_field_index(field.name)
        kind = field.type if index < 0 else _target_type(spec.schema.field(index).type, field.type)
        fields.append(pa.field(field.name, kind))
    return pa.schema(fields)


def check_types(path: Path, schema: pa.Schema, spec: TableSpec, names) -> None:
    """Raise ContractError for a named column of schema whose type cannot become the spec's.

    Checked on an empty column of that type, so no data is read: for columns read only when
    the result is written, so a bad type fails before scoring. Casts that only fail for some
    values (text to numbers) are not caught this way.
    """
    for name in names:
        index = spec.schema.get_field_index(name)
        if index >= 0:
            empty = pa.chunked_array([], schema.field(name).type)
            _clean_column(path, name, empty, spec.schema.field(index).type, spec.fast_decimals)


def clean_table(path: Path, table: pa.Table, spec: TableSpec) -> pd.DataFrame:
    """Check one table against its spec and return it as a pandas frame with clean types."""
    return clean_arrow(path, table, spec).to_pandas(split_blocks=True, self_destruct=True)


def read_arrow(folder: Path, spec: TableSpec, columns=None, unique_key: bool = True) -> pa.Table:
    """Read and validate one file of a date folder as Arrow, optionally only some columns.

    Required columns are always read; names in `columns` the file lacks are skipped,
    so optional columns can be asked for without being required. unique_key: see
    clean_arrow.
    """
    path = Path(folder) / spec.file
    if columns is None:
        return clean_arrow(path, _read_table(path), spec, unique_key)
    present = set(_read_schema(path).names)
    wanted = list(dict.fromkeys([*spec.required, *columns]))
    return clean_arrow(path, _read_table(path, [c for c in wanted if c in present]), spec,
                       unique_key)


def iter_arrow(folder: Path, spec: TableSpec, batch_rows: int = 131_072,
               columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Read and validate one file in batches of rows (not its key: that needs the whole column).

    With `columns`, only those are read (and none is required), in the file's order.
    """
    path = Path(folder) / spec.file
    _read_schema(path)  # missing or unreadable file: the same errors as a whole read
    per_batch = replace(spec, key=None, non_empty=False,
                        required=spec.required if columns is None else ())
    try:
        batches = pq.ParquetFile(path, memory_map=True).iter_batches(batch_size=batch_rows,
                                                                     columns=columns)
        for batch in batches:
            yield clean_arrow(path, pa.Table.from_batches([batch]), per_batch)
    except (pa.ArrowException, OSError) as exc:
        raise ContractError(path, f"not a readable parquet file ({exc})") from exc


def read_table(folder: Path, spec: TableSpec) -> pd.DataFrame:
    """Read and validate one file of a date folder."""
    path = Path(folder) / spec.file
    return clean_table(path, _read_table(path), spec)


def _read_optional(folder: Path, spec: TableSpec) -> pd.DataFrame | None:
    if not (Path(folder) / spec.file).exists():
        log.warning("%s: optional file %s is absent, going on without it", folder, spec.file)
        return None
    return read_table(folder, spec)


def load_batch(folder: Path | str, with_labels: bool = True) -> Batch:
    """Read and validate a downloaded date folder, or raise ContractError naming the problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(folder, "date folder does not exist")
    return Batch(
        alerts=read_table(folder, ALERTS),
        features=read_table(folder, FEATURES),
        clusters=read_table(folder, CLUSTERS),
        money_flows=_read_optional(folder, MONEY_FLOWS),
        labels=_read_optional(folder, LABELS) if with_labels else None,
    )
