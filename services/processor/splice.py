"""A Parquet file extended by new columns, its own columns copied byte for byte.

alerts_scored and clusters_scored are their input file plus `score` and
`model_version`. Decoding the input's columns only to encode them again cost
~1.5 CPU-s at a million alerts (the long text columns most). Here the input's
column chunks are copied as they are (pages, compression, statistics), the new
columns are encoded alone in row groups of the same sizes, and a new footer
(Thrift compact protocol) lists both. The result reads as the input's columns,
typed as the input file has them, followed by the new ones; the same input and
new columns give the same bytes.

The input's page indexes and bloom filters are left out (their offsets point into
the input file), and so is its key-value metadata (a pandas index description, say,
would not match the new columns): the footer carries the merged Arrow schema only. What cannot be spliced safely (encryption, column chunks in other
files or outside the data, overlapping chunks, a new column the input already has)
raises Unsupported, so the caller can write the file the ordinary way.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.processor import thrift_compact as thrift
from services.processor.thrift_compact import BINARY, I32, I64, LIST, STRUCT, List, Struct

MAGIC = b"PAR1"
COPY_BLOCK = 1 << 24

# Field ids of parquet.thrift: FileMetaData, SchemaElement, RowGroup, ColumnChunk,
# ColumnMetaData.
FM_VERSION, FM_SCHEMA, FM_ROW_GROUPS, FM_KEY_VALUES, FM_COLUMN_ORDERS = 1, 2, 4, 5, 7
FM_ENCRYPTION = 8
SE_NUM_CHILDREN = 5
RG_COLUMNS, RG_BYTE_SIZE, RG_NUM_ROWS, RG_FILE_OFFSET, RG_COMPRESSED = 1, 2, 3, 5, 6
CC_FILE_PATH, CC_FILE_OFFSET, CC_META, CC_CRYPTO = 1, 2, 3, (8, 9)
CC_PAGE_INDEX = (4, 5, 6, 7)
MD_UNCOMPRESSED, MD_COMPRESSED, MD_DATA_PAGE, MD_INDEX_PAGE, MD_DICT_PAGE = 6, 7, 9, 10, 11
MD_BLOOM = (14, 15)


class Unsupported(Exception):
    """The input file cannot be extended by copying its column chunks (the message says why)."""


class RowMismatch(ValueError):
    """The new columns do not have one value per row of the input file."""


@dataclass
class Footer:
    """A Parquet file's footer, and where its column data ends (the footer's offset)."""

    name: str
    meta: Struct
    data_end: int

    @property
    def row_groups(self) -> list[Struct]:
        return self.meta.get(FM_ROW_GROUPS, List(STRUCT, [])).items

    def group_rows(self) -> list[int]:
        """Rows of each row group, in order."""
        rows = [group.get(RG_NUM_ROWS) for group in self.row_groups]
        if not all(isinstance(n, int) and n >= 0 for n in rows):
            raise Unsupported(f"{self.name}: a row group has no row count")
        return rows


def _parse(name: str, size: int, read) -> Footer:
    """The footer of a Parquet file of `size` bytes, given read(offset, n) of its bytes."""
    if size < 12:
        raise Unsupported(f"{name}: {size} bytes is too short for Parquet")
    tail = read(size - 8, 8)
    if read(0, 4) != MAGIC or tail[4:] != MAGIC:
        raise Unsupported(f"{name}: no {MAGIC!r} at both ends (encrypted, or not Parquet)")
    length = struct.unpack("<I", tail[:4])[0]
    if length + 12 > size:
        raise Unsupported(f"{name}: footer length {length} exceeds the file")
    try:
        meta, used = thrift.decode_struct(read(size - 8 - length, length))
    except thrift.ThriftError as exc:
        raise Unsupported(f"{name}: footer not readable ({exc})") from exc
    if used != length:
        raise Unsupported(f"{name}: footer holds {length - used} bytes after its metadata")
    return Footer(name, meta, size - 8 - length)


def read_footer(path: Path) -> Footer:
    """The footer of a Parquet file on disk (Unsupported naming the problem)."""
    path = Path(path)
    with open(path, "rb") as handle:
        return _parse(path.name, os.path.getsize(path),
                      lambda offset, n: os.pread(handle.fileno(), n, offset))


def footer_of(name: str, data: bytes) -> Footer:
    """The footer of Parquet bytes held in memory."""
    return _parse(name, len(data), lambda offset, n: data[offset:offset + n])


def chunk_range(chunk: Struct) -> tuple[int, int]:
    """(start, length) of a column chunk's pages: from its dictionary page, if any."""
    meta = chunk.get(CC_META)
    start = meta.get(MD_DATA_PAGE)
    dictionary = meta.get(MD_DICT_PAGE)
    if dictionary is not None and 0 < dictionary < start:
        start = dictionary
    return start, meta.get(MD_COMPRESSED)


def _plain_range(footer: Footer, number: int, chunk: Struct) -> tuple[int, int]:
    """chunk_range of a chunk of row group `number`, if its pages are plainly in this file."""
    meta = chunk.get(CC_META)
    if not isinstance(meta, Struct) or chunk.get(CC_FILE_PATH) is not None \
            or any(chunk.get(f) is not None for f in CC_CRYPTO):
        raise Unsupported(f"{footer.name}: row group {number} has a column chunk without "
                          "plain metadata or in another file")
    if not all(isinstance(meta.get(f), int) for f in (MD_DATA_PAGE, MD_COMPRESSED)):
        raise Unsupported(f"{footer.name}: row group {number} has a column chunk without "
                          "its page offset or size")
    return chunk_range(chunk)


def check_copyable(footer: Footer) -> None:
    """Raise Unsupported unless every column chunk lies, whole and apart, in the file's data."""
    if footer.meta.get(FM_ENCRYPTION) is not None:
        raise Unsupported(f"{footer.name}: encrypted")
    for number, group in enumerate(footer.row_groups):
        columns = group.get(RG_COLUMNS)
        if not isinstance(columns, List):
            raise Unsupported(f"{footer.name}: row group {number} lists no columns")
        end = 4
        for start, length in sorted(_plain_range(footer, number, c) for c in columns.items):
            if start < end or length < 0 or start + length > footer.data_end:
                raise Unsupported(f"{footer.name}: row group {number} has a column chunk at "
                                  f"{start}+{length}, overlapping or outside the data")
            end = start + length


def _moved(chunk: Struct, offset: int) -> Struct:
    """A copy of chunk's metadata for its pages moved to offset (page index and bloom
    filter dropped: they stay behind in the source)."""
    chunk = copy.deepcopy(chunk)
    start, _ = chunk_range(chunk)
    shift = offset - start
    chunk.drop(*CC_PAGE_INDEX)
    if chunk.get(CC_FILE_OFFSET):  # deprecated; parquet-cpp writes 0
        chunk.set(CC_FILE_OFFSET, I64, chunk.get(CC_FILE_OFFSET) + shift)
    meta = chunk.get(CC_META)
    meta.drop(*MD_BLOOM)
    for fid in (MD_DATA_PAGE, MD_INDEX_PAGE, MD_DICT_PAGE):
        if meta.get(fid):
            meta.set(fid, I64, meta.get(fid) + shift)
    return chunk


class _Output:
    """The target file, written through its descriptor with the position tracked here."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.position = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.position += len(data)

    def copy(self, source_fd: int, start: int, length: int) -> None:
        """length bytes of source from start: in the kernel (copy_file_range) where it can,
        else read and written (other file systems, older kernels)."""
        done = 0
        with contextlib.suppress(OSError, AttributeError):
            while done < length:
                moved = os.copy_file_range(source_fd, self.fd, length - done, start + done)
                if moved <= 0:
                    break
                done += moved
        self.position += done
        while done < length:
            block = os.pread(source_fd, min(COPY_BLOCK, length - done), start + done)
            if not block:
                raise OSError(f"source ended {length - done} bytes early")
            self.write(block)
            done += len(block)


def _copied(chunks: list[Struct], output: _Output, put) -> list[Struct]:
    """Copy each chunk's pages to output with put(start, length); their moved metadata."""
    moved = []
    for chunk in chunks:
        start, length = chunk_range(chunk)
        moved.append(_moved(chunk, output.position))
        put(start, length)
    return moved


def _group(base: Struct, columns: list[Struct], extra: Struct, offset: int) -> Struct:
    """Row group metadata of base's rows with columns (base's and extra's, moved)."""
    group = copy.deepcopy(base)
    group.set(RG_COLUMNS, LIST, List(STRUCT, columns))
    group.set(RG_BYTE_SIZE, I64, base.get(RG_BYTE_SIZE, 0) + extra.get(RG_BYTE_SIZE, 0))
    group.set(RG_FILE_OFFSET, I64, offset)
    group.set(RG_COMPRESSED, I64, sum(c.get(CC_META).get(MD_COMPRESSED) for c in columns))
    return group


def _schema(base: Footer, extra: Footer) -> List:
    """base's schema elements followed by extra's top-level columns under one root."""
    ours, theirs = base.meta.get(FM_SCHEMA).items, extra.meta.get(FM_SCHEMA).items
    root = copy.deepcopy(ours[0])
    root.set(SE_NUM_CHILDREN, I32, ours[0].get(SE_NUM_CHILDREN, 0) +
             theirs[0].get(SE_NUM_CHILDREN, 0))
    return List(STRUCT, [root, *ours[1:], *theirs[1:]])


def _metadata(base: Footer, extra: Footer, groups: list[Struct], schema: pa.Schema) -> Struct:
    """The spliced file's footer: base's (writer, version) with both schemas and new groups."""
    meta = copy.deepcopy(base.meta)
    meta.set(FM_VERSION, I32, max(base.meta.get(FM_VERSION, 1), extra.meta.get(FM_VERSION, 1)))
    meta.set(FM_SCHEMA, LIST, _schema(base, extra))
    meta.set(FM_ROW_GROUPS, LIST, List(STRUCT, groups))
    arrow = base64.b64encode(schema.serialize().to_pybytes())
    meta.set(FM_KEY_VALUES, LIST, List(STRUCT, [Struct([[1, BINARY, b"ARROW:schema"],
                                                        [2, BINARY, arrow]])]))
    orders = [f.meta.get(FM_COLUMN_ORDERS) for f in (base, extra)]
    if all(orders):
        meta.set(FM_COLUMN_ORDERS, LIST, List(STRUCT, orders[0].items + orders[1].items))
    else:  # an order for some columns only would misnumber them
        meta.drop(FM_COLUMN_ORDERS)
    return meta


def _encode(table: pa.Table, group_rows: list[int], options: dict) -> bytes:
    """table as Parquet bytes, one row group of each given size."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, **options) as writer:
        offset = 0
        for rows in group_rows:
            writer.write_table(table.slice(offset, rows), row_group_size=max(rows, 1))
            offset += rows
    return sink.getvalue().to_pybytes()


def append_columns(source: Path, columns: pa.Table, target: Path, options: dict) -> None:
    """Write target: every column of source (chunks copied) then columns' (encoded with
    options), in source's row groups. Unsupported when source cannot be spliced."""
    base = read_footer(source)
    rows = base.group_rows()
    if not sum(rows):  # writers place empty chunks oddly, and there is no work
        raise Unsupported(f"{Path(source).name} has no rows to copy")
    check_copyable(base)
    if sum(rows) != columns.num_rows:
        raise RowMismatch(f"{Path(source).name} has {sum(rows)} rows, "
                          f"{columns.num_rows} new values were given")
    schema = pq.read_schema(source)
    if clash := sorted(set(schema.names) & set(columns.column_names)):
        raise Unsupported(f"{Path(source).name} already has column(s) {', '.join(clash)}")
    data = _encode(columns, rows, options)
    extra = footer_of("new columns", data)
    if len(extra.row_groups) != len(base.row_groups):
        raise Unsupported(f"{Path(source).name}: empty row groups cannot be matched")
    merged = pa.schema([*schema, *columns.schema])
    output = _Output(Path(target))
    try:
        with open(source, "rb") as handle:
            output.write(MAGIC)
            groups = []
            for group, added in zip(base.row_groups, extra.row_groups):
                offset = output.position
                moved = _copied(group.get(RG_COLUMNS).items, output,
                                lambda start, n: output.copy(handle.fileno(), start, n))
                moved += _copied(added.get(RG_COLUMNS).items, output,
                                 lambda start, n: output.write(data[start:start + n]))
                groups.append(_group(group, moved, added, offset))
        footer = thrift.encode_struct(_metadata(base, extra, groups, merged))
        output.write(footer + struct.pack("<I", len(footer)) + MAGIC)
        os.fsync(output.fd)
    finally:
        os.close(output.fd)
