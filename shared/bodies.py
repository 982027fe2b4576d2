"""The API's response bodies of a date, rendered once into its version folder before publish.

Each list endpoint gets three files: `{name}.json` (the full response), `{name}.json.gz`
(the same bytes gzipped) and `{name}.idx`, little-endian int64
`[head_len, tail_start, bound_0 .. bound_N]` where row i is bytes [bound_i, bound_i+1)
of the body including its leading `[` or `,`, so a page is the head, one byte range and
the tail. metadata.json is served as published, with `metadata.json.gz` beside it.
Rows are rendered column-wise by Arrow's string kernels; floats use its shortest
round-trip text, so every score parses back to the exact float64 stored.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from isal import igzip

from shared import storage

log = logging.getLogger(__name__)

# ISA-L's level 1: at 1M alerts a third of zlib level 1's CPU, and smaller than zlib's level 6.
GZIP_LEVEL = 1
METADATA_GZ = storage.METADATA + ".gz"
# metadata.json keys the list envelopes repeat under "metadata", besides processed_at.
ENVELOPE_METADATA = ("model_versions", "model_github_url", "alert_count", "cluster_count")
HEAD_KEYS = ("processing_date", "network", "window_days")


class RenderError(RuntimeError):
    """A published file cannot be rendered; the message names `{date}/{file}` and the problem."""


@dataclass(frozen=True)
class ListKind:
    """One list endpoint: which file and columns it serves and how the envelope names them."""

    name: str
    file: str
    columns: tuple[str, ...]
    list_key: str
    total_key: str
    model_key: str
    sort_by: str | None = None

    @property
    def body(self) -> str:
        """File name of the full response."""
        return f"{self.name}.json"

    @property
    def gzip(self) -> str:
        """File name of the gzipped full response."""
        return f"{self.name}.json.gz"

    @property
    def index(self) -> str:
        """File name of the row index."""
        return f"{self.name}.idx"


ALERT_SCORES = ListKind("alert-scores", storage.ALERTS_SCORED, ("alert_id", "score"),
                        "scores", "total_alerts", "alert_scorer")
ALERT_RANKINGS = ListKind("alert-rankings", storage.ALERTS_RANKED, ("alert_id", "rank", "score"),
                          "rankings", "total_alerts", "alert_ranker", sort_by="rank")
CLUSTER_SCORES = ListKind("cluster-scores", storage.CLUSTERS_SCORED, ("cluster_id", "score"),
                          "scores", "total_clusters", "cluster_scorer")
LIST_KINDS = (ALERT_SCORES, ALERT_RANKINGS, CLUSTER_SCORES)
FILES = (METADATA_GZ, *(name for k in LIST_KINDS for name in (k.body, k.gzip, k.index)))


def dumps(obj: object) -> bytes:
    """Compact, deterministic JSON bytes (non-ASCII kept as UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def compress(data: bytes) -> bytes:
    """gzip with a fixed mtime, so the same body always compresses to the same bytes."""
    return igzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def is_rendered(version: Path) -> bool:
    """Whether a version folder holds every rendered body."""
    return all((Path(version) / name).is_file() for name in FILES)


def list_body(kind: ListKind, table: pa.Table, meta: dict, model_version: str | None,
              where: str = "") -> tuple[bytes, np.ndarray]:
    """A full list response and its index ([head_len, tail_start, N+1 row bounds])."""
    head = _head(kind, table.num_rows, meta, model_version, where)
    head_bytes = dumps(head)[:-1] + b',"' + kind.list_key.encode() + b'":['
    tail_bytes = b'],"metadata":' + dumps(_envelope_metadata(meta, where)) + b"}"
    joined, offsets = _buffer_and_offsets(row_fragments(table, kind.columns))
    data = b"".join((head_bytes, joined[1:], tail_bytes))
    # In data, fragment i (leading comma included) starts at head_len - 1 + offsets[i].
    bounds = offsets + (len(head_bytes) - 1)
    tail_start = len(head_bytes) + max(len(joined) - 1, 0)
    index = np.concatenate([np.array([len(head_bytes), tail_start], np.int64), bounds])
    return data, index.astype("<i8")


def write_list(folder: Path, kind: ListKind, table: pa.Table, meta: dict,
               model_version: str | None, where: str = "") -> None:
    """Render one list endpoint into folder: its body, gzip and row index."""
    started = time.perf_counter()
    data, index = list_body(kind, table, meta, model_version, where)
    folder = Path(folder)
    (folder / kind.index).write_bytes(index.tobytes())
    (folder / kind.body).write_bytes(data)
    packed = compress(data)
    (folder / kind.gzip).write_bytes(packed)
    log.info("%s: rendered %s, %d rows, %d bytes (%d gzip) in %.2f s", folder.name[:10], kind.name,
             table.num_rows, len(data), len(packed), time.perf_counter() - started)


def write_metadata_gzip(folder: Path) -> None:
    """metadata.json.gz beside metadata.json."""
    folder = Path(folder)
    (folder / METADATA_GZ).write_bytes(compress((folder / storage.METADATA).read_bytes()))


def render_version(version: Path) -> None:
    """Render every body of a folder from its published files (dates published before bodies).

    Raises RenderError naming the file when one cannot be read or lacks what a body needs.
    """
    version = Path(version)
    meta = read_metadata(version)
    with ThreadPoolExecutor(max_workers=len(LIST_KINDS)) as pool:
        for future in [pool.submit(_render_from_file, version, kind, meta) for kind in LIST_KINDS]:
            future.result()
    write_metadata_gzip(version)


def _render_from_file(version: Path, kind: ListKind, meta: dict) -> None:
    table = read_columns(version, kind.file, list(kind.columns), optional=("model_version",))
    if kind.sort_by:
        table = table.take(pc.sort_indices(table, [(kind.sort_by, "ascending")]))
    write_list(version, kind, table, meta, file_model_version(kind, table, meta),
               _name(version, storage.METADATA))


def file_model_version(kind: ListKind, table: pa.Table, meta: dict) -> str | None:
    """The file's model_version (all rows share it); metadata's when the file has none."""
    if "model_version" in table.column_names:
        versions = table.column("model_version").drop_null()
        if len(versions):
            return str(versions[0].as_py())
    return (meta.get("model_versions") or {}).get(kind.model_key)


def read_metadata(version: Path) -> dict:
    """metadata.json of a folder, parsed."""
    name = _name(version, storage.METADATA)
    try:
        meta = json.loads((Path(version) / storage.METADATA).read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RenderError(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise RenderError(f"{name} is not a JSON object")
    return meta


def read_columns(version: Path, file_name: str, columns: list[str],
                 optional: tuple[str, ...] = ()) -> pa.Table:
    """Only the named columns of one output parquet file (optional ones when present)."""
    path = Path(version) / file_name
    try:
        schema = pq.read_schema(path)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise RenderError(f"{_name(version, file_name)} has no column {missing[0]!r}")
        return pq.read_table(path, columns=[*columns, *(c for c in optional if c in schema.names)])
    except (pa.ArrowException, OSError) as exc:
        raise RenderError(f"{_name(version, file_name)} is not a readable parquet file: {exc}") from exc


def _name(version: Path, file_name: str) -> str:
    """`{date}/{file}` for messages: names the file without the server's paths."""
    return f"{Path(version).name[:10]}/{file_name}"


def _head(kind: ListKind, rows: int, meta: dict, model_version: str | None, where: str) -> dict:
    missing = [k for k in HEAD_KEYS if k not in meta]
    if missing:
        raise RenderError(f"{where or storage.METADATA} has no {missing[0]!r}")
    return {"processing_date": meta["processing_date"], "network": meta["network"],
            "window_days": meta["window_days"], "model_version": model_version,
            kind.total_key: rows}


def _envelope_metadata(meta: dict, where: str) -> dict:
    if "timestamp" not in meta:
        raise RenderError(f"{where or storage.METADATA} has no 'timestamp'")
    extra = {k: meta[k] for k in ENVELOPE_METADATA if k in meta}
    return {"processed_at": meta["timestamp"], **extra}


def row_fragments(table: pa.Table, columns: tuple[str, ...]) -> pa.Array:
    """One `,{"col":value,...}` string per row, built column-wise."""
    parts: list = []
    for i, column in enumerate(columns):
        parts.append(("," if i == 0 else "") + ("{" if i == 0 else ",") + json.dumps(column) + ":")
        parts.append(json_values(table.column(column)))
    parts.append("}")
    if table.num_rows == 0:
        return pa.array([], pa.string())
    return pc.binary_join_element_wise(*parts, "")


def json_values(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Each value of a column as JSON text; nulls and non-finite floats become null."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        text = _json_strings(arr.cast(pa.string()))
    elif pa.types.is_integer(arr.type):
        text = arr.cast(pa.string())
    elif pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        floats = arr.cast(pa.float64())
        text = pc.if_else(pc.is_finite(floats), floats.cast(pa.string()), pa.scalar(None, pa.string()))
    else:
        raise TypeError(f"cannot render a column of type {arr.type} as JSON")
    return pc.fill_null(text, "null")


def _needs_escape(arr: pa.Array) -> bool:
    """Whether any string holds a quote, backslash or control character (fast byte scans)."""
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    values = arr.buffers()[2]
    if values is None or len(offsets) < 2 or offsets[-1] == offsets[0]:
        return False
    text = memoryview(values)[offsets[0]:offsets[-1]]
    if np.frombuffer(text, np.uint8).min() < 0x20:
        return True
    data = text.tobytes()
    return b'"' in data or b"\\" in data


def _json_strings(arr: pa.Array) -> pa.Array:
    if len(arr) and _needs_escape(arr):
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False)
                         for v in arr.to_pylist()], pa.string())
    return pc.binary_join_element_wise('"', arr, '"', "")


def _buffer_and_offsets(fragments: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The fragments' concatenated bytes (a view, not a copy) and their N+1 offsets into them."""
    fragments = fragments.cast(pa.large_string())
    if len(fragments) == 0:
        return memoryview(b""), np.zeros(1, dtype=np.int64)
    offsets = np.frombuffer(fragments.buffers()[1], dtype=np.int64)
    offsets = offsets[fragments.offset:fragments.offset + len(fragments) + 1]
    data = memoryview(fragments.buffers()[2])[offsets[0]:offsets[-1]]
    return data, offsets - offsets[0]


def read_index(path: Path) -> tuple[int, int, int]:
    """(head_len, tail_start, rows) of a row index file, checked against its size."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = handle.read(16)
    if size % 8 or size < 24 or len(header) != 16:
        raise ValueError(f"a row index of {size} bytes is not [head_len, tail_start, bounds...]")
    head_len, tail_start = np.frombuffer(header, "<i8").tolist()
    return head_len, tail_start, size // 8 - 3
