"""Transient vs permanent in the downloader, and the SOT's newer export, against moto on loopback.

A full disk is a real one (a small tmpfs); checksum re-publishing is the bucket changed
between the two looks; the export since 2025-12-01 is built as the producer writes it.
"""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.downloader.download import download_batch
from services.downloader.errors import (ChecksumMismatch, DownloadError, NoAlertsInBatch,
                                        TransientDownloadError)
from shared import storage
from tests.disk_fixtures import small_disk  # noqa: F401
from tests.s3_fixtures import (DATE, NETWORK, WINDOW, fake_batch, meta_document,  # noqa: F401
                               moto_endpoint, proxy, s3_proxy, sot)

PREFIX = storage.sot_prefix(NETWORK, DATE, WINDOW)


def _download(sot, pause=None, output_dir=None, **changes):
    settings = sot.settings.replace(**changes)
    kwargs = {"pause": pause} if pause else {}
    return download_batch(NETWORK, DATE, WINDOW, output_dir or settings.INPUT_DIR,
                          settings=settings, **kwargs)


def _parquet(rows: int, column: str = "address") -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({column: [f"a{i}" for i in range(rows)]}), sink)
    return sink.getvalue().to_pybytes()


def _put_export(sot, files: dict[str, bytes], counts: dict[str, int], labels: bytes | None):
    """A batch with META.json schema 1.0.0: sha256 of every file and the given counts."""
    for name, data in files.items():
        sot.put(PREFIX + name, data)
    doc = meta_document(files)
    doc["counts"] = counts
    sot.put(PREFIX + "META.json", json.dumps(doc).encode())
    if labels is not None:
        sot.put(storage.labels_key(NETWORK), labels)


# --- checksum mismatch: one more look after a pause, then permanent ---------------------------

def test_a_mismatch_is_fetched_again_after_the_pause_and_a_republished_batch_lands(sot):
    files = fake_batch()
    sot.put_batch(files)
    sot.put(PREFIX + "features.parquet", b"half-republished" * 50)
    paused = []

    def republish(seconds):  # the producer finishes re-publishing while we wait
        paused.append(seconds)
        sot.put(PREFIX + "features.parquet", files["features.parquet"])

    summary = _download(sot, pause=republish, SOT_CHECKSUM_RETRY_SECONDS=20.0)
    assert paused == [20.0] and not summary["skipped"]
    folder = sot.settings.INPUT_DIR / DATE
    assert (folder / "features.parquet").read_bytes() == files["features.parquet"]
    assert len(sot.proxy.requests("GET", "features.parquet")) == 2


def test_a_second_mismatch_fails_the_date_at_once(sot):
    files = fake_batch()
    sot.put_batch(files)
    sot.put(PREFIX + "alerts.parquet", b"tampered" * 100)
    paused = []
    with pytest.raises(ChecksumMismatch, match=r"alerts\.parquet: sha256 mismatch") as info:
        _download(sot, pause=paused.append)
    assert isinstance(info.value, DownloadError)  # permanent: callers do not retry it
    assert paused == [0.0] and len(sot.proxy.requests("GET", "alerts.parquet")) == 2
    assert not (sot.settings.INPUT_DIR / DATE).exists()


def test_bad_input_is_not_fetched_again(sot):
    files = fake_batch()
    del files["clusters.parquet"]
    sot.put_batch(files)
    paused = []
    with pytest.raises(DownloadError, match="clusters.parquet: required file is missing"):
        _download(sot, pause=paused.append)
    assert paused == []


def test_a_negative_pause_is_refused_naming_the_setting(sot):
    from shared.settings import SettingsError

    with pytest.raises(SettingsError, match="SOT_CHECKSUM_RETRY_SECONDS=-1"):
        _download(sot, SOT_CHECKSUM_RETRY_SECONDS=-1.0)


# --- a full disk is transient ------------------------------------------------------------------

def test_a_full_disk_is_transient_names_the_file_and_publishes_nothing(sot, small_disk):
    sot.put_batch(fake_batch(200_000))  # ~1 MB of files for a 256 KB disk
    with pytest.raises(TransientDownloadError, match="No space left on device") as info:
        _download(sot, output_dir=small_disk.path)
    assert "disk full or I/O error" in str(info.value)
    assert not (small_disk.path / DATE).exists()
    small_disk.grow(64 * 1024)  # space was freed: the next try succeeds
    assert _download(sot, output_dir=small_disk.path)["files"] == 6


# --- the export since 2025-12-01 ---------------------------------------------------------------

def test_counts_that_match_pass_and_patterns_are_downloaded_and_verified(sot, caplog):
    files = {"alerts.parquet": _parquet(12), "features.parquet": _parquet(30),
             "clusters.parquet": _parquet(4), "patterns.parquet": _parquet(7)}
    counts = {"alerts": 12, "features": 30, "clusters": 4, "patterns": 7, "address_labels": 99}
    _put_export(sot, files, counts, labels=_parquet(5))
    with caplog.at_level(logging.INFO):
        summary = _download(sot)
    folder = sot.settings.INPUT_DIR / DATE
    assert (folder / "patterns.parquet").read_bytes() == files["patterns.parquet"]
    assert summary["files"] == 6  # 4 files, META.json, labels
    assert "row counts match META.json" in caplog.text
    assert "5 rows, META.json counted 99" in caplog.text  # labels: noted, not refused


def test_a_count_mismatch_names_the_file_and_both_counts(sot):
    files = {"alerts.parquet": _parquet(12), "features.parquet": _parquet(30),
             "clusters.parquet": _parquet(4)}
    _put_export(sot, files, {"alerts": 12, "features": 31, "clusters": 4}, labels=None)
    with pytest.raises(DownloadError) as info:
        _download(sot)
    assert str(info.value) == (f"{PREFIX}features.parquet: row count mismatch: META.json counts "
                               "31 rows, the file has 30")
    assert not (sot.settings.INPUT_DIR / DATE).exists()


def test_a_count_for_a_file_the_batch_lacks_is_an_error(sot):
    files = {"alerts.parquet": _parquet(2), "features.parquet": _parquet(3),
             "clusters.parquet": _parquet(1)}
    _put_export(sot, files, {"alerts": 2, "money_flows": 40}, labels=None)
    with pytest.raises(DownloadError, match="money_flows.parquet: META.json counts 40 rows, but "
                                            "the batch has no such file"):
        _download(sot)


def test_a_counted_file_that_is_not_parquet_is_an_error_naming_it(sot):
    files = fake_batch()
    _put_export(sot, files, {"alerts": 5}, labels=None)
    with pytest.raises(DownloadError, match=r"alerts\.parquet: cannot read its row count"):
        _download(sot)


def test_a_tampered_patterns_file_fails_like_any_other(sot):
    files = {**fake_batch(), "patterns.parquet": _parquet(3)}
    _put_export(sot, files, {}, labels=None)
    sot.put(PREFIX + "patterns.parquet", _parquet(4))
    with pytest.raises(ChecksumMismatch, match=r"patterns\.parquet: sha256 mismatch"):
        _download(sot)


def test_a_date_without_alerts_says_so_and_lists_what_is_there(sot):
    files = {"features.parquet": _parquet(30), "money_flows.parquet": _parquet(8),
             "patterns.parquet": _parquet(7)}
    _put_export(sot, files, {"features": 30, "money_flows": 8, "patterns": 7,
                             "address_labels": 5}, labels=_parquet(5))
    with pytest.raises(NoAlertsInBatch) as info:
        _download(sot)
    assert isinstance(info.value, DownloadError)  # permanent
    assert info.value.files == ["META.json", "features.parquet", "money_flows.parquet",
                                "patterns.parquet"]
    message = str(info.value)
    assert message.startswith(f"{PREFIX}alerts.parquet: the batch has no alerts.parquet")
    assert "since 2025-12-01" in message and "\n" not in message
    assert "required file is missing" not in message
    assert sot.proxy.requests("GET", "features.parquet") == []  # planning stopped first
