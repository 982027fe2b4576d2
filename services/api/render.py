"""JSON rendering of a date's responses: whole columns at once with Arrow, bytes out.

A list response is `{head..., "<list>": [rows], "metadata": {...}}`. Each row is
rendered as a `,{...}` fragment by Arrow's vectorised string kernels; the body is
head + fragments + tail, and the fragments' offsets are kept so a page is two
slices of the cached body plus head and tail, with nothing rendered per request.
Floats use Arrow's shortest round-trip formatting, so every score parses back to
the exact float64 that was stored.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GZIP_LEVEL = 6
# Large bodies are kept and sent in 1 MiB pieces: through gunicorn, a few 1 MiB writes
# measured ~20% faster than one multi-megabyte sendall (bench/bench_api.py).
CHUNK = 1 << 20
# Any of these in a string forces the exact (slow) JSON escaper for that column.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


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


@dataclass(frozen=True)
class Body:
    """A rendered response: its bytes in chunks, precompressed chunks, strong ETags, row offsets."""

    chunks: tuple[bytes, ...]
    etag: str
    gzip_chunks: tuple[bytes, ...] | None = None
    gzip_etag: str | None = None
    head_len: int = 0
    tail_start: int = 0
    row_bounds: np.ndarray | None = None  # row i is bytes [row_bounds[i], row_bounds[i+1]) with its comma

    @property
    def size(self) -> int:
        """Length of the plain body."""
        return sum(len(c) for c in self.chunks)

    @property
    def gzip_size(self) -> int:
        """Length of the gzip body (0 when there is none)."""
        return sum(len(c) for c in self.gzip_chunks or ())

    @property
    def data(self) -> bytes:
        """The plain body in one piece."""
        return b"".join(self.chunks)

    @property
    def gzip(self) -> bytes | None:
        """The gzip body in one piece, if precompressed."""
        return None if self.gzip_chunks is None else b"".join(self.gzip_chunks)

    @property
    def rows(self) -> int:
        """How many list rows the body holds."""
        return 0 if self.row_bounds is None else len(self.row_bounds) - 1

    def read(self, start: int, stop: int) -> bytes:
        """Plain body bytes [start, stop), across chunk borders."""
        if stop <= start:
            return b""
        first, last = start // CHUNK, (stop - 1) // CHUNK
        if first == last:
            return self.chunks[first][start - first * CHUNK:stop - first * CHUNK]
        pieces = [self.chunks[first][start - first * CHUNK:], *self.chunks[first + 1:last],
                  self.chunks[last][:stop - last * CHUNK]]
        return b"".join(pieces)


def split(data: bytes) -> tuple[bytes, ...]:
    """data in CHUNK-sized pieces (the last one shorter)."""
    if len(data) <= CHUNK:
        return (data,)
    return tuple(data[i:i + CHUNK] for i in range(0, len(data), CHUNK))


def etag_for(*parts: object) -> str:
    """A short strong ETag from identity parts (version folder name, kind, page)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def dumps(obj: object) -> bytes:
    """Compact, deterministic JSON bytes (non-ASCII kept as UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def compress(data: bytes) -> bytes:
    """gzip with a fixed mtime, so the same body always compresses to the same bytes."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def static_body(data: bytes, identity: str, *, precompress: bool = True) -> Body:
    """A body without rows (metadata, dates, the OpenAPI document)."""
    if not precompress:
        return Body(chunks=split(data), etag=etag_for(identity))
    return Body(chunks=split(data), etag=etag_for(identity), gzip_chunks=split(compress(data)),
                gzip_etag=etag_for(identity, "gzip"))


def list_body(kind: ListKind, table: pa.Table, head: dict, tail: dict, identity: str) -> Body:
    """Render a full list response once; its ETags derive from the version folder's identity."""
    fragments = row_fragments(table, kind.columns)
    joined, offsets = _buffer_and_offsets(fragments)
    head_bytes = dumps(head)[:-1] + b',"' + kind.list_key.encode() + b'":['
    tail_bytes = b'],"metadata":' + dumps(tail) + b"}"
    data = b"".join((head_bytes, joined[1:], tail_bytes))
    # In data, fragment i (leading comma included) starts at head_len - 1 + offsets[i].
    bounds = offsets + (len(head_bytes) - 1)
    return Body(chunks=split(data), etag=etag_for(identity, kind.name),
                gzip_chunks=split(compress(data)), gzip_etag=etag_for(identity, kind.name, "gzip"),
                head_len=len(head_bytes), tail_start=len(head_bytes) + max(len(joined) - 1, 0),
                row_bounds=bounds)


def page(body: Body, offset: int, limit: int | None) -> bytes:
    """The same response restricted to rows [offset, offset+limit): head + slice + tail."""
    n = body.rows
    start = min(offset, n)
    stop = n if limit is None else min(n, start + limit)
    rows = b"" if start == stop else body.read(int(body.row_bounds[start]) + 1,  # skip its comma
                                               int(body.row_bounds[stop]))
    return b"".join((body.read(0, body.head_len), rows, body.read(body.tail_start, body.size)))


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


def _json_strings(arr: pa.Array) -> pa.Array:
    if len(arr) and pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False)
                         for v in arr.to_pylist()], pa.string())
    return pc.binary_join_element_wise('"', arr, '"', "")


def _buffer_and_offsets(fragments: pa.Array) -> tuple[bytes, np.ndarray]:
    """The fragments' concatenated bytes and their N+1 offsets into them."""
    fragments = fragments.cast(pa.large_string())
    if len(fragments) == 0:
        return b"", np.zeros(1, dtype=np.int64)
    offsets = np.frombuffer(fragments.buffers()[1], dtype=np.int64)
    offsets = offsets[fragments.offset:fragments.offset + len(fragments) + 1]
    data = fragments.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
    return data, offsets - offsets[0]
