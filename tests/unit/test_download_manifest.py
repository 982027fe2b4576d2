"""DOWNLOAD.json decides whether a published folder can be skipped."""

from __future__ import annotations

from shared.storage import sha256_file
from services.downloader import manifest
from shared.manifest import MANIFEST_FILE, write_manifest

SOURCE = {"endpoint": "", "bucket": "b", "prefix": "snapshots/bitcoin/2025-10-26/7/",
          "labels": "address-labels/bitcoin_address_labels.parquet"}


def _folder(tmp_path):
    (tmp_path / "alerts.parquet").write_bytes(b"alerts")
    entries = [{"name": "alerts.parquet", "key": "k", "size": 6,
                "sha256": sha256_file(tmp_path / "alerts.parquet")}]
    write_manifest(tmp_path, SOURCE, entries, [])
    return tmp_path


def test_an_intact_folder_from_the_same_source_is_verified(tmp_path):
    assert manifest.verified(_folder(tmp_path), SOURCE)["files"][0]["name"] == "alerts.parquet"


def test_another_source_is_not(tmp_path):
    assert manifest.verified(_folder(tmp_path), dict(SOURCE, prefix="snapshots/bitcoin/x/30/")) is None


def test_a_changed_or_missing_file_is_not(tmp_path):
    folder = _folder(tmp_path)
    (folder / "alerts.parquet").write_bytes(b"alertz")
    assert manifest.verified(folder, SOURCE) is None
    (folder / "alerts.parquet").unlink()
    assert manifest.verified(folder, SOURCE) is None


def test_no_or_a_broken_record_is_not(tmp_path):
    assert manifest.verified(tmp_path, SOURCE) is None
    (tmp_path / MANIFEST_FILE).write_text("{broken")
    assert manifest.verified(tmp_path, SOURCE) is None
    (tmp_path / MANIFEST_FILE).write_text('{"source": %s, "files": [{}]}'
                                                   % __import__("json").dumps(SOURCE))
    assert manifest.verified(tmp_path, SOURCE) is None
