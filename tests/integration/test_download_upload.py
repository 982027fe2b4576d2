"""Uploading a SOT layout to a bucket (the sample's --bucket path), then downloading it."""

from __future__ import annotations

import json
import uuid

import pytest

from shared import storage
from services.downloader.download import download_batch
from services.ops.upload import UploadError, upload_tree
from tests.s3_fixtures import (DATE, NETWORK, WINDOW, fake_batch, meta_document,  # noqa: F401
                               moto_endpoint, proxy, s3_proxy, s3_settings, tree_bytes)


def _write_layout(root, files, date=DATE):
    prefix = root / storage.sot_prefix(NETWORK, date, WINDOW)
    prefix.mkdir(parents=True)
    for name, data in files.items():
        (prefix / name).write_bytes(data)
    (prefix / "META.json").write_text(json.dumps(meta_document(files, processing_date=date)))
    labels = root / storage.labels_key(NETWORK)
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_bytes(b"labels" * 100)
    return prefix


@pytest.fixture
def anonymous(settings, proxy):
    return s3_settings(settings, proxy.url, f"up-{uuid.uuid4().hex[:10]}",
                       SOT_S3_ACCESS_KEY="", SOT_S3_SECRET_KEY="")


def test_an_anonymous_upload_creates_a_public_bucket_that_downloads_anonymously(tmp_path, anonymous,
                                                                               proxy):
    files = fake_batch()
    _write_layout(tmp_path / "sot", files)
    summary = upload_tree(tmp_path / "sot", anonymous)
    assert summary["objects"] == 6 and summary["bucket"] == anonymous.SOT_S3_BUCKET
    puts = [s.path for s in proxy.requests("PUT") if "/snapshots/" in s.path]
    assert puts[-1].endswith("/META.json") and len(puts) == 5  # META.json goes up last
    result = download_batch(NETWORK, DATE, WINDOW, anonymous.INPUT_DIR, settings=anonymous)
    assert result["files"] == 6
    got = tree_bytes(anonymous.INPUT_DIR / DATE)
    assert {name: got[name] for name in files} == files
    assert all(s.authorization is None for s in proxy.seen)


def test_only_limits_the_upload_to_one_batch(tmp_path, anonymous):
    _write_layout(tmp_path / "sot", fake_batch())
    _write_layout(tmp_path / "sot", fake_batch(seed=2), date="2025-10-25")
    only = (storage.sot_prefix(NETWORK, DATE, WINDOW), storage.labels_key(NETWORK))
    assert upload_tree(tmp_path / "sot", anonymous, only=only)["objects"] == 6


def test_a_keyed_upload_to_an_existing_bucket_keeps_its_policy(tmp_path, settings, moto_endpoint):
    keyed = s3_settings(settings, moto_endpoint, f"up-{uuid.uuid4().hex[:10]}")
    _write_layout(tmp_path / "sot", fake_batch())
    upload_tree(tmp_path / "sot", keyed)
    assert upload_tree(tmp_path / "sot", keyed)["objects"] == 6  # second time: bucket exists
    from shared.s3 import make_client
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError):  # private: created with keys, no public policy
        make_client(keyed).get_bucket_policy(Bucket=keyed.SOT_S3_BUCKET)


def test_nothing_to_upload_is_an_error(tmp_path, anonymous):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UploadError, match="no files to upload"):
        upload_tree(tmp_path / "empty", anonymous)


def _cli(args, env_settings, cwd):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOT_", "AWS_"))}
    env.update({k: str(getattr(env_settings, k)) for k in (
        "SOT_S3_ENDPOINT", "SOT_S3_BUCKET", "SOT_S3_REGION", "SOT_S3_ACCESS_KEY",
        "SOT_S3_SECRET_KEY", "SOT_S3_RETRY_MODE", "SOT_S3_MAX_ATTEMPTS")})
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_sample_bucket_then_download_round_trip_passes_the_contract(tmp_path, anonymous, proxy):
    from shared.contract import load_batch
    from tests.conftest import REPO

    common = ["--network", NETWORK, "--processing-date", DATE, "--days", str(WINDOW)]
    made = _cli(["sample", *common, "--output-dir", str(tmp_path / "sot"), "--alerts", "300",
                 "--bucket", anonymous.SOT_S3_BUCKET], anonymous, REPO)
    assert made.returncode == 0, made.stderr
    assert f"s3://{anonymous.SOT_S3_BUCKET}/snapshots/bitcoin/2025-10-26/7/" in made.stdout
    got = _cli(["download", *common, "--output-dir", str(tmp_path / "input")], anonymous, REPO)
    assert got.returncode == 0, got.stderr
    folder = tmp_path / "input" / DATE
    sot_prefix = tmp_path / "sot" / storage.sot_prefix(NETWORK, DATE, WINDOW)
    for path in sot_prefix.iterdir():
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert (folder / "address_labels.parquet").read_bytes() == \
        (tmp_path / "sot" / storage.labels_key(NETWORK)).read_bytes()
    batch = load_batch(folder)
    meta = json.loads((folder / "META.json").read_text())
    assert len(batch.alerts) == meta["counts"]["alerts"] == 300
    assert len(batch.clusters) == meta["counts"]["clusters"]
    assert batch.labels is not None and batch.money_flows is not None
    assert all(s.authorization is None for s in proxy.seen)  # anonymous both ways


def test_sample_bucket_failure_is_one_line_and_non_zero(tmp_path, anonymous):
    from tests.conftest import REPO
    from tests.s3_fixtures import free_port

    dead = anonymous.replace(SOT_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}", SOT_S3_MAX_ATTEMPTS=1)
    made = _cli(["sample", "--processing-date", DATE, "--output-dir", str(tmp_path / "sot"),
                 "--alerts", "50", "--bucket", "somewhere"], dead, REPO)
    assert made.returncode == 1
    assert "aml-miner sample: upload failed: s3://somewhere: cannot use or create the bucket" \
        in made.stderr
    assert "Traceback" not in made.stderr
