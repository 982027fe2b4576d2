"""Rendering a date's response bodies: what the files hold, refusals that name the file."""

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared import bodies, storage
from tests.api_fixtures import publish_date

DATE = "2025-10-26"


def _replace(path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


@pytest.mark.parametrize("kind", bodies.LIST_KINDS, ids=lambda k: k.name)
def test_the_index_cuts_the_body_into_its_rows(settings, kind):
    version = publish_date(settings.OUTPUT_DIR, DATE, alerts=17, clusters=4)
    data = (version / kind.body).read_bytes()
    index = np.frombuffer((version / kind.index).read_bytes(), "<i8")
    head_len, tail_start, bounds = int(index[0]), int(index[1]), index[2:]
    body = json.loads(data)
    rows = body[kind.list_key]
    assert len(bounds) == len(rows) + 1 and bounds[-1] == tail_start
    for i, row in enumerate(rows):  # each range is its separator and exactly one row
        piece = data[bounds[i]:bounds[i + 1]]
        assert piece[:1] == (b"[" if i == 0 else b",") and json.loads(piece[1:]) == row
    assert data[:head_len].endswith(f'"{kind.list_key}":['.encode())
    assert data[tail_start:].startswith(b'],"metadata":')
    assert gzip.decompress((version / kind.gzip).read_bytes()) == data


def test_an_empty_list_still_has_a_head_and_tail(settings):
    version = publish_date(settings.OUTPUT_DIR, DATE, alerts=3, clusters=0)
    kind = bodies.CLUSTER_SCORES
    data = (version / kind.body).read_bytes()
    head_len, tail_start, rows = bodies.read_index(version / kind.index)
    assert rows == 0 and json.loads(data)["scores"] == [] and data[head_len - 1:head_len] == b"["
    assert data[tail_start:].startswith(b'],"metadata":')


def test_rendering_is_deterministic(settings, tmp_path):
    first = publish_date(settings.OUTPUT_DIR, DATE, seed=3)
    second = publish_date(tmp_path / "again", DATE, seed=3)
    for name in bodies.FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_scores_render_as_their_exact_float64(settings):
    version = publish_date(settings.OUTPUT_DIR, DATE, alerts=30)
    rendered = json.loads((version / bodies.ALERT_SCORES.body).read_bytes())["scores"]
    stored = pq.read_table(version / storage.ALERTS_SCORED).column("score").to_pylist()
    assert [r["score"] for r in rendered] == stored


def test_strings_that_need_escaping_are_escaped():
    values = bodies.json_values(pa.array(['plain', 'quo"te', "back\\slash", "new\nline", None]))
    assert [json.loads(v) for v in values.to_pylist()] == \
        ['plain', 'quo"te', "back\\slash", "new\nline", None]


@pytest.mark.parametrize("odd", ['quo"te', "back\\slash", "tab\there"])
def test_an_escape_in_any_part_of_a_sliced_column_is_found(odd):
    column = pa.array(["before", "plain", odd, "after"]).slice(1, 2)
    assert [json.loads(v) for v in bodies.json_values(column).to_pylist()] == ["plain", odd]
    assert bodies.json_values(column.slice(0, 1)).to_pylist() == ['"plain"']


def test_non_finite_floats_render_as_null():
    values = bodies.json_values(pa.array([0.5, float("nan"), float("inf"), None]))
    assert values.to_pylist() == ["0.5", "null", "null", "null"]


def test_rendering_refuses_a_column_type_it_cannot_express():
    with pytest.raises(TypeError, match="cannot render"):
        bodies.json_values(pa.array([[1, 2]]))


def _refused(settings, change, match):
    with pytest.raises(bodies.RenderError, match=match):
        publish_date(settings.OUTPUT_DIR, DATE, before_render=change)
    assert storage.published_dates(settings.OUTPUT_DIR) == []  # nothing half-published


def test_malformed_metadata_is_refused_naming_the_file(settings):
    _refused(settings, lambda f: _replace(f / storage.METADATA, b"{not json"),
             f"{DATE}/metadata.json is not valid JSON")


def test_metadata_without_required_keys_is_refused_naming_the_key(settings):
    _refused(settings, lambda f: _replace(f / storage.METADATA,
                                          json.dumps({"processing_date": DATE}).encode()),
             "metadata.json has no 'network'")


def test_a_parquet_file_without_the_score_column_is_refused_naming_it(settings):
    def drop(folder):
        path = folder / storage.CLUSTERS_SCORED
        pq.write_table(pq.read_table(path).drop(["score"]), path)

    _refused(settings, drop, f"{DATE}/clusters_scored.parquet has no column 'score'")


def test_a_corrupt_parquet_file_is_refused_naming_it(settings):
    _refused(settings, lambda f: _replace(f / storage.ALERTS_RANKED, b"PAR1 garbage"),
             f"{DATE}/alerts_ranked.parquet is not a readable parquet file")
