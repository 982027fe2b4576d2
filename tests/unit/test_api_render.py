"""Vectorised JSON rendering: exact floats, correct escaping, pages equal to list slices."""

import json

import numpy as np
import pyarrow as pa
import pytest

from services.api import render
from services.api.render import ListKind

KIND = ListKind("k", "f.parquet", ("alert_id", "rank", "score"), "rows", "total", "m")


def _body(table, head=None, tail=None):
    return render.list_body(KIND, table, head or {"h": 1}, tail or {"t": "x"}, "identity")


def _table(ids, scores, ranks=None):
    ranks = list(range(1, len(ids) + 1)) if ranks is None else ranks
    return pa.table({"alert_id": pa.array(ids, pa.string()), "rank": pa.array(ranks, pa.int64()),
                     "score": pa.array(scores, pa.float64())})


def test_every_float_round_trips_exactly():
    rng = np.random.default_rng(7)
    scores = np.concatenate([rng.random(20000), rng.random(2000) ** 40, rng.random(500) * 1e-310,
                             [0.0, 1.0, -0.0, 5e-324, 0.1 + 0.2, 1e-7, 2.2250738585072014e-308]])
    ids = [f"a{i}" for i in range(len(scores))]
    parsed = json.loads(_body(_table(ids, scores)).data)
    assert np.array_equal(np.array([r["score"] for r in parsed["rows"]]), scores)


@pytest.mark.parametrize("value", ['quote"inside', "back\\slash", "tab\tand\nnewline", "\x00\x1f",
                                   "ünïcødé ✓ 𝄞", "", "\u2028", "plain-uuid-like"])
def test_strings_are_escaped_exactly(value):
    parsed = json.loads(_body(_table([value, "ok"], [0.5, 0.25])).data)
    assert [r["alert_id"] for r in parsed["rows"]] == [value, "ok"]


def test_nulls_and_non_finite_floats_render_as_json_null():
    table = _table([None, "b", "c", "d"], [0.5, float("nan"), float("inf"), None], [1, None, 3, 4])
    rows = json.loads(_body(table).data)["rows"]
    assert rows == [{"alert_id": None, "rank": 1, "score": 0.5},
                    {"alert_id": "b", "rank": None, "score": None},
                    {"alert_id": "c", "rank": 3, "score": None},
                    {"alert_id": "d", "rank": 4, "score": None}]


def test_dictionary_strings_float32_and_decimal_columns_render():
    table = pa.table({
        "alert_id": pa.array(["x", "y", "x"]).dictionary_encode(),
        "rank": pa.array([1, 2, 3], pa.uint32()),
        "score": pa.array([0.1, 0.5, 1.0], pa.float32()),
    })
    rows = json.loads(_body(table).data)["rows"]
    assert [r["alert_id"] for r in rows] == ["x", "y", "x"]
    assert [r["score"] for r in rows] == [float(np.float32(v)) for v in (0.1, 0.5, 1.0)]


def test_head_rows_and_tail_form_one_json_document_in_order():
    data = _body(_table(["a", "b"], [0.5, 0.25]), {"first": 1, "second": "two"}, {"z": [1]}).data
    assert data == (b'{"first":1,"second":"two","rows":[{"alert_id":"a","rank":1,"score":0.5},'
                    b'{"alert_id":"b","rank":2,"score":0.25}],"metadata":{"z":[1]}}')


def test_an_empty_table_is_an_empty_list_and_pages_stay_valid():
    body = _body(_table([], []))
    assert json.loads(body.data)["rows"] == [] and body.rows == 0
    assert json.loads(render.page(body, 0, 10))["rows"] == []
    assert json.loads(render.page(body, 5, None))["rows"] == []


def test_random_pages_equal_slices_of_the_full_list():
    rng = np.random.default_rng(3)
    n = 257
    ids = [f"id-{i}-" + "x" * int(rng.integers(0, 30)) for i in range(n)]  # rows of varying length
    body = _body(_table(ids, rng.random(n)))
    full = json.loads(body.data)
    for offset, limit in [(0, 1), (n - 1, 1), (n, 5), (0, n), (17, 0), *rng.integers(0, n + 20, (40, 2))]:
        page = json.loads(render.page(body, int(offset), int(limit)))
        assert page == {**full, "rows": full["rows"][offset:offset + limit]}


def test_gzip_and_etags_are_deterministic():
    a, b = _body(_table(["a"], [0.5])), _body(_table(["a"], [0.5]))
    assert a.gzip == b.gzip and a.etag == b.etag and a.gzip_etag == b.gzip_etag
    assert a.etag != render.list_body(KIND, _table(["a"], [0.5]), {"h": 1}, {"t": "x"}, "other").etag


def test_large_bodies_are_chunked_and_pages_cross_chunk_borders():
    rng = np.random.default_rng(5)
    n = 40000
    body = _body(_table([f"alert-{i:08d}" for i in range(n)], rng.random(n)))
    data = body.data
    assert len(body.chunks) >= 3 and body.size == len(data)
    assert all(len(c) == render.CHUNK for c in body.chunks[:-1])
    assert render.split(body.gzip) == body.gzip_chunks and body.gzip_size == len(body.gzip)
    for a, b in [*rng.integers(0, len(data), (30, 2)), (0, len(data)), (render.CHUNK - 1, render.CHUNK + 1)]:
        a, b = sorted((int(a), int(b)))
        assert body.read(a, b) == data[a:b]
    full = json.loads(data)
    straddling = int(np.searchsorted(body.row_bounds, render.CHUNK)) - 1  # the row across the border
    for offset in (straddling - 2, straddling, straddling + 1):
        page = json.loads(render.page(body, offset, 4))
        assert page["rows"] == full["rows"][offset:offset + 4]
