"""download_batch against a real S3-protocol server (moto) on loopback, through a fault proxy."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import storage
from shared.settings import SettingsError
from services.downloader.download import download_batch
from services.downloader.errors import BatchNotFound, DownloadError, TransientDownloadError
from shared.manifest import MANIFEST_FILE, recorded_digests
from tests.s3_fixtures import (DATE, NETWORK, WINDOW, fake_batch, free_port,  # noqa: F401
                               moto_endpoint, proxy, s3_proxy, sot, tree_bytes)

REQUIRED = ("alerts.parquet", "features.parquet", "clusters.parquet")


def _download(sot, force=False, **changes):
    settings = sot.settings.replace(**changes)
    return download_batch(NETWORK, DATE, WINDOW, settings.INPUT_DIR, force=force,
                          settings=settings)


def _folder(sot):
    return sot.settings.INPUT_DIR / DATE


def _nothing_published(sot):
    root = sot.settings.INPUT_DIR
    versions = root / storage.VERSIONS
    return not _folder(sot).exists() and (not versions.exists() or not any(versions.iterdir()))


def test_a_batch_lands_with_meta_labels_and_a_download_record(sot):
    files = fake_batch(2_500_000)  # > 1 MB threshold: fetched as ranged GETs
    sot.put_batch(files, labels=b"L" * 5000)
    summary = _download(sot)
    got = tree_bytes(_folder(sot))
    assert {k: got[k] for k in files} == files
    assert got["address_labels.parquet"] == b"L" * 5000
    meta = json.loads(got["META.json"])
    assert meta["sha256"]["alerts.parquet"] == storage.sha256_file(_folder(sot) / "alerts.parquet")
    record = json.loads(got[MANIFEST_FILE])
    assert {f["name"] for f in record["files"]} == set(files) | {"META.json",
                                                                  "address_labels.parquet"}
    # the processor takes these digests instead of hashing the files again
    assert recorded_digests(_folder(sot)) == {
        name: storage.sha256_file(_folder(sot) / name) for name in got if name != MANIFEST_FILE}
    assert summary["files"] == 6 and not summary["skipped"]
    assert summary["bytes"] == sum(len(v) for v in files.values()) + 5000 + len(got["META.json"])
    assert _folder(sot).is_symlink()  # published by one rename of a symlink
    ranged = [s for s in sot.proxy.object_gets() if s.path.endswith("features.parquet")]
    assert len(ranged) >= 3 and all(s.range for s in ranged)
    assert not sot.proxy.requests("HEAD")  # sizes come from the listing


def test_big_files_are_flushed_to_disk_while_they_download(sot, monkeypatch):
    from services.downloader import transfer
    from services.downloader.hashfile import HashingWriter

    synced, real_sync = [], HashingWriter.sync
    monkeypatch.setattr(transfer, "FLUSH_EVERY", 512 * 1024)
    monkeypatch.setattr(HashingWriter, "sync",
                        lambda self: (synced.append(self.path.name), real_sync(self)))
    files = fake_batch(2_500_000)
    sot.put_batch(files)
    _download(sot)
    assert "money_flows.parquet" in synced and "features.parquet" in synced
    assert {k: v for k, v in tree_bytes(_folder(sot)).items() if k in files} == files


def test_a_generated_batch_downloads_and_passes_the_contract(sot, tmp_path):
    from shared.contract import load_batch
    from shared.sample import generate_batch, write_sot
    from services.ops.upload import upload_tree

    write_sot(generate_batch(NETWORK, DATE, WINDOW, n_alerts=400, seed=3), tmp_path / "sot")
    upload_tree(tmp_path / "sot", sot.settings)  # keyed, through the proxy
    summary = _download(sot)
    assert summary["files"] == 6 and summary["missing_optional"] == []
    batch = load_batch(_folder(sot))
    meta = json.loads((_folder(sot) / "META.json").read_text())
    assert len(batch.alerts) == meta["counts"]["alerts"] == 400
    assert len(batch.features) == meta["counts"]["features"]
    assert len(batch.money_flows) == meta["counts"]["money_flows"]
    assert batch.labels is not None and len(batch.labels) > 0


def test_anonymous_requests_are_unsigned_and_need_a_public_bucket(sot):
    sot.put_batch(fake_batch())
    anonymous = {"SOT_S3_ACCESS_KEY": "", "SOT_S3_SECRET_KEY": ""}
    with pytest.raises(DownloadError, match="403.*bucket's read policy"):
        _download(sot, **anonymous)  # moto refuses unsigned reads of a private object
    assert _nothing_published(sot)
    sot.make_public()
    sot.proxy.reset()
    assert _download(sot, **anonymous)["files"] == 6
    seen = sot.proxy.seen
    assert len(seen) >= 6
    assert all(s.authorization is None for s in seen)


def test_keyed_requests_are_signed_with_the_configured_key(sot):
    sot.put_batch(fake_batch())
    _download(sot)
    seen = sot.proxy.seen
    assert seen and all(s.authorization and "Credential=testing-key/" in s.authorization
                        for s in seen)


def test_listing_pages_past_1000_keys_and_ignores_sibling_prefixes(sot):
    prefix = sot.put_batch(fake_batch())
    sibling = storage.sot_prefix(NETWORK, DATE, 70)  # shares the text "…/7" but not "…/7/"
    sot.put(sibling + "alerts.parquet", b"not this window")
    extra = [f"{prefix}parts/part-{i:05d}.bin" for i in range(1030)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: sot.put(key, b"x"), extra))
    summary = _download(sot)
    pages = [s for s in sot.proxy.list_pages(sot.bucket) if "2025-10-26%2F7%2F" in s.query]
    assert len(pages) >= 2, "the listing of the batch prefix must take more than one page"
    assert any("continuation-token" in s.query for s in pages)
    assert summary["files"] == 6
    assert (_folder(sot) / "alerts.parquet").read_bytes() == fake_batch()["alerts.parquet"]


def test_a_checksum_mismatch_fails_and_keeps_the_old_folder_byte_for_byte(sot):
    files = fake_batch()
    prefix = sot.put_batch(files)
    _download(sot)
    before, version = tree_bytes(_folder(sot)), storage.resolve(_folder(sot))
    sot.put(prefix + "features.parquet", b"tampered" + files["features.parquet"][8:])
    with pytest.raises(DownloadError, match=r"features\.parquet: sha256 mismatch"):
        _download(sot, force=True)
    assert tree_bytes(_folder(sot)) == before
    assert storage.resolve(_folder(sot)) == version
    assert [p.name for p in (sot.settings.INPUT_DIR / storage.VERSIONS).iterdir()] == [version.name]


def test_a_first_download_with_a_bad_checksum_publishes_nothing(sot):
    files = fake_batch()
    prefix = sot.put_batch(files)
    sot.put(prefix + "alerts.parquet", files["alerts.parquet"][::-1])
    with pytest.raises(DownloadError, match="alerts.parquet"):
        _download(sot)
    assert _nothing_published(sot)


# A missing alerts.parquet is the newer export, NoAlertsInBatch (test_download_hardening.py).
@pytest.mark.parametrize("name", [n for n in REQUIRED if n != "alerts.parquet"])
def test_a_missing_required_file_is_an_error_naming_its_key(sot, name):
    files = fake_batch()
    del files[name]
    sot.put_batch(files)
    with pytest.raises(DownloadError, match=f"snapshots/bitcoin/2025-10-26/7/{name}: required"):
        _download(sot)
    assert _nothing_published(sot)


def test_missing_optional_files_warn_and_the_download_succeeds(sot, caplog):
    files = fake_batch()
    del files["money_flows.parquet"]
    sot.put_batch(files, labels=None)
    with caplog.at_level(logging.WARNING):
        summary = _download(sot)
    assert summary["missing_optional"] == ["snapshots/bitcoin/2025-10-26/7/money_flows.parquet",
                                           "address-labels/bitcoin_address_labels.parquet"]
    names = set(tree_bytes(_folder(sot)))
    assert "money_flows.parquet" not in names and "address_labels.parquet" not in names
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "money_flows.parquet" in warned and "bitcoin_address_labels.parquet" in warned


def test_a_missing_meta_is_an_error_when_other_dates_have_one(sot):
    sot.put_batch(fake_batch(seed=1), date="2025-10-25")
    sot.put_batch(fake_batch(), meta=None)
    with pytest.raises(DownloadError, match=r"7/META\.json: META\.json is missing"):
        _download(sot)
    assert _nothing_published(sot)


def test_a_bucket_without_any_meta_downloads_with_size_checks_only(sot, caplog):
    sot.put_batch(fake_batch(seed=1), date="2025-10-25", meta=None)
    sot.put_batch(fake_batch(), meta=None)
    with caplog.at_level(logging.WARNING):
        summary = _download(sot)
    assert summary["files"] == 5
    assert "checked by size only" in caplog.text


@pytest.mark.parametrize("policy,fails", [("always", True), ("never", False)])
def test_the_meta_policy_setting_decides_outright(sot, policy, fails):
    sot.put_batch(fake_batch(seed=1), date="2025-10-25")  # would make `auto` require it
    sot.put_batch(fake_batch(), meta=None)
    if fails:
        with pytest.raises(DownloadError, match="META.json is missing"):
            _download(sot, SOT_REQUIRE_META=policy)
    else:
        assert _download(sot, SOT_REQUIRE_META=policy)["files"] == 5


@pytest.mark.parametrize("name", ["clusters.parquet", "money_flows.parquet", "META.json"])
def test_an_empty_object_is_an_error_naming_its_key(sot, name):
    files = fake_batch()
    prefix = sot.put_batch(files)
    sot.put(prefix + name, b"")
    with pytest.raises(DownloadError, match=f"7/{name}: object is empty"):
        _download(sot)
    assert _nothing_published(sot)


def test_an_empty_labels_object_is_an_error_too(sot):
    sot.put_batch(fake_batch(), labels=b"")
    with pytest.raises(DownloadError, match="bitcoin_address_labels.parquet: object is empty"):
        _download(sot)


def test_a_meta_file_that_lists_a_missing_file_is_an_error(sot):
    files = fake_batch()
    prefix = sot.put_batch(files)
    sot.client.delete_object(Bucket=sot.bucket, Key=prefix + "money_flows.parquet")
    with pytest.raises(DownloadError, match="money_flows.parquet: META.json lists this file"):
        _download(sot)


def test_a_meta_for_another_date_is_refused(sot):
    prefix = sot.put_batch(fake_batch())
    doc = {"processing_date": "2025-10-25", "sha256": {}}
    sot.put(prefix + "META.json", json.dumps(doc).encode())
    with pytest.raises(DownloadError, match="META.json: says processing_date '2025-10-25'"):
        _download(sot)


def test_5xx_answers_are_survived_by_retries(sot):
    files = fake_batch(2_500_000)
    sot.put_batch(files)
    sot.proxy.fail(2, 503, key_suffix="features.parquet")
    sot.proxy.fail(1, 500, key_suffix="META.json")
    sot.proxy.fail(1, 503, key_suffix=sot.bucket)  # the first listing page
    _download(sot)
    assert tree_bytes(_folder(sot))["features.parquet"] == files["features.parquet"]
    statuses = [s.status for s in sot.proxy.seen]
    assert statuses.count(503) == 3 and statuses.count(500) == 1


def test_a_read_timeout_is_survived_by_retries(sot):
    files = fake_batch()
    sot.put_batch(files)
    sot.proxy.stall(1, 3.0, key_suffix="clusters.parquet")
    _download(sot, SOT_S3_READ_TIMEOUT=0.5)
    assert tree_bytes(_folder(sot))["clusters.parquet"] == files["clusters.parquet"]
    assert len(sot.proxy.requests("GET", "clusters.parquet")) == 2


def test_5xx_past_the_retry_budget_is_transient_and_publishes_nothing(sot):
    sot.put_batch(fake_batch())
    sot.proxy.fail(100, 503, key_suffix="alerts.parquet")
    with pytest.raises(TransientDownloadError, match=r"alerts\.parquet: S3 answered 503"):
        _download(sot, SOT_S3_MAX_ATTEMPTS=2)
    assert len(sot.proxy.requests("GET", "alerts.parquet")) == 2
    assert _nothing_published(sot)


def test_an_unreachable_endpoint_is_transient(sot):
    with pytest.raises(TransientDownloadError):
        _download(sot, SOT_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}", SOT_S3_MAX_ATTEMPTS=1)


def test_a_missing_bucket_is_permanent(sot):
    with pytest.raises(DownloadError, match="NoSuchBucket"):
        _download(sot, SOT_S3_BUCKET="no-such-bucket-here")


def test_access_denied_is_permanent_and_says_what_to_check(sot):
    sot.put_batch(fake_batch())
    sot.proxy.fail(1, 403, key_suffix=sot.bucket)
    with pytest.raises(DownloadError, match="SOT_S3_ACCESS_KEY"):
        _download(sot)


def test_an_unpublished_date_is_batch_not_found(sot):
    sot.put_batch(fake_batch(), date="2025-10-25")
    with pytest.raises(BatchNotFound, match="2025-10-26/7/: no objects"):
        _download(sot)


def test_a_rerun_skips_a_verified_folder_without_any_request(sot):
    sot.put_batch(fake_batch())
    _download(sot)
    version = storage.resolve(_folder(sot))
    sot.proxy.reset()
    summary = _download(sot)
    assert summary["skipped"] and summary["files"] == 6
    assert sot.proxy.seen == []
    assert storage.resolve(_folder(sot)) == version


def test_force_downloads_again_and_replaces_the_folder(sot):
    files = fake_batch()
    sot.put_batch(files)
    _download(sot)
    version = storage.resolve(_folder(sot))
    sot.proxy.reset()
    summary = _download(sot, force=True)
    assert not summary["skipped"]
    assert len(sot.proxy.object_gets()) >= 6
    assert storage.resolve(_folder(sot)) != version
    assert tree_bytes(_folder(sot))["alerts.parquet"] == files["alerts.parquet"]


def test_a_damaged_local_copy_is_fetched_again_without_force(sot):
    files = fake_batch()
    sot.put_batch(files)
    _download(sot)
    (storage.resolve(_folder(sot)) / "clusters.parquet").write_bytes(b"damaged")
    assert not _download(sot)["skipped"]
    assert (_folder(sot) / "clusters.parquet").read_bytes() == files["clusters.parquet"]


def test_another_window_of_the_same_date_is_not_taken_for_this_one(sot):
    sot.put_batch(fake_batch(seed=30), window=30)
    sot.put_batch(fake_batch())
    settings = sot.settings
    download_batch(NETWORK, DATE, 30, settings.INPUT_DIR, settings=settings)
    summary = _download(sot)
    assert not summary["skipped"]
    assert (_folder(sot) / "alerts.parquet").read_bytes() == fake_batch()["alerts.parquet"]


@pytest.mark.parametrize("shape", ["files-md5", "files-list"])
def test_older_meta_shapes_are_verified(sot, shape):
    files = fake_batch()
    sot.put_batch(files, meta=shape)
    assert _download(sot)["files"] == 6


def test_an_md5_mismatch_in_an_older_meta_fails(sot):
    files = fake_batch()
    prefix = sot.put_batch(files, meta="files-md5")
    sot.put(prefix + "clusters.parquet", b"other bytes")
    with pytest.raises(DownloadError, match=r"clusters\.parquet: md5 mismatch"):
        _download(sot)


def test_an_unknown_meta_policy_is_refused_before_any_request(sot):
    with pytest.raises(SettingsError, match="SOT_REQUIRE_META='sometimes'"):
        _download(sot, SOT_REQUIRE_META="sometimes")
    assert sot.proxy.seen == []


def test_bad_arguments_are_named(sot):
    with pytest.raises(DownloadError, match="processing_date"):
        download_batch(NETWORK, "2025-13-01", WINDOW, sot.settings.INPUT_DIR, settings=sot.settings)
    with pytest.raises(DownloadError, match="days"):
        download_batch(NETWORK, DATE, 0, sot.settings.INPUT_DIR, settings=sot.settings)
    with pytest.raises(DownloadError, match="network"):
        download_batch("../x", DATE, WINDOW, sot.settings.INPUT_DIR, settings=sot.settings)
