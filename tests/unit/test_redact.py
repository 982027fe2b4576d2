"""Masking secrets in URLs, settings and log records."""

import io
import logging

import pytest

from shared.redact import (MASK, ScrubSecrets, mask_setting, mask_text, mask_url,
                           settings_secrets, url_secrets)
from shared.settings import Settings


@pytest.mark.parametrize("url,masked", [
    ("ws://user:TOKEN@host:9944", "ws://***@host:9944"),
    ("wss://rpc.example/ws?apikey=abc123&x=1", "wss://rpc.example/ws?apikey=***&x=***"),
    ("https://mainnet.example.io/v3/9aa3d95b3bc440fa88ea12eaa4456161",
     "https://mainnet.example.io/v3/***"),
    ("ws://127.0.0.1:9944", "ws://127.0.0.1:9944"),
    ("redis://:pw@[::1]:6379/0", "redis://***@[::1]:6379/0"),
    ("finney", "finney"),
    ("", ""),
])
def test_a_url_keeps_scheme_host_and_port_and_loses_its_secrets(url, masked):
    assert mask_url(url) == masked


def test_a_url_that_cannot_be_parsed_is_hidden_whole():
    assert mask_url("http://host:notaport/") == MASK


def test_urls_inside_free_text_are_masked():
    text = "could not connect to wss://a:b0b5ecret@rpc.example:443/ws?key=k1: refused"
    assert mask_text(text) == "could not connect to wss://***@rpc.example:443/ws?key=***: refused"


@pytest.mark.parametrize("name,value,shown", [
    ("SOT_S3_SECRET_KEY", "abc", MASK), ("SOT_S3_ACCESS_KEY", "AKIA1", MASK),
    ("SOT_S3_SECRET_KEY", "", ""), ("SUBTENSOR_NETWORK", "ws://u:p@h:1", "ws://***@h:1"),
    ("NETWORK", "bitcoin", "bitcoin"), ("MINER_VALIDATOR_HOTKEYS", ("5A", "5B"), "5A,5B"),
])
def test_settings_are_shown_with_secrets_masked(name, value, shown):
    assert mask_setting(name, value) == shown


def test_the_secrets_of_a_settings_object_are_collected():
    settings = Settings.from_env({}).replace(
        SOT_S3_ACCESS_KEY="AKIAEXAMPLE", SOT_S3_SECRET_KEY="wJalrXUtnFEMI",
        SUBTENSOR_NETWORK="ws://ops:hunter2@h:1/?apikey=KEY0123",
        MINER_REDIS_URL="redis://:redispass@r:6379/0")
    assert set(settings_secrets(settings)) >= {"AKIAEXAMPLE", "wJalrXUtnFEMI", "ops", "hunter2",
                                               "KEY0123", "redispass"}
    assert url_secrets("ws://h:1") == []


def test_the_log_filter_scrubs_messages_arguments_and_tracebacks():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ScrubSecrets(["hunter2SECRET", "ab"]))  # too short to scrub safely
    logger = logging.getLogger("test_redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("connect to %s failed", "ws://ops:hunter2SECRET@h:1")
        try:
            raise ConnectionError("refused by ws://ops:hunter2SECRET@h:1 (ab)")
        except ConnectionError:
            logger.exception("refresh failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "hunter2SECRET" not in text and text.count(MASK) >= 2
    assert "ConnectionError" in text and "(ab)" in text
