"""The S3 client and transfer configuration of the SOT bucket, built from Settings.

Shared by the downloader and the sample uploader (ops). No keys means anonymous
(unsigned) requests, as the public SOT expects; then botocore never looks for
credentials, so it never probes an instance-metadata address either. A custom
endpoint (MinIO, SeaweedFS, moto, Scaleway) is addressed path-style, because a
host name like `minio:9000` has no per-bucket DNS names.
"""

from __future__ import annotations

import boto3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config

from shared.settings import Settings, SettingsError

MB = 1 << 20
RETRY_MODES = ("standard", "adaptive", "legacy")
POSITIVE = ("SOT_S3_MAX_ATTEMPTS", "SOT_S3_MAX_CONCURRENCY", "SOT_S3_MULTIPART_THRESHOLD_MB",
            "SOT_S3_MULTIPART_CHUNK_MB", "SOT_S3_CONNECT_TIMEOUT", "SOT_S3_READ_TIMEOUT")


def check(settings: Settings) -> None:
    """Refuse S3 settings that cannot work, naming the variable."""
    if settings.SOT_S3_RETRY_MODE not in RETRY_MODES:
        raise SettingsError(f"SOT_S3_RETRY_MODE={settings.SOT_S3_RETRY_MODE!r} is not one of "
                            f"{', '.join(RETRY_MODES)}")
    for name in POSITIVE:
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name}={getattr(settings, name)!r} must be greater than 0")
    if bool(settings.SOT_S3_ACCESS_KEY) != bool(settings.SOT_S3_SECRET_KEY):
        missing = "SOT_S3_SECRET_KEY" if settings.SOT_S3_ACCESS_KEY else "SOT_S3_ACCESS_KEY"
        raise SettingsError(f"{missing} is empty while its pair is set (set both, or neither "
                            f"for anonymous access)")
    if not settings.SOT_S3_BUCKET:
        raise SettingsError("SOT_S3_BUCKET is empty")


def is_anonymous(settings: Settings) -> bool:
    """True when no keys are configured: requests go unsigned."""
    return not settings.SOT_S3_ACCESS_KEY


def client_config(settings: Settings) -> Config:
    """botocore Config: timeouts, retries, a pool big enough for the transfer threads."""
    options = dict(
        connect_timeout=settings.SOT_S3_CONNECT_TIMEOUT,
        read_timeout=settings.SOT_S3_READ_TIMEOUT,
        # total_max_attempts counts the first try; botocore's max_attempts would not.
        retries={"mode": settings.SOT_S3_RETRY_MODE,
                 "total_max_attempts": settings.SOT_S3_MAX_ATTEMPTS},
        # Headroom over the transfer threads for listing and META reads alongside them.
        max_pool_connections=settings.SOT_S3_MAX_CONCURRENCY + 4,
        # Only our settings choose the endpoint, not AWS_ENDPOINT_URL* or ~/.aws/config.
        ignore_configured_endpoint_urls=True,
    )
    if settings.SOT_S3_ENDPOINT:
        options["s3"] = {"addressing_style": "path"}
    if is_anonymous(settings):
        options["signature_version"] = UNSIGNED
    return Config(**options)


def make_client(settings: Settings):
    """An S3 client for the configured endpoint, region and keys (unsigned without keys)."""
    check(settings)
    keys = {} if is_anonymous(settings) else {
        "aws_access_key_id": settings.SOT_S3_ACCESS_KEY,
        "aws_secret_access_key": settings.SOT_S3_SECRET_KEY,
    }
    # A session of our own: boto3's default session is not safe to share across threads.
    session = boto3.session.Session()
    return session.client("s3", region_name=settings.SOT_S3_REGION,
                          endpoint_url=settings.SOT_S3_ENDPOINT or None,
                          config=client_config(settings), **keys)


def transfer_config(settings: Settings) -> TransferConfig:
    """Transfer-manager config: big files as parallel ranged GETs of a fixed chunk size."""
    check(settings)
    return TransferConfig(
        multipart_threshold=settings.SOT_S3_MULTIPART_THRESHOLD_MB * MB,
        multipart_chunksize=settings.SOT_S3_MULTIPART_CHUNK_MB * MB,
        max_concurrency=settings.SOT_S3_MAX_CONCURRENCY,
        num_download_attempts=settings.SOT_S3_MAX_ATTEMPTS,
        use_threads=True,
        # The classic manager: the CRT one ignores max_concurrency and is not installed here.
        preferred_transfer_client="classic",
    )
