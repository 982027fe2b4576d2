"""The S3 client and transfer configuration built from Settings."""

from __future__ import annotations

import pytest
from botocore import UNSIGNED

from shared import s3
from shared.settings import Settings, SettingsError


def _settings(**changes):
    return Settings.from_env({}).replace(**changes)


def test_no_keys_means_unsigned_requests_and_no_credential_lookup():
    settings = _settings(SOT_S3_ENDPOINT="http://127.0.0.1:9", SOT_S3_ACCESS_KEY="")
    client = s3.make_client(settings)
    assert s3.is_anonymous(settings)
    assert client.meta.config.signature_version is UNSIGNED
    assert client._request_signer._credentials is None


def test_keys_sign_requests():
    client = s3.make_client(_settings(SOT_S3_ACCESS_KEY="ak", SOT_S3_SECRET_KEY="sk",
                                      SOT_S3_ENDPOINT="http://127.0.0.1:9"))
    assert client._request_signer._credentials.access_key == "ak"
    assert client.meta.config.signature_version is not UNSIGNED


def test_timeouts_retries_pool_and_addressing_come_from_settings():
    config = s3.client_config(_settings(SOT_S3_CONNECT_TIMEOUT=3.0, SOT_S3_READ_TIMEOUT=7.0,
                                        SOT_S3_MAX_ATTEMPTS=4, SOT_S3_RETRY_MODE="standard",
                                        SOT_S3_MAX_CONCURRENCY=16,
                                        SOT_S3_ENDPOINT="http://minio:9000"))
    assert (config.connect_timeout, config.read_timeout) == (3.0, 7.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert config.max_pool_connections >= 16
    assert config.s3 == {"addressing_style": "path"}


def test_aws_endpoint_keeps_botocore_addressing_and_region():
    settings = _settings(SOT_S3_ENDPOINT="", SOT_S3_REGION="eu-west-1")
    client = s3.make_client(settings)
    assert s3.client_config(settings).s3 is None
    assert client.meta.region_name == "eu-west-1"
    assert "amazonaws.com" in client.meta.endpoint_url


def test_transfer_config_from_settings():
    config = s3.transfer_config(_settings(SOT_S3_MULTIPART_THRESHOLD_MB=16,
                                          SOT_S3_MULTIPART_CHUNK_MB=4, SOT_S3_MAX_CONCURRENCY=6))
    assert config.multipart_threshold == 16 * s3.MB
    assert config.multipart_chunksize == 4 * s3.MB
    assert config.max_concurrency == 6


@pytest.mark.parametrize("changes,name", [
    ({"SOT_S3_ACCESS_KEY": "ak"}, "SOT_S3_SECRET_KEY"),
    ({"SOT_S3_SECRET_KEY": "sk"}, "SOT_S3_ACCESS_KEY"),
    ({"SOT_S3_RETRY_MODE": "fast"}, "SOT_S3_RETRY_MODE"),
    ({"SOT_S3_MAX_CONCURRENCY": 0}, "SOT_S3_MAX_CONCURRENCY"),
    ({"SOT_S3_READ_TIMEOUT": 0.0}, "SOT_S3_READ_TIMEOUT"),
    ({"SOT_S3_BUCKET": ""}, "SOT_S3_BUCKET"),
])
def test_unusable_settings_are_refused_by_name(changes, name):
    with pytest.raises(SettingsError, match=name):
        s3.make_client(_settings(**changes))
