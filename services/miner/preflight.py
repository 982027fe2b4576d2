"""Pre-flight checks of the miner: its hotkey loads, its settings work, and (in chain mode)
NETUID is set and the hotkey is registered on that subnet."""

from __future__ import annotations

from typing import Callable, Iterator, Optional

from shared.checks import Check
from shared.settings import Settings

from . import config
from .chain import chain_enabled, network_label
from .errors import ChainUnavailable, MinerConfigError
from .identity import hotkey_address, load_wallet
from .metagraph import ChainMetagraphSource, MetagraphSource

SourceFactory = Callable[[Settings], MetagraphSource]


def _chain_source(settings: Settings) -> MetagraphSource:
    return ChainMetagraphSource(settings.SUBTENSOR_NETWORK, settings.NETUID)


def checks(settings: Settings, source_factory: Optional[SourceFactory] = None) -> Iterator[Check]:
    """Each check in the order a first start meets them; chain checks only in chain mode."""
    try:
        hotkey = hotkey_address(load_wallet(settings), settings)
    except MinerConfigError as exc:
        yield Check("miner hotkey", False, str(exc))
        hotkey = None
    else:
        yield Check("miner hotkey", True, f"{hotkey} (wallet {settings.BT_WALLET_NAME!r}, hotkey "
                                          f"{settings.BT_WALLET_HOTKEY!r})")
    try:
        config.check(settings)
    except MinerConfigError as exc:
        yield Check("miner settings", False, str(exc))
        return
    mode = (f"chain {network_label(settings)} netuid {settings.NETUID}"
            if chain_enabled(settings) else "no chain")
    yield Check("miner settings", True, f"{mode}, allow-list of "
                                        f"{len(settings.MINER_VALIDATOR_HOTKEYS)} hotkeys")
    if chain_enabled(settings):
        yield _registered(settings, hotkey, source_factory or _chain_source)


def _registered(settings: Settings, hotkey: Optional[str], factory: SourceFactory) -> Check:
    name = f"registered on netuid {settings.NETUID}"
    try:
        snapshot = factory(settings).fetch()
    except (ChainUnavailable, MinerConfigError) as exc:
        return Check(name, False, f"cannot read the metagraph: {exc}")
    if hotkey is None:
        return Check(name, False, "unknown: the hotkey did not load (see above)")
    neuron = snapshot.neuron(hotkey)
    if neuron is None:
        return Check(name, False, f"{hotkey} is not among the {len(snapshot)} neurons at block "
                                  f"{snapshot.block}; register it with `btcli subnets register "
                                  f"--netuid {settings.NETUID}`")
    return Check(name, True, f"uid {neuron.uid} at block {snapshot.block}, endpoint on chain: "
                             f"{neuron.axon or 'none yet'}")
