"""Upload a SOT folder layout to an S3 bucket the way the producer publishes it.

Used by `aml-miner sample --bucket`: the tree under root (`snapshots/...`,
`address-labels/...`) becomes keys of the same relative paths. Each batch's
META.json goes up after all the other files, so a reader that sees META.json
sees every file it lists. A bucket that does not exist is created; with no keys
configured (a local S3 server that takes anonymous writes) it also gets the
public-read policy of the real SOT, so anonymous downloads work as in production.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from boto3.s3.transfer import create_transfer_manager
from botocore.exceptions import BotoCoreError, ClientError

from shared.contract import META_FILE
from shared.s3 import is_anonymous, make_client, transfer_config
from shared.settings import Settings

log = logging.getLogger(__name__)

MB = 1 << 20


class UploadError(Exception):
    """The sample could not be uploaded; the message names the bucket or key."""


def public_read_policy(bucket: str) -> str:
    """Anyone may list the bucket and read its objects (the public SOT's access)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{bucket}"}]})


def ensure_bucket(client, bucket: str, region: str, public: bool) -> bool:
    """Create bucket when missing (public-read if asked); True when it was created."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise
    # us-east-1 is the one region S3 refuses as an explicit LocationConstraint.
    options = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket=bucket, **options)
    if public:
        client.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
    log.info("created bucket %s%s", bucket, " (public read)" if public else "")
    return True


def _files(root: Path, only: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    def wanted(path: Path) -> bool:
        relative = path.relative_to(root)
        return (not any(part.startswith(".") for part in relative.parts)
                and relative.as_posix().startswith(only))

    files = sorted(p for p in root.rglob("*") if p.is_file() and wanted(p))
    return [p for p in files if p.name != META_FILE], [p for p in files if p.name == META_FILE]


def _put_all(manager, bucket: str, root: Path, paths: list[Path]) -> None:
    futures = [(p, manager.upload(str(p), bucket, p.relative_to(root).as_posix())) for p in paths]
    for path, future in futures:
        try:
            future.result()
        except (BotoCoreError, ClientError, OSError) as exc:
            raise UploadError(f"s3://{bucket}/{path.relative_to(root).as_posix()}: "
                              f"upload failed: {exc}") from exc


def upload_tree(root: Path | str, settings: Settings, bucket: str | None = None,
                only: tuple[str, ...] = ("",)) -> dict:
    """Upload the files under root (those whose key starts with one of `only`) to the bucket.

    The bucket defaults to SOT_S3_BUCKET; returns {bucket, objects, bytes, seconds}.
    """
    root, bucket = Path(root), bucket or settings.SOT_S3_BUCKET
    started = time.perf_counter()
    data, metas = _files(root, tuple(only))
    if not data:
        raise UploadError(f"{root}: no files to upload under {', '.join(only) or '/'}")
    client = make_client(settings.replace(SOT_S3_BUCKET=bucket))
    try:
        ensure_bucket(client, bucket, settings.SOT_S3_REGION, public=is_anonymous(settings))
    except (BotoCoreError, ClientError) as exc:
        raise UploadError(f"s3://{bucket}: cannot use or create the bucket: {exc}") from exc
    with create_transfer_manager(client, transfer_config(settings)) as manager:
        _put_all(manager, bucket, root, data)
        _put_all(manager, bucket, root, metas)  # last: META.json vouches for what is there
    size = sum(p.stat().st_size for p in data + metas)
    seconds = time.perf_counter() - started
    log.info("uploaded %d files, %.1f MB to s3://%s in %.2f s", len(data) + len(metas),
             size / MB, bucket, seconds)
    return {"bucket": bucket, "objects": len(data) + len(metas), "bytes": size,
            "seconds": round(seconds, 3)}
