"""Splicing: a Parquet file plus new columns, its own column chunks copied byte for byte.

Each spliced file is read back by pyarrow and by polars (an independent reader, Rust),
so the hand-written footer is checked by two implementations.
"""

from __future__ import annotations

import datetime as dt
import os
import struct

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.processor import outputs, splice
from services.processor import thrift_compact as thrift

ROWS = 2_000
TAG = "alert_scorer_v1.0.0"


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(3)
    return pa.table({
        "alert_id": [f"alert_{i:05d}" for i in range(ROWS)],
        "volume_usd": pa.array(rng.lognormal(5, 2, ROWS).round(6)).cast(pa.decimal128(38, 18)),
        "severity": pa.array(rng.choice(["low", "high"], ROWS)).dictionary_encode(),
        "risk_indicators": [[f"r{j}" for j in range(i % 3)] for i in range(ROWS)],
        "seen": pa.array([dt.datetime(2025, 10, 26, 1, 2, 3)] * ROWS, pa.timestamp("ms", "UTC")),
        "processing_date": pa.array([dt.date(2025, 10, 26)] * ROWS, pa.date32()),
        "amount": rng.normal(size=ROWS),
    })


def _scores(n: int = ROWS) -> np.ndarray:
    return np.linspace(0, 1, n)


def _splice(source, target, scores=None):
    outputs.write_spliced(source, _scores() if scores is None else scores, TAG, target)
    return target


def _ranges(path) -> list[tuple[int, int]]:
    """(start, length) of every column chunk, row group by row group."""
    footer = splice.read_footer(path)
    return [splice.chunk_range(chunk) for group in footer.row_groups
            for chunk in group.get(splice.RG_COLUMNS).items]


WRITERS = {
    "pyarrow defaults": {},
    "small row groups, snappy, no dictionary": {"row_group_size": 300, "compression": "snappy",
                                                "use_dictionary": False},
    "page index, data page v2": {"write_page_index": True, "data_page_version": "2.0",
                                 "row_group_size": 700},
    "no stored schema, no statistics": {"store_schema": False, "write_statistics": False},
}


@pytest.mark.parametrize("options", WRITERS.values(), ids=WRITERS.keys())
def test_spliced_file_reads_as_the_source_plus_score_and_model_version(table, tmp_path,
                                                                        options):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table, source, **options)
    target = _splice(source, tmp_path / "alerts_scored.parquet")
    written = pq.read_table(target)
    expected = pq.read_table(source)
    assert written.column_names == expected.column_names + ["score", "model_version"]
    assert written.select(expected.column_names).equals(expected)  # types as the source has them
    assert written.column("score").to_numpy().tobytes() == _scores().tobytes()
    assert written.column("model_version").unique().to_pylist() == [TAG]
    assert pl.read_parquet(target).equals(pl.from_arrow(written))
    source_meta, meta = pq.read_metadata(source), pq.read_metadata(target)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == \
        [source_meta.row_group(i).num_rows for i in range(source_meta.num_row_groups)]


def test_source_column_chunks_are_copied_byte_for_byte(table, tmp_path):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table, source, row_group_size=600, write_page_index=True)
    target = _splice(source, tmp_path / "out.parquet")
    before, after = source.read_bytes(), target.read_bytes()
    width = table.num_columns
    spliced = _ranges(target)
    copied = [r for i, r in enumerate(spliced) if i % (width + 2) < width]
    assert len(copied) == len(_ranges(source))
    for (start, length), (moved, moved_length) in zip(_ranges(source), copied):
        assert moved_length == length
        assert after[moved:moved + length] == before[start:start + length]
    meta = pq.read_metadata(target)
    assert not meta.row_group(0).column(0).has_offset_index  # pointed into the source


def test_the_same_source_and_scores_give_the_same_bytes(table, tmp_path):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table, source, row_group_size=512)
    first = _splice(source, tmp_path / "a.parquet").read_bytes()
    assert _splice(source, tmp_path / "b.parquet").read_bytes() == first


def test_a_source_written_by_another_library_splices_too(table, tmp_path):
    source = tmp_path / "polars.parquet"
    pl.from_arrow(table.drop_columns(["severity"])).write_parquet(source, row_group_size=800)
    written = pq.read_table(_splice(source, tmp_path / "out.parquet"))
    assert written.select(pq.read_schema(source).names).equals(pq.read_table(source))
    assert pl.read_parquet(tmp_path / "out.parquet")["score"].to_list() == _scores().tolist()


def test_an_empty_source_is_refused_so_the_caller_encodes_it(table, tmp_path):
    source = tmp_path / "empty.parquet"
    pq.write_table(table.slice(0, 0), source)
    target = tmp_path / "out.parquet"
    with pytest.raises(splice.Unsupported, match=r"empty\.parquet has no rows to copy"):
        outputs.write_spliced(source, np.zeros(0), TAG, target)
    assert not target.exists()


def test_when_copy_file_range_is_refused_the_bytes_are_read_and_written(table, tmp_path,
                                                                         monkeypatch):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table, source, row_group_size=512)
    expected = _splice(source, tmp_path / "kernel.parquet").read_bytes()

    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)  # what another file system answers
    assert _splice(source, tmp_path / "plain.parquet").read_bytes() == expected


def test_fewer_scores_than_rows_is_an_error_naming_the_file(table, tmp_path):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table, source)
    with pytest.raises(outputs.ScoreError,
                       match=rf"{TAG}: alerts\.parquet has {ROWS} rows, 5 new values"):
        _splice(source, tmp_path / "out.parquet", scores=np.zeros(5))
    assert not (tmp_path / "out.parquet").exists()


def _refused(source, tmp_path, problem):
    target = tmp_path / "out.parquet"
    with pytest.raises(splice.Unsupported, match=problem):
        _splice(source, target)
    assert not target.exists()  # refused before anything is written


def test_a_source_that_already_has_a_score_column_is_refused(table, tmp_path):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table.append_column("score", pa.array(_scores())), source)
    _refused(source, tmp_path, r"alerts\.parquet already has column\(s\) score")


@pytest.mark.parametrize("content, problem", [
    (b"not a parquet file at all", "no b'PAR1' at both ends"),
    (b"PAR1" + b"\x00" * 20 + b"PARE", "no b'PAR1' at both ends"),  # encrypted footer
    (b"PAR1" + b"\x15" + struct.pack("<I", 1) + b"PAR1", "footer not readable"),
    (b"PAR1" + struct.pack("<I", 99) + b"PAR1", "footer length 99 exceeds the file"),
    (b"PAR1PAR1", "8 bytes is too short"),
])
def test_files_that_are_not_plain_parquet_are_refused_naming_the_file(tmp_path, content,
                                                                       problem):
    source = tmp_path / "alerts.parquet"
    source.write_bytes(content)
    _refused(source, tmp_path, rf"alerts\.parquet: {problem}")


def _rewrite_footer(source, edit):
    data = source.read_bytes()
    footer = splice.read_footer(source)
    edit(footer.meta)
    raw = thrift.encode_struct(footer.meta)
    source.write_bytes(data[:footer.data_end] + raw + struct.pack("<I", len(raw)) + b"PAR1")


def _chunk_meta(meta, group, column):
    return meta.get(splice.FM_ROW_GROUPS).items[group].get(splice.RG_COLUMNS).items[column] \
        .get(splice.CC_META)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: _chunk_meta(m, 0, 1).set(splice.MD_DATA_PAGE, thrift.I64,
                                        _chunk_meta(m, 0, 0).get(splice.MD_DATA_PAGE)),
     "row group 0 has a column chunk at .* overlapping or outside the data"),
    (lambda m: _chunk_meta(m, 0, 2).set(splice.MD_COMPRESSED, thrift.I64, 1 << 40),
     "overlapping or outside the data"),
    (lambda m: m.get(splice.FM_ROW_GROUPS).items[0].get(splice.RG_COLUMNS).items[0]
     .set(splice.CC_FILE_PATH, thrift.BINARY, b"other.parquet"), "in another file"),
    (lambda m: m.set(splice.FM_ENCRYPTION, thrift.STRUCT, thrift.Struct()), "encrypted"),
    (lambda m: _chunk_meta(m, 0, 0).drop(splice.MD_DATA_PAGE), "without its page offset"),
    (lambda m: m.get(splice.FM_ROW_GROUPS).items[0].drop(splice.RG_NUM_ROWS),
     "a row group has no row count"),
])
def test_footers_whose_chunks_cannot_be_copied_safely_are_refused(table, tmp_path, edit,
                                                                  problem):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table, source, use_dictionary=False)
    _rewrite_footer(source, edit)
    _refused(source, tmp_path, problem)


def test_only_the_merged_arrow_schema_is_kept_of_the_key_value_metadata(table, tmp_path):
    source = tmp_path / "alerts.parquet"
    pq.write_table(table.replace_schema_metadata({"pandas": "{}", "sot": "v3"}), source)
    meta = pq.read_metadata(_splice(source, tmp_path / "out.parquet"))
    assert set(meta.metadata) == {b"ARROW:schema"}
    assert meta.schema.to_arrow_schema().names == table.column_names + ["score", "model_version"]
