"""The miner's own Redis as production builds it (services.miner.store.connect): fails fast."""

import socket
import threading

import pytest

from services.miner import store
from services.miner.app import create_app
from tests.miner_fixtures import (REDIS_URL, StubUpstream, make_wallet, miner_settings,  # noqa: F401
                                  new_keypair, redis11, sign)

PATH = "/dates"


class HungRedis:
    """Accepts connections and never answers, like a Redis stuck on a full disk or a SIGSTOP."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def upstream():
    stub = StubUpstream().start()
    yield stub
    stub.stop()


def test_the_production_client_has_short_timeouts_and_one_retry_without_backoff(tmp_path):
    settings = miner_settings(tmp_path, "http://127.0.0.1:1", MINER_REDIS_TIMEOUT=0.25)
    client = store.connect(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.25
    connection = client.connection_pool.make_connection()
    assert connection.retry.get_retries() == store.RETRIES == 1
    assert client.ping()  # and it reaches the configured Redis


def test_a_hung_redis_is_a_503_after_at_most_two_short_tries(tmp_path, upstream):
    hung = HungRedis()
    try:
        validator = new_keypair()
        make_wallet(tmp_path)
        settings = miner_settings(tmp_path, upstream.url, MINER_REDIS_URL=hung.url,
                                  MINER_REDIS_TIMEOUT=0.2,
                                  MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,))
        app = create_app(settings)
        me = app.extensions["aml_miner"].hotkey
        response = app.test_client().get(PATH, headers=sign(validator, PATH, me))
        assert response.status_code == 503
        assert response.get_json()["reason"] == "replay_store_unavailable"
        # redis-py's default would reconnect with exponential backoff up to 10 times.
        assert 1 <= len(hung.accepted) <= 1 + store.RETRIES
        assert upstream.seen == []  # nothing was proxied
    finally:
        hung.close()


def test_the_miner_uses_its_own_redis_not_the_queues(tmp_path, upstream, redis11):
    validator = new_keypair()
    make_wallet(tmp_path)
    # REDIS_URL (the job queue's) points nowhere: the miner must not need it at all.
    settings = miner_settings(tmp_path, upstream.url, REDIS_URL="redis://127.0.0.1:1/0",
                              MINER_REDIS_URL=REDIS_URL,
                              MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,))
    app = create_app(settings)
    me = app.extensions["aml_miner"].hotkey
    headers = sign(validator, PATH, me)
    assert app.test_client().get(PATH, headers=headers).status_code == 200
    assert redis11.keys("aml:miner:nonce:*")
