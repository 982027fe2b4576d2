"""Which failures are permanent and which are worth retrying later."""

from __future__ import annotations

import errno
import os
import socket

import pytest
from botocore import exceptions as boto
from s3transfer.exceptions import RetriesExceededError

from services.downloader.errors import (DownloadError, DownloadFailure, NoAlertsInBatch,
                                        TransientDownloadError, classify, local_errors, s3_errors)


def _client_error(status, code):
    response = {"Error": {"Code": code, "Message": "msg"},
                "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 4}}
    return boto.ClientError(response, "GetObject")


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "SlowDown"),
                                         (503, "ServiceUnavailable"), (429, "TooManyRequests"),
                                         (400, "RequestTimeout"), (412, "PreconditionFailed")])
def test_server_trouble_is_transient(status, code):
    failure = classify(_client_error(status, code), "k")
    assert isinstance(failure, TransientDownloadError)
    assert "after 5 attempt(s)" in str(failure)


@pytest.mark.parametrize("status,code", [(403, "AccessDenied"), (404, "NoSuchBucket"),
                                         (404, "NoSuchKey"), (400, "InvalidArgument")])
def test_client_side_problems_are_permanent(status, code):
    failure = classify(_client_error(status, code), "s3://b/k")
    assert isinstance(failure, DownloadError) and not isinstance(failure, TransientDownloadError)
    assert str(failure).startswith("s3://b/k: S3 answered")


@pytest.mark.parametrize("exc", [
    boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    boto.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
    boto.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    boto.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
    boto.IncompleteReadError(actual_bytes=1, expected_bytes=2),
    RetriesExceededError(socket.timeout("timed out")),
    ConnectionResetError("reset"),
])
def test_network_errors_are_transient(exc):
    assert isinstance(classify(exc, "k"), TransientDownloadError)


def test_other_errors_are_permanent():
    assert isinstance(classify(boto.ParamValidationError(report="bad"), "k"), DownloadError)
    assert isinstance(classify(PermissionError("read-only disk"), "k"), DownloadError)


def test_the_two_kinds_are_siblings_so_callers_can_tell_them_apart():
    assert not issubclass(TransientDownloadError, DownloadError)
    assert issubclass(TransientDownloadError, DownloadFailure)
    assert issubclass(DownloadError, DownloadFailure)


def test_s3_errors_converts_and_keeps_the_cause():
    with pytest.raises(TransientDownloadError) as caught:
        with s3_errors("snapshots/x/alerts.parquet"):
            raise _client_error(503, "SlowDown")
    assert caught.value.key == "snapshots/x/alerts.parquet"
    assert isinstance(caught.value.__cause__, boto.ClientError)


def test_s3_errors_lets_our_own_failures_and_other_bugs_through():
    with pytest.raises(DownloadError, match="mine"):
        with s3_errors("k"):
            raise DownloadError("k", "mine")
    with pytest.raises(KeyError):
        with s3_errors("k"):
            raise KeyError("a bug is not a download failure")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_a_full_disk_or_io_error_while_writing_is_transient(code):
    failure = classify(OSError(code, os.strerror(code)), "snapshots/x/alerts.parquet")
    assert isinstance(failure, TransientDownloadError)
    assert "disk full or I/O error" in str(failure) and failure.key == "snapshots/x/alerts.parquet"


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_local_error_an_operator_must_fix_is_permanent(code):
    assert type(classify(OSError(code, os.strerror(code)), "volumes/input")) is DownloadError


def test_local_errors_converts_our_disks_oserrors_and_keeps_the_cause():
    with pytest.raises(TransientDownloadError) as info:
        with local_errors("volumes/input/2025-10-26"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.key == "volumes/input/2025-10-26"
    assert isinstance(info.value.__cause__, OSError)


def test_the_new_exports_missing_alerts_is_its_own_permanent_error():
    failure = NoAlertsInBatch("p/alerts.parquet", ["META.json", "features.parquet"])
    assert isinstance(failure, DownloadError) and failure.files == ["META.json", "features.parquet"]
    assert str(failure).endswith("files there: META.json, features.parquet")
