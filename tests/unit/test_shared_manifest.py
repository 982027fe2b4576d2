"""DOWNLOAD.json digests are reused only for files unchanged since they were recorded."""

from __future__ import annotations

import json
import logging
import os

from services.processor.inputs import checksums
from shared import contract
from shared.manifest import MANIFEST_FILE, file_entry, recorded_digests, write_manifest
from shared.sample import write_input
from shared.storage import sha256_file
from tests.sample_fixtures import small_batch

FAKE = "ab" * 32  # a well-formed sha256 that no file here has: shows when a record is used


def _recorded(folder, name=contract.ALERTS_FILE, content=b"alerts", digest=FAKE):
    (folder / name).write_bytes(content)
    write_manifest(folder, {"bucket": "b"}, [file_entry(folder / name, digest, key="k")], [])
    return folder / name


def test_an_unchanged_file_keeps_its_recorded_digest(tmp_path):
    path = _recorded(tmp_path)
    entry = json.loads((tmp_path / MANIFEST_FILE).read_text())["files"][0]
    assert entry == {"name": path.name, "key": "k", "size": 6,
                     "mtime_ns": path.stat().st_mtime_ns, "sha256": FAKE}
    assert recorded_digests(tmp_path) == {path.name: FAKE}


def test_a_file_with_another_size_or_mtime_is_not_trusted(tmp_path):
    path = _recorded(tmp_path)
    path.write_bytes(b"alerts, rewritten")
    assert recorded_digests(tmp_path) == {}
    path = _recorded(tmp_path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # same size, touched
    assert recorded_digests(tmp_path) == {}
    path.unlink()
    assert recorded_digests(tmp_path) == {}


def test_old_broken_or_odd_records_give_nothing(tmp_path, caplog):
    path = _recorded(tmp_path)
    record = json.loads((tmp_path / MANIFEST_FILE).read_text())
    good = record["files"][0]
    odd = [{k: v for k, v in good.items() if k != "mtime_ns"},  # written before mtimes were kept
           dict(good, sha256="not-a-digest"), dict(good, sha256=FAKE.upper()),
           dict(good, name=None), dict(good, name="../" + path.name), "alerts.parquet", None]
    for entry in odd:
        (tmp_path / MANIFEST_FILE).write_text(json.dumps(dict(record, files=[entry])))
        assert recorded_digests(tmp_path) == {}, entry
    for text in ('{"files": {"alerts.parquet": "x"}}', "[]", "{}"):
        (tmp_path / MANIFEST_FILE).write_text(text)
        assert recorded_digests(tmp_path) == {}
    (tmp_path / MANIFEST_FILE).write_text("{broken")
    with caplog.at_level(logging.WARNING):
        assert recorded_digests(tmp_path) == {}
    assert MANIFEST_FILE in caplog.text and "unreadable" in caplog.text
    (tmp_path / MANIFEST_FILE).unlink()
    assert recorded_digests(tmp_path) == {}


def test_processor_checksums_reuse_recorded_digests_and_hash_the_rest(tmp_path):
    path = _recorded(tmp_path)
    (tmp_path / contract.META_FILE).write_text("{}")
    assert checksums(tmp_path) == {path.name: FAKE,
                                   contract.META_FILE: sha256_file(tmp_path / contract.META_FILE)}
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1000))
    assert checksums(tmp_path)[path.name] == sha256_file(path)


def test_a_sample_input_date_records_the_true_digest_of_every_file(tmp_path):
    folder = write_input(small_batch(n_alerts=200), tmp_path)
    files = {p.name for p in folder.iterdir()} - {MANIFEST_FILE}
    assert recorded_digests(folder) == {name: sha256_file(folder / name) for name in files}
    meta = json.loads((folder / contract.META_FILE).read_text())
    assert {name: recorded_digests(folder)[name] for name in meta["sha256"]} == meta["sha256"]
    assert checksums(folder) == {name: sha256_file(folder / name)
                                 for name in (*contract.BATCH_FILES, contract.META_FILE)}
