"""META.json shapes, checksum algorithms, and what is refused."""

from __future__ import annotations

import hashlib
import json

import pytest

from services.downloader.errors import DownloadError
from services.downloader.meta import Checksum, parse_meta

KEY = "snapshots/bitcoin/2025-10-26/7/META.json"
DATA = b"some parquet bytes"
SHA, MD5 = hashlib.sha256(DATA).hexdigest(), hashlib.md5(DATA).hexdigest()


def _parse(doc):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_meta(raw, KEY, "bitcoin", "2025-10-26", 7)


def test_the_current_sha256_map():
    meta = _parse({"network": "bitcoin", "processing_date": "2025-10-26", "window_days": 7,
                   "sha256": {"alerts.parquet": SHA.upper()}})
    assert meta.checksums == {"alerts.parquet": Checksum("sha256", SHA)}


@pytest.mark.parametrize("entry,algorithm", [
    ({"md5": MD5}, "md5"),
    ({"sha256": SHA, "md5": MD5}, "sha256"),  # the strongest one wins
    ({"checksum": MD5}, "md5"),
    ({"checksum": f"sha256:{SHA}"}, "sha256"),
    ({"checksum": SHA, "algorithm": "SHA-256"}, "sha256"),
    (SHA, "sha256"),
])
def test_the_older_files_object_shape(entry, algorithm):
    meta = _parse({"files": {"alerts.parquet": entry}})
    assert meta.checksums["alerts.parquet"].algorithm == algorithm


@pytest.mark.parametrize("checksum,algorithm", [(MD5, "md5"), (SHA, "sha256"),
                                                (hashlib.sha1(DATA).hexdigest(), "sha1"),
                                                (f"md5:{MD5}", "md5")])
def test_the_older_files_list_shape_tells_the_algorithm(checksum, algorithm):
    meta = _parse({"files": [{"filename": "clusters.parquet", "checksum": checksum}]})
    assert meta.checksums["clusters.parquet"].algorithm == algorithm


def test_the_sha256_map_wins_over_files_for_the_same_name():
    meta = _parse({"files": {"alerts.parquet": {"md5": MD5}}, "sha256": {"alerts.parquet": SHA}})
    assert meta.checksums["alerts.parquet"] == Checksum("sha256", SHA)


@pytest.mark.parametrize("doc,problem", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    ({"schema_version": "1.0.0"}, "lists no checksums"),
    ({"sha256": ["alerts.parquet"]}, "'sha256' is not an object"),
    ({"files": "alerts.parquet"}, "'files' is neither"),
    ({"files": [{"filename": "a.parquet", "checksum": "crc32c:AAAA"}]}, "cannot tell the algorithm"),
    ({"files": [{"filename": "a.parquet", "checksum": "abc123"}]}, "cannot tell the algorithm"),
    ({"files": {"a.parquet": {"size": 3}}}, "no checksum"),
    ({"sha256": {"a.parquet": "zz" * 32}}, "is not a sha256 hex digest"),
    ({"sha256": {"a.parquet": MD5}}, "is not a sha256 hex digest"),
    ({"sha256": {"../../etc/passwd": SHA}}, "not a plain file name"),
    ({"sha256": {"sub/alerts.parquet": SHA}}, "not a plain file name"),
    ({"files": [{"checksum": SHA}]}, "not a plain file name"),
    ({"network": "ethereum", "sha256": {"a.parquet": SHA}}, "says network 'ethereum'"),
    ({"window_days": 30, "sha256": {"a.parquet": SHA}}, "says window_days 30"),
    ({"sha256": {"a.parquet": SHA}, "counts": [1, 2]}, "'counts' is not an object"),
    ({"sha256": {"a.parquet": SHA}, "counts": {"alerts": -1}}, r"counts\['alerts'\]: -1 is not"),
    ({"sha256": {"a.parquet": SHA}, "counts": {"alerts": "12"}}, "'12' is not a row count"),
    ({"sha256": {"a.parquet": SHA}, "counts": {"alerts": True}}, "True is not a row count"),
    ({"sha256": {"a.parquet": SHA}, "counts": {"../x": 1}}, "not a plain file name"),
])
def test_a_bad_meta_is_refused_naming_the_key_and_problem(doc, problem):
    with pytest.raises(DownloadError, match=problem) as caught:
        _parse(doc)
    assert caught.value.key == KEY
    assert str(caught.value).startswith(KEY)


def test_schema_1_counts_are_read():
    meta = _parse({"schema_version": "1.0.0", "sha256": {"features.parquet": SHA},
                   "counts": {"features": 50000, "patterns": 0, "address_labels": 9}})
    assert meta.counts == {"features": 50000, "patterns": 0, "address_labels": 9}
    assert _parse({"sha256": {"a.parquet": SHA}}).counts == {}


def test_an_unknown_schema_major_is_warned_about_and_still_checked(caplog):
    meta = _parse({"schema_version": "2.0.0", "sha256": {"a.parquet": SHA}, "counts": {"a": 1}})
    assert meta.counts == {"a": 1}
    assert "schema_version 2.0.0 is newer than the 1.x this miner knows" in caplog.text
