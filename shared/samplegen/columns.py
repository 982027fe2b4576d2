"""Vectorised builders of Arrow columns and stable per-id randomness for the sample generator."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared.contract import DECIMAL

_U64 = np.uint64
_MASK53 = 2.0 ** -53
UUID_CHUNK = 200_000


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijective, well-mixed hash of uint64 values."""
    x = np.asarray(x, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def stable_key(*parts) -> int:
    """A 64-bit key from text parts (same parts, same key on every machine)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def stable_bits(ids: np.ndarray, key: int, stream: int) -> np.ndarray:
    """64 random bits per id that depend only on (key, stream, id), not on any date."""
    salt = mix64(np.array([(key ^ (stream * 0x632BE59BD9B4E019)) & (2**64 - 1)], dtype=_U64))
    return mix64(np.asarray(ids, dtype=_U64) ^ salt)


def stable_uniform(ids: np.ndarray, key: int, stream: int) -> np.ndarray:
    """A uniform [0, 1) draw per id that depends only on (key, stream, id)."""
    return (stable_bits(ids, key, stream) >> _U64(11)).astype(np.float64) * _MASK53


def window_column(window_days: int, n: int) -> pa.Array:
    """The uint16 window_days column every table carries."""
    return pa.array(np.full(n, window_days, dtype=np.uint16))


def date_column(date_days: int, n: int) -> pa.Array:
    """The date32 processing_date column (days since 1970-01-01)."""
    return pa.array(np.full(n, date_days, dtype=np.int32), type=pa.date32())


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decimal_usd(values: np.ndarray) -> pa.Array:
    """USD amounts as decimal128(38,18), rounded to cents so the digits are exact."""
    return _decimal(values, 2)


def decimal_native(values: np.ndarray) -> pa.Array:
    """Native-asset amounts as decimal128(38,18), rounded to 8 digits (satoshi)."""
    return _decimal(values, 8)


def _decimal(values: np.ndarray, digits: int) -> pa.Array:
    # Exact digits: build decimal(38, digits) straight from int64 units (float->decimal
    # casts are inexact), then widen to scale 18, which is exact.
    units = np.rint(np.asarray(values, dtype=np.float64) * 10.0 ** digits).astype(np.int64)
    words = np.empty((len(units), 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = units >> 63  # sign extension into the high 64 bits
    raw = pa.Array.from_buffers(pa.decimal128(38, digits), len(units), [None, pa.py_buffer(words)])
    return raw.cast(DECIMAL)


def fixed_lists(matrix: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """A list column from a 2-d matrix (every row the same length)."""
    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(matrix).ravel(), type=value_type)
    return pa.ListArray.from_arrays(offsets, values)


def ragged_lists(offsets: np.ndarray, values: pa.Array) -> pa.Array:
    """A list<string> column from int offsets into a flat values array."""
    return pa.ListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int32)), values)


def pick(vocabulary, index: np.ndarray) -> pa.Array:
    """Strings chosen from a small vocabulary by index, as an Arrow string array."""
    return pa.array(list(vocabulary), type=pa.string()).take(pa.array(index))


def bytes_to_strings(matrix: np.ndarray) -> pa.Array:
    """Rows of an (n, width) uint8 matrix of ASCII as an Arrow string array."""
    width = matrix.shape[1]
    flat = np.ascontiguousarray(matrix).view(f"S{width}").ravel()
    return pa.array(flat, type=pa.binary(width)).cast(pa.binary()).cast(pa.string())


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES = (8, 13, 18, 23)


def uuid5_strings(names: pa.Array, namespace: uuid.UUID) -> pa.Array:
    """uuid.uuid5(namespace, name) of every name, as canonical strings.

    SHA-1 per name has no vectorised form in numpy/arrow, so digests come from
    hashlib in chunks; all formatting around them is vectorised.
    """
    prefix = namespace.bytes
    parts = []
    for start in range(0, len(names), UUID_CHUNK):
        chunk = names.slice(start, UUID_CHUNK).to_pylist()
        digests = b"".join([hashlib.sha1(prefix + n.encode()).digest() for n in chunk])
        parts.append(_format_uuids(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 20)))
    if not parts:
        return pa.array([], type=pa.string())
    return pa.concat_arrays(parts)


def _format_uuids(digests: np.ndarray) -> pa.Array:
    raw = digests[:, :16].copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50  # version 5
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexes = np.empty((len(raw), 32), dtype=np.uint8)
    hexes[:, 0::2] = _HEX[raw >> 4]
    hexes[:, 1::2] = _HEX[raw & 0x0F]
    out = np.insert(hexes, [8, 12, 16, 20], ord("-"), axis=1)
    return bytes_to_strings(out)


def hex_strings(values: np.ndarray, width: int) -> pa.Array:
    """The low 4*width bits of each uint64 as fixed-width lower-case hex strings."""
    values = np.asarray(values, dtype=np.uint64)
    out = np.empty((len(values), width), dtype=np.uint8)
    for j in range(width):
        out[:, width - 1 - j] = _HEX[(values >> np.uint64(4 * j)) & np.uint64(15)]
    return bytes_to_strings(out)


def number_strings(values: np.ndarray, decimals: int | None = None) -> pa.Array:
    """Numbers as their shortest text (rounded first when decimals is given)."""
    values = np.asarray(values)
    if decimals is not None:
        values = np.round(values.astype(np.float64), decimals)
    return pa.array(values).cast(pa.string())


def join(*parts) -> pa.Array:
    """Concatenate string arrays and literal strings element-wise."""
    parts = [pa.scalar(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*parts, "")


CHUNK_ROWS = 131_072


def multinomial_rows(rng: np.random.Generator, totals: np.ndarray,
                     logits: np.ndarray) -> np.ndarray:
    """Each row's total split over bins with softmax(logits) probabilities, capped at uint16.

    Drawn as one binomial per bin over all rows of a chunk (conditional on what is
    left), which is far faster than numpy's row-by-row multinomial; chunks bound memory.
    """
    totals = np.asarray(totals, dtype=np.int64)
    out = np.empty(logits.shape, dtype=np.uint16)
    for start in range(0, len(totals), CHUNK_ROWS):
        part = slice(start, start + CHUNK_ROWS)
        chunk = np.asarray(logits[part], dtype=np.float64)
        out[part] = _multinomial_chunk(rng, totals[part], chunk)
    return out


def _multinomial_chunk(rng: np.random.Generator, totals: np.ndarray,
                       logits: np.ndarray) -> np.ndarray:
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = np.empty(probs.shape, dtype=np.uint16)
    left, rest = totals.copy(), np.ones(len(totals))
    for k in range(probs.shape[1] - 1):
        share = np.clip(probs[:, k] / np.maximum(rest, 1e-12), 0.0, 1.0)
        drawn = rng.binomial(left, share)
        out[:, k] = np.minimum(drawn, 65_535)
        left -= drawn
        rest -= probs[:, k]
    out[:, -1] = np.minimum(left, 65_535)
    return out


def segment_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges [start, start+length) for every segment, vectorised."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    seg_offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return (np.repeat(np.asarray(starts, dtype=np.int64) - seg_offsets, lengths)
            + np.arange(total, dtype=np.int64))


def gumbel_top(log_weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k items drawn without replacement with the given weights (Gumbel top-k)."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    if k >= keys.size:
        return np.arange(keys.size)
    return np.argpartition(-keys, k - 1)[:k]
