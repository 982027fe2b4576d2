"""Start-up against the chain: who can be authorised, and publishing our endpoint (stub chain)."""

import logging

import bittensor as bt
import pytest

from services.miner.chain import (check_authorisable, external_endpoint, prepare_start,
                                  serve_axon_intent)
from services.miner.errors import ChainUnavailable, MinerConfigError
from shared.settings import Settings
from tests.miner_fixtures import make_wallet, snapshot_of


class StubChain:
    """Stands in for the chain at start-up: a snapshot (or an outage) and a publish recorder."""

    def __init__(self, snapshot=None, down=False, publish_error=None):
        self.snapshot, self.down, self.publish_error = snapshot, down, publish_error
        self.published = []

    def fetch(self):
        if self.down:
            raise ChainUnavailable("ws://node: connection refused")
        return self.snapshot

    def publish(self, ip, port):
        if self.publish_error:
            raise ChainUnavailable(self.publish_error)
        self.published.append((ip, port))


@pytest.fixture
def wallet(tmp_path):
    """The miner's wallet as the miner loads it (bittensor's own Wallet over btcli-style files)."""
    make_wallet(tmp_path)
    return bt.Wallet(name="miner", hotkey="default", path=str(tmp_path))


def chain_settings(**changes):
    base = Settings.from_env({}).replace(SUBTENSOR_NETWORK="ws://127.0.0.1:9944", NETUID=7,
                                         MINER_PORT=8091, MINER_EXTERNAL_IP="203.0.113.7")
    return base.replace(**changes)


def start(settings, wallet, chain):
    return prepare_start(settings, wallet, chain_factory=lambda s, w: chain)


def registered(wallet, axon=None):
    graph = snapshot_of(("5Other", True, 1.0), (wallet.hotkey.ss58_address, False, 0.0))
    return type(graph)(graph.hotkeys, graph.permits, graph.stakes, graph.block, (None, axon))


def test_neither_allow_list_nor_chain_refuses_to_start_naming_both():
    with pytest.raises(MinerConfigError, match="MINER_VALIDATOR_HOTKEYS.*SUBTENSOR_NETWORK"):
        check_authorisable(Settings.from_env({}).replace(SUBTENSOR_NETWORK=""))


def test_allow_list_without_chain_starts_and_says_so(wallet, caplog):
    settings = chain_settings(SUBTENSOR_NETWORK="", MINER_VALIDATOR_HOTKEYS=("5V",))
    with caplog.at_level(logging.WARNING):
        assert start(settings, wallet, StubChain(down=True)) == "allow-list"
    assert "allow-list only (1 hotkeys)" in caplog.text


def test_unreachable_chain_with_allow_list_starts_anyway_and_says_so(wallet, caplog):
    chain = StubChain(down=True)
    with caplog.at_level(logging.WARNING):
        mode = start(chain_settings(MINER_VALIDATOR_HOTKEYS=("5V",)), wallet, chain)
    assert mode == "allow-list (chain unreachable)" and chain.published == []
    assert "UNREACHABLE" in caplog.text and "NOT published" in caplog.text


def test_unreachable_chain_without_allow_list_refuses_to_start(wallet):
    with pytest.raises(MinerConfigError, match="unreachable.*MINER_VALIDATOR_HOTKEYS is empty"):
        start(chain_settings(), wallet, StubChain(down=True))


def test_a_registered_miner_publishes_its_endpoint(wallet):
    chain = StubChain(registered(wallet))
    assert start(chain_settings(), wallet, chain) == "chain"
    assert chain.published == [("203.0.113.7", 8091)]


def test_the_external_port_can_differ_from_the_bind_port(wallet):
    chain = StubChain(registered(wallet))
    start(chain_settings(MINER_EXTERNAL_PORT=443), wallet, chain)
    assert chain.published == [("203.0.113.7", 443)]


def test_an_endpoint_already_on_chain_is_not_republished(wallet):
    chain = StubChain(registered(wallet, axon="203.0.113.7:8091"))
    start(chain_settings(), wallet, chain)
    assert chain.published == []


def test_publishing_can_be_left_to_btcli(wallet):
    chain = StubChain(registered(wallet))
    start(chain_settings(MINER_PUBLISH_ENDPOINT=False, MINER_EXTERNAL_IP=""), wallet, chain)
    assert chain.published == []


def test_an_unregistered_miner_cannot_publish_and_says_so(wallet, caplog):
    chain = StubChain(snapshot_of(("5Other", True, 1.0)))
    with caplog.at_level(logging.WARNING):
        assert start(chain_settings(), wallet, chain) == "chain"
    assert chain.published == [] and "NOT registered on netuid 7" in caplog.text


def test_a_failed_publish_is_logged_and_serving_goes_on(wallet, caplog):
    chain = StubChain(registered(wallet), publish_error="ServingRateLimitExceeded")
    with caplog.at_level(logging.ERROR):
        assert start(chain_settings(), wallet, chain) == "chain"
    assert "FAILED: ServingRateLimitExceeded" in caplog.text


@pytest.mark.parametrize("ip,message", [("", "MINER_EXTERNAL_IP is empty"),
                                        ("my-host", "'my-host' is not an IP address")])
def test_publishing_needs_a_valid_external_ip(wallet, ip, message):
    with pytest.raises(MinerConfigError, match=message):
        start(chain_settings(MINER_EXTERNAL_IP=ip), wallet, StubChain(registered(wallet)))


def test_external_endpoint_defaults_to_the_miner_port():
    assert external_endpoint(chain_settings(MINER_PORT=9000)) == ("203.0.113.7", 9000)


def test_the_publish_is_the_sdks_serve_axon_intent():
    intent = serve_axon_intent(7, "203.0.113.7", 8091)
    assert isinstance(intent, bt.ServeAxon)
    assert (intent.op, intent.signer, intent.netuid, intent.port) == ("serve_axon", "hotkey", 7, 8091)
    assert intent.summary() == "serve axon 203.0.113.7:8091 on netuid 7"


def test_the_real_sdk_path_maps_an_unreachable_chain_to_chain_unavailable(wallet):
    from services.miner.chain import SubtensorChain
    from tests.miner_fixtures import free_port

    settings = chain_settings(SUBTENSOR_NETWORK=f"ws://127.0.0.1:{free_port()}")
    chain = SubtensorChain(settings, wallet)
    with pytest.raises(ChainUnavailable, match="serve axon 203.0.113.7:8091 on netuid 7"):
        chain.publish("203.0.113.7", 8091)
    with pytest.raises(ChainUnavailable):
        chain.fetch()
    with pytest.raises(MinerConfigError, match="MINER_VALIDATOR_HOTKEYS is empty"):
        prepare_start(settings, wallet)  # the default factory: bittensor's own Subtensor
