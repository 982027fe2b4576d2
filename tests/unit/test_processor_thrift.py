"""The compact-protocol codec: real Parquet footers round-trip byte for byte; bad bytes fail."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.processor import thrift_compact as thrift
from services.processor.thrift_compact import (BINARY, DOUBLE, FALSE, I8, I16, I32, I64, LIST, MAP,
                                               STRUCT, TRUE, List, Map, Struct)


def _footer(path) -> bytes:
    data = path.read_bytes()
    length = struct.unpack("<I", data[-8:-4])[0]
    return data[-8 - length:-8]


@pytest.mark.parametrize("options", [
    {},
    {"compression": "snappy", "use_dictionary": False, "row_group_size": 100},
    {"write_page_index": True, "data_page_version": "2.0", "row_group_size": 333},
    {"compression": "zstd", "write_statistics": False, "store_schema": False},
])
def test_parquet_footers_round_trip_byte_for_byte(tmp_path, options):
    rng = np.random.default_rng(5)
    table = pa.table({
        "id": [f"a{i}" for i in range(1000)],
        "value": rng.normal(size=1000),
        "tags": [[f"t{j}" for j in range(i % 3)] for i in range(1000)],
        "money": pa.array([i / 100 for i in range(1000)]).cast(pa.decimal128(38, 18)),
        "small": pa.array(rng.integers(-5, 5, 1000), pa.int8()),
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, **options)
    raw = _footer(path)
    meta, end = thrift.decode_struct(raw)
    assert end == len(raw)
    assert thrift.encode_struct(meta) == raw
    assert meta.get(3) == 1000  # FileMetaData.num_rows


def test_every_wire_type_round_trips():
    value = Struct([
        [1, TRUE, True], [2, FALSE, False], [3, I8, -7], [4, I16, -300], [5, I32, 2 ** 31 - 1],
        [6, I64, -(2 ** 63)], [7, DOUBLE, 1.5], [8, BINARY, b"\x00\xffbytes"],
        [40, LIST, List(I32, list(range(-10, 20)))],  # a field id jump and a long list
        [41, LIST, List(TRUE, [1, 2, 1])],  # booleans in a list: one byte each
        [42, MAP, Map(BINARY, I64, [(b"k", 1), (b"l", -2)])], [43, MAP, Map(0, 0, [])],
        [44, STRUCT, Struct([[1, STRUCT, Struct()], [3, LIST, List(STRUCT, [Struct()])]])],
    ])
    encoded = thrift.encode_struct(value)
    decoded, end = thrift.decode_struct(encoded)
    assert end == len(encoded)
    assert decoded == value
    assert thrift.encode_struct(decoded) == encoded


def test_struct_set_get_and_drop():
    value = Struct([[1, I32, 1], [5, I64, 5]])
    value.set(3, I32, 3)
    value.set(5, I64, 50)
    value.drop(1, 9)
    assert [f[0] for f in value.fields] == [3, 5] and value.get(5) == 50 and value.get(1) is None


@pytest.mark.parametrize("data, problem", [
    (b"\x15", "truncated"),                    # i32 field header, no value
    (b"\x18\x05ab", "past the end"),           # binary of 5 bytes, 2 given
    (b"\x1d\x00", "unknown wire type 13"),
    (b"\x16" + b"\xff" * 12, "varint too long"),
])
def test_malformed_bytes_raise_thrift_error(data, problem):
    with pytest.raises(thrift.ThriftError, match=problem):
        thrift.decode_struct(data)
