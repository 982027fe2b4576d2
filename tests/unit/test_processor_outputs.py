"""Streamed result files: the same rows give the same bytes, however they arrive."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.processor import outputs

ROWS = 1_000


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(11)
    return pa.table({
        "cluster_id": [f"cluster_{i:05d}" for i in range(ROWS)],
        "related_alert_ids": [[f"alert_{j}" for j in range(i % 4)] for i in range(ROWS)],
        "total_volume_usd": rng.lognormal(5, 2, ROWS),
    })


def _slices(table, sizes):
    start = 0
    for size in sizes:
        yield table.slice(start, size)
        start += size
    assert start == table.num_rows


def _write(table, sizes, path, group_rows=256, scores=None):
    scores = np.linspace(0, 1, table.num_rows) if scores is None else scores
    outputs.write_scored_stream(_slices(table, sizes), scores, "cluster_scorer_v1.0.0", path,
                                group_rows)
    return path.read_bytes()


@pytest.mark.parametrize("sizes", [[ROWS], [1] * 10 + [ROWS - 10], [300, 300, 400],
                                   [256, 256, 256, 232], [999, 1], [0, 500, 0, 500]])
def test_row_groups_do_not_depend_on_how_the_rows_arrive(table, sizes, tmp_path):
    assert _write(table, sizes, tmp_path / "a.parquet") == _write(table, [ROWS],
                                                                   tmp_path / "b.parquet")
    meta = pq.read_metadata(tmp_path / "a.parquet")
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [256] * 3 + [232]
    written = pq.read_table(tmp_path / "a.parquet")
    assert written.select(table.column_names).equals(table)
    assert written.column("score").to_pylist() == np.linspace(0, 1, ROWS).tolist()


def test_fewer_rows_than_scores_is_an_error_naming_the_file(table, tmp_path):
    with pytest.raises(outputs.ScoreError, match=r"1000 scores for 600 rows of short\.parquet"):
        _write(table.slice(0, 600), [600], tmp_path / "short.parquet", scores=np.zeros(ROWS))


def test_no_rows_still_write_a_file_with_the_schema(table, tmp_path):
    path = tmp_path / "empty.parquet"
    outputs.write_scored_stream(iter([table.slice(0, 0)]), np.zeros(0), "cluster_scorer_v1.0.0",
                                path)
    written = pq.read_table(path)
    assert written.num_rows == 0
    assert written.column_names == table.column_names + ["score", "model_version"]


def test_no_table_at_all_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"none\.parquet: no table given"):
        outputs.write_scored_stream(iter([]), np.zeros(0), "x_v1.0.0", tmp_path / "none.parquet")
