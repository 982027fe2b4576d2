"""The proxy's upstream connections: an answer the validator stops reading is closed, not pooled."""

import os

import pytest

from services.miner.app import create_app
from services.miner.proxy import private_cache_control
from tests.miner_fixtures import (StubUpstream, make_wallet, miner_settings, new_keypair,  # noqa: F401
                                  redis11, sign, wait_for)

BIG = "/scores/alerts/2025-10-27"


@pytest.fixture
def big_upstream():
    stub = StubUpstream()
    # Far more than the socket buffers hold: the API is still writing when the caller leaves.
    stub.docs[BIG] = os.urandom(8 * 1024 * 1024)
    stub.start()
    yield stub
    stub.stop()


def test_an_answer_not_read_to_the_end_closes_the_upstream_connection(tmp_path, redis11,
                                                                     big_upstream):
    validator = new_keypair()
    make_wallet(tmp_path)
    app = create_app(miner_settings(tmp_path, big_upstream.url,
                                    MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,)))
    me = app.extensions["aml_miner"].hotkey
    client = app.test_client()
    response = client.get(BIG, headers=sign(validator, BIG, me), buffered=False)
    assert response.status_code == 200 and len(next(iter(response.response))) > 0
    response.close()  # the validator went away after the first chunk
    # The API sees its connection closed (its write fails) instead of blocking on a pooled one.
    wait_for(lambda: BIG in big_upstream.broken, 30, "the API to see the connection closed")
    path = "/dates"
    after = client.get(path, headers=sign(validator, path, me))
    assert (after.status_code, after.data) == (200, big_upstream.docs[path])
    app.extensions["aml_miner"].close()


@pytest.mark.parametrize("upstream,private", [
    ("public, max-age=86400, immutable", "private, max-age=86400, immutable"),
    ("public, no-cache", "private, no-cache"),
    ("public, s-maxage=60, max-age=10", "private, max-age=10"),
    (None, "private, no-cache"),
    ("no-store", "private, no-store"),
])
def test_cache_control_is_made_private(upstream, private):
    assert private_cache_control(upstream) == private
