"""Why a download failed, split by whether trying again later can help.

`DownloadError` is permanent: the batch is broken or absent as published (checksum
mismatch, missing required file, empty object, bad META.json, no such bucket,
access denied, bad arguments). Retrying gives the same answer until someone
changes the bucket or the configuration.

`TransientDownloadError` is the network, the server or our own disk: connection
refused or reset, connect/read timeouts, HTTP 5xx, throttling, an object changed
while it was being read, a full disk or an I/O error while writing. botocore has
already retried the network ones SOT_S3_MAX_ATTEMPTS times (and s3transfer its
streaming reads as often) before this is raised, so a caller retries later, not at
once (the job chain: RQ `Retry` with intervals).

Both derive from `DownloadFailure` and carry `.key`: the S3 key, bucket or
parameter the message names.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Iterator

from botocore import exceptions as boto
from s3transfer.exceptions import RetriesExceededError

TRANSIENT_STATUS = {408, 412, 429, 500, 502, 503, 504}
TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                   "RequestLimitExceeded", "InternalError", "ServiceUnavailable",
                   "PreconditionFailed"}
TRANSIENT_EXCEPTIONS = (boto.ConnectionError, boto.HTTPClientError, boto.IncompleteReadError,
                        RetriesExceededError, socket.timeout, ConnectionError)
# Writing locally: a full disk or quota, or a failing device, may clear up by the next try.
# Anything else (permission denied, read-only file system) needs an operator first.
TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO}


class DownloadFailure(Exception):
    """A batch download failed; the message names the key, bucket or parameter."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class DownloadError(DownloadFailure):
    """Permanent failure: the published batch or the configuration is wrong; do not retry."""


class BatchNotFound(DownloadError):
    """Nothing is published under the batch prefix (yet): a wrong date, window or bucket."""


class ChecksumMismatch(DownloadError):
    """A file's digest is not META.json's: fetched again once, then permanent."""


class NoAlertsInBatch(DownloadError):
    """The batch has no alerts.parquet (the SOT's export since 2025-12-01): nothing to score.

    Permanent and distinct, so a caller such as a backfill can report "no alerts (new
    export)" instead of a broken download. `files` lists what the batch does hold.
    """

    def __init__(self, key: str, files: list[str]):
        self.files = list(files)
        super().__init__(key, "the batch has no alerts.parquet (the SOT's export since "
                              "2025-12-01 publishes none), so there is nothing to score; "
                              f"files there: {', '.join(self.files) or 'none'}")


class TransientDownloadError(DownloadFailure):
    """Network, timeout, 5xx, throttling (after botocore's retries) or a full disk; retry later."""


def _client_error(exc: boto.ClientError, key: str) -> DownloadFailure:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code, status = str(error.get("Code", "")), int(meta.get("HTTPStatusCode") or 0)
    attempts = meta.get("RetryAttempts", 0)
    label = f"{status} {code}" if code and code != str(status) else str(status)
    problem = f"S3 answered {label} ({error.get('Message') or 'no message'})"
    if status in TRANSIENT_STATUS or code in TRANSIENT_CODES:
        return TransientDownloadError(key, f"{problem} after {attempts + 1} attempt(s)")
    if status == 403:
        problem += "; check SOT_S3_ACCESS_KEY/SOT_S3_SECRET_KEY or the bucket's read policy"
    return DownloadError(key, problem)


def classify(exc: BaseException, key: str) -> DownloadFailure:
    """Turn a boto/s3transfer/socket exception into a named, retry-aware failure for key."""
    if isinstance(exc, DownloadFailure):
        return exc
    if isinstance(exc, boto.ClientError):
        return _client_error(exc, key)
    if isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
        return TransientDownloadError(key, f"reading the object failed repeatedly: "
                                           f"{exc.last_exception}")
    if isinstance(exc, TRANSIENT_EXCEPTIONS):
        return TransientDownloadError(key, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return TransientDownloadError(key, f"writing it failed: {exc} (disk full or I/O "
                                           "error); retry later")
    return DownloadError(key, f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def local_errors(where: str) -> Iterator[None]:
    """Re-raise an OSError of our own disk inside the block as DownloadFailure naming where."""
    try:
        yield
    except DownloadFailure:
        raise
    except OSError as exc:
        raise classify(exc, where) from exc


@contextlib.contextmanager
def s3_errors(key: str) -> Iterator[None]:
    """Re-raise boto and network errors inside the block as DownloadFailure naming key."""
    try:
        yield
    except DownloadFailure:
        raise
    except (boto.BotoCoreError, boto.ClientError, RetriesExceededError, OSError) as exc:
        raise classify(exc, key) from exc
