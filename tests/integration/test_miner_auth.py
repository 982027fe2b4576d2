"""One miner worker (Flask test client) in front of the real API: real btauth/1, real Redis."""

import gzip
import time
from importlib import metadata

import pytest

from services.miner.app import create_app
from services.miner.auth import NONCE_PREFIX
from tests.miner_fixtures import (SAMPLE_DATE, StubUpstream, api, free_port,  # noqa: F401
                                  make_wallet, miner_settings, new_keypair, redis11, sign)

VERSION = metadata.version("aml-miner")  # both /health answers name the running code

PATH = f"/scores/alerts/{SAMPLE_DATE}"


@pytest.fixture
def validator():
    return new_keypair()


@pytest.fixture
def miner(tmp_path, api, redis11, validator):
    wallet = make_wallet(tmp_path)
    app = create_app(miner_settings(tmp_path, api.url,
                                    MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,)))
    yield app.test_client(), wallet.hotkey.ss58_address
    app.extensions["aml_miner"].close()


def refused(response, status, reason):
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"code", "name", "description", "reason"}
    assert (body["code"], body["reason"]) == (status, reason)
    return body


def test_an_allowed_validator_gets_the_api_bytes(miner, validator, api):
    client, me = miner
    response = client.get(PATH, headers=sign(validator, PATH, me))
    status, headers, body = api.get(PATH)
    assert (response.status_code, response.data) == (status, body) == (200, body)
    assert response.headers["ETag"] == headers["ETag"]
    assert response.headers["Content-Type"] == "application/json"
    assert len(response.get_json()["scores"]) == 300


def test_gzip_and_etag_pass_through_unchanged(miner, validator, api):
    client, me = miner
    gz = {"Accept-Encoding": "gzip"}
    response = client.get(PATH, headers=dict(sign(validator, PATH, me), **gz))
    status, headers, body = api.get(PATH, gz)
    assert response.headers["Content-Encoding"] == "gzip" == headers["Content-Encoding"]
    assert response.data == body  # the very bytes, not re-compressed
    assert gzip.decompress(response.data) == api.get(PATH)[2]
    for name in ("Content-Length", "ETag", "Vary"):
        assert response.headers[name] == headers[name], name
    conditional = dict(gz, **{"If-None-Match": headers["ETag"]})
    again = client.get(PATH, headers=dict(sign(validator, PATH, me), **conditional))
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == headers["ETag"] and "Content-Type" not in again.headers


@pytest.mark.parametrize("path", [PATH, "/scores/alerts/latest", "/dates"])
def test_answers_are_private_to_the_caller_and_304_still_works(miner, validator, api, path):
    client, me = miner
    api_cache = api.get(path)[1]["Cache-Control"]
    assert api_cache.startswith("public")  # the API's own answer may sit in shared caches
    response = client.get(path, headers=sign(validator, path, me))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == api_cache.replace("public", "private")
    etag = response.headers["ETag"]
    again = client.get(path, headers=dict(sign(validator, path, me), **{"If-None-Match": etag}))
    assert (again.status_code, again.headers["ETag"]) == (304, etag)
    assert again.headers["Cache-Control"].startswith("private")


def test_refusals_are_not_stored_by_any_cache(miner):
    client, _ = miner
    assert client.get(PATH).headers["Cache-Control"] == "no-store"


def test_only_content_headers_reach_the_api(tmp_path, redis11, validator):
    stub = StubUpstream().start()  # a recording upstream: the real API does not say what it got
    try:
        make_wallet(tmp_path)
        app = create_app(miner_settings(tmp_path, stub.url,
                                        MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,)))
        me = app.extensions["aml_miner"].hotkey
        headers = dict(sign(validator, PATH, me), **{"Accept-Encoding": "gzip", "Cookie": "x=1"})
        assert app.test_client().get(PATH, headers=headers).status_code == 200
    finally:
        stub.stop()
    _, sent = stub.seen[-1]
    assert sent.get("Accept-Encoding") == "gzip"
    assert not [h for h in sent if h.lower().startswith(("x-bittensor", "cookie"))]


@pytest.mark.parametrize("path", ["/dates", PATH, f"/rankings/alerts/{SAMPLE_DATE}",
                                  f"/scores/clusters/{SAMPLE_DATE}", f"/metadata/{SAMPLE_DATE}",
                                  "/scores/alerts/latest", f"{PATH}?limit=3&offset=2"])
def test_every_result_path_is_proxied_byte_for_byte(miner, validator, api, path):
    client, me = miner
    response = client.get(path, headers=sign(validator, path, me))
    assert (response.status_code, response.data) == (200, api.get(path)[2])


@pytest.mark.parametrize("path,status", [("/metadata/2000-01-01", 404),
                                         ("/scores/alerts/2025-13-45", 400),
                                         (f"{PATH}?limit=-1", 400)])
def test_api_errors_pass_through_unchanged(miner, validator, api, path, status):
    client, me = miner
    response = client.get(path, headers=sign(validator, path, me))
    assert (response.status_code, response.data) == (status, api.get(path)[2])
    assert response.get_json()["code"] == status


def test_unsigned_is_401(miner):
    client, _ = miner
    body = refused(client.get(PATH), 401, "unsigned")
    assert "bittensor.http_auth.sign" in body["description"]


@pytest.mark.parametrize("header,value", [("X-Bittensor-Nonce", "yesterday"),
                                          ("X-Bittensor-Signature", "0xnothex"),
                                          ("X-Bittensor-Version", "2"),
                                          ("X-Bittensor-Hotkey", "not-an-ss58")])
def test_malformed_headers_are_401(miner, validator, header, value):
    client, me = miner
    headers = dict(sign(validator, PATH, me), **{header: value})
    refused(client.get(PATH, headers=headers), 401, "malformed")


def test_a_tampered_body_is_401(miner, validator):
    client, me = miner
    response = client.get(PATH, headers=sign(validator, PATH, me), data=b'{"extra":1}')
    refused(response, 401, "bad_signature")


@pytest.mark.parametrize("sent", [f"/rankings/alerts/{SAMPLE_DATE}", f"{PATH}?limit=1"])
def test_a_tampered_path_or_query_is_401(miner, validator, sent):
    client, me = miner
    refused(client.get(sent, headers=sign(validator, PATH, me)), 401, "bad_signature")


def test_a_signature_by_another_key_is_401(miner, validator):
    client, me = miner
    headers = sign(new_keypair(), PATH, me)
    headers["X-Bittensor-Hotkey"] = validator.ss58_address  # claims to be the allowed validator
    refused(client.get(PATH, headers=headers), 401, "bad_signature")


def test_a_replay_is_401_and_the_nonce_is_kept_in_redis(miner, validator, redis11):
    client, me = miner
    headers = sign(validator, PATH, me)
    assert client.get(PATH, headers=headers).status_code == 200
    refused(client.get(PATH, headers=headers), 401, "replayed")
    key = f"{NONCE_PREFIX}{validator.ss58_address}:{headers['X-Bittensor-Nonce']}"
    assert 0 < redis11.ttl(key) <= 13


@pytest.mark.parametrize("offset_s", [-11.0, +3.0])
def test_a_stale_or_future_nonce_is_401(miner, validator, offset_s):
    client, me = miner
    nonce = time.time_ns() + int(offset_s * 1e9)
    refused(client.get(PATH, headers=sign(validator, PATH, me, nonce_ns=nonce)), 401, "stale")


def test_a_request_for_another_miner_is_401(miner, validator):
    client, _ = miner
    other_miner = new_keypair().ss58_address
    refused(client.get(PATH, headers=sign(validator, PATH, other_miner)), 401, "wrong_receiver")


def test_a_request_for_no_receiver_is_401(miner, validator):
    client, _ = miner
    refused(client.get(PATH, headers=sign(validator, PATH, None)), 401, "wrong_receiver")


def test_a_stranger_with_a_valid_signature_is_403(miner):
    client, me = miner
    refused(client.get(PATH, headers=sign(new_keypair(), PATH, me)), 403, "not_allowed")


def test_unknown_paths_and_methods_are_json_errors(miner, validator):
    client, me = miner
    assert client.get("/admin").get_json()["code"] == 404
    response = client.post(PATH, headers=sign(validator, PATH, me, method="POST"))
    assert response.status_code == 405 and response.get_json()["name"] == "Method Not Allowed"


def test_without_redis_the_miner_fails_closed_with_503(tmp_path, api, validator):
    # The production client (services.miner.store.connect), pointed at a port nobody serves.
    wallet = make_wallet(tmp_path)
    settings = miner_settings(tmp_path, api.url, MINER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                              MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,))
    client = create_app(settings).test_client()
    me = wallet.hotkey.ss58_address
    refused(client.get(PATH, headers=sign(validator, PATH, me)), 503, "replay_store_unavailable")
    health = client.get("/health")
    assert (health.status_code, health.get_json()) == (
        503, {"status": "unhealthy", "version": VERSION})
