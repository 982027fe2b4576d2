"""Metagraph snapshots and the background refresher (the chain is a stub; nothing else is)."""

import logging
import socket

import bittensor as bt
import pytest

from services.miner.errors import ChainUnavailable, MinerConfigError
from services.miner.metagraph import (ChainMetagraphSource, MetagraphRefresher, Snapshot,
                                      snapshot_from_metagraph)
from tests.miner_fixtures import StubSource, snapshot_of, wait_for


class Fatal(BaseException):
    """Something no per-refresh handler catches (what would kill a naive loop)."""


def test_snapshot_lookups_check_membership_first():
    graph = snapshot_of(("5A", True, 10.0), ("5B", False, 2.0))
    assert graph.neuron("5B").uid == 1 and graph.neuron("5B").validator_permit is False
    assert graph.neuron("5Z") is None and "5Z" not in graph and len(graph) == 2


def test_snapshot_columns_must_line_up():
    with pytest.raises(ValueError, match="2 hotkeys, 1 permits"):
        Snapshot(hotkeys=("5A", "5B"), permits=(True,), stakes=(1.0, 2.0), block=1)


def _neuron(uid, hotkey, permit, stake_rao, axon=None):
    zero = bt.Balance.from_rao(0, 7)
    return bt.MetagraphNeuron(
        uid=uid, hotkey=hotkey, coldkey="5Cold", active=True, validator_permit=permit,
        last_update=0, block_at_registration=0, rank=0.0, trust=0.0, consensus=0.0, incentive=0.0,
        dividends=0.0, pruning_score=0.0, emission=zero, alpha_stake=zero,
        tao_stake=bt.Balance.from_rao(0), total_stake=bt.Balance.from_rao(stake_rao, 7),
        axon=axon, identity=None, commitment=None)


def test_a_real_sdk_metagraph_converts_to_a_snapshot():
    neurons = [_neuron(0, "5A", True, 1_500 * 10**9, "1.2.3.4:8091"), _neuron(1, "5B", False, 0)]
    metagraph = bt.Metagraph(
        netuid=7, mechid=0, name="aml", symbol="a", block=4242, tempo=360, last_step=0,
        blocks_since_last_step=0, owner_hotkey="5O", owner_coldkey="5O", network_registered_at=0,
        num_uids=2, max_uids=256, price=None, moving_price=None, identity=None, neurons=neurons,
        commitments={}, unregistered_commitments={}, raw={})
    snap = snapshot_from_metagraph(metagraph)
    assert snap.hotkeys == ("5A", "5B") and snap.permits == (True, False)
    assert snap.stakes == (1500.0, 0.0) and snap.block == 4242
    assert snap.neuron("5A").axon == "1.2.3.4:8091"


def test_an_unknown_network_name_is_a_configuration_error():
    with pytest.raises(MinerConfigError, match="SUBTENSOR_NETWORK='finny'"):
        ChainMetagraphSource("finny", 7)


def test_an_unreachable_chain_raises_chain_unavailable():
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = ChainMetagraphSource(f"ws://127.0.0.1:{port}", 7)
    with pytest.raises(ChainUnavailable, match=f"127.0.0.1:{port}"):
        source.fetch()


def test_a_failed_refresh_keeps_the_last_good_snapshot_and_logs_it(caplog):
    good = snapshot_of(("5A", True, 10.0), block=9)
    source = StubSource(good)
    refresher = MetagraphRefresher(source, interval=3600)
    assert refresher.refresh_once() and refresher.snapshot is good
    source.error = ConnectionError("node went away")
    with caplog.at_level(logging.ERROR, logger="services.miner.metagraph"):
        assert refresher.refresh_once() is False
    assert refresher.snapshot is good
    assert refresher.status.failures == 1
    assert refresher.status.last_error == "ConnectionError: node went away"
    assert "keeping snapshot of block 9" in caplog.text


def test_the_background_loop_keeps_going_through_failures():
    source = StubSource(snapshot_of(("5A", True, 10.0), block=1))
    refresher = MetagraphRefresher(source, interval=0.02).start()
    try:
        assert refresher.wait_loaded(5)
        source.error = ConnectionError("down")
        wait_for(lambda: refresher.status.failures >= 3, 5, "three failed refreshes")
        assert refresher.alive() and refresher.snapshot.block == 1
        source.error, source.snapshot = None, snapshot_of(("5B", True, 1.0), block=2)
        wait_for(lambda: refresher.snapshot.block == 2, 5, "recovery")
        assert refresher.status.last_error is None
    finally:
        refresher.stop()
    assert not refresher.alive()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_loop_is_visible_not_silent():
    source = StubSource(snapshot_of(("5A", True, 10.0)))
    source.error = Fatal("bug in the loop")
    refresher = MetagraphRefresher(source, interval=0.02).start()
    wait_for(lambda: not refresher.alive(), 5, "the refresh thread to die")
    assert refresher.status.last_error == "refresh thread died: Fatal: bug in the loop"
    assert refresher.age() is None
