"""Start-up against the chain: decide how validators are authorised and publish our endpoint."""

from __future__ import annotations

import ipaddress
import logging
from typing import Callable, Optional, Protocol

import bittensor as bt

from shared.redact import mask_url
from shared.settings import Settings

from .errors import ChainUnavailable, MinerConfigError
from .metagraph import ChainMetagraphSource, Snapshot

log = logging.getLogger(__name__)


class ChainClient(Protocol):
    """What start-up needs from the chain: the metagraph and a way to publish ip:port."""

    def fetch(self) -> Snapshot: ...

    def publish(self, ip: str, port: int) -> None: ...


def chain_enabled(settings: Settings) -> bool:
    """An empty SUBTENSOR_NETWORK means: no chain at all, the allow-list alone decides."""
    return bool(settings.SUBTENSOR_NETWORK.strip())


def network_label(settings: Settings) -> str:
    """SUBTENSOR_NETWORK as it may be logged: an endpoint URL's userinfo and tokens masked."""
    return mask_url(settings.SUBTENSOR_NETWORK.strip())


def check_netuid(settings: Settings) -> None:
    """Chain mode admits the validators of one subnet: which one must be said, never assumed."""
    if not chain_enabled(settings):
        return
    if settings.NETUID is None:
        raise MinerConfigError(
            f"NETUID is not set: chain mode (SUBTENSOR_NETWORK={network_label(settings)}) admits "
            "the registered validators of one subnet and there is no default subnet; set NETUID "
            "to your subnet's netuid, or SUBTENSOR_NETWORK= (empty) to serve the allow-list only")
    if settings.NETUID < 0:
        raise MinerConfigError(f"NETUID={settings.NETUID} is not a subnet id (0 or more)")


def check_authorisable(settings: Settings) -> None:
    """Refuse a configuration under which no validator could ever be let in."""
    if not chain_enabled(settings) and not settings.MINER_VALIDATOR_HOTKEYS:
        raise MinerConfigError(
            "no way to authorise validators: set MINER_VALIDATOR_HOTKEYS (an ss58 allow-list) "
            "and/or SUBTENSOR_NETWORK + NETUID (registered validators on chain)")


def external_endpoint(settings: Settings) -> tuple[str, int]:
    """The public ip:port to publish (MINER_EXTERNAL_IP is required for that)."""
    raw = settings.MINER_EXTERNAL_IP.strip()
    if not raw:
        raise MinerConfigError(
            "MINER_EXTERNAL_IP is empty: set it to the public IP validators should call, "
            "or set MINER_PUBLISH_ENDPOINT=false and publish with `btcli misc axon set`")
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError as exc:
        raise MinerConfigError(f"MINER_EXTERNAL_IP={raw!r} is not an IP address") from exc
    port = settings.MINER_EXTERNAL_PORT or settings.MINER_PORT
    if not 0 < port < 65536:
        raise MinerConfigError(f"MINER_EXTERNAL_PORT/MINER_PORT={port} is not a TCP port")
    return str(ip), port


def serve_axon_intent(netuid: int, ip: str, port: int) -> bt.ServeAxon:
    """The SDK's ServeAxon intent (the `serve_axon` extrinsic, signed by the hotkey)."""
    return bt.ServeAxon(netuid=netuid, ip=ip, port=port)


class SubtensorChain(ChainMetagraphSource):
    """The real chain: metagraph reads plus ServeAxon, signed with the miner's wallet."""

    def __init__(self, settings: Settings, wallet: bt.Wallet):
        super().__init__(settings.SUBTENSOR_NETWORK, settings.NETUID)
        self.wallet = wallet

    def publish(self, ip: str, port: int) -> None:
        intent = serve_axon_intent(self.netuid, ip, port)
        try:
            result = self._subtensor.execute(intent, self.wallet)
        except (bt.BittensorError, OSError) as exc:
            raise ChainUnavailable(f"{intent.summary()}: {self.clean(exc)}") from None
        if not result.success:
            raise ChainUnavailable(f"{intent.summary()}: {result.message}")


def prepare_start(settings: Settings, wallet,
                  chain_factory: Optional[Callable[[Settings, object], ChainClient]] = None) -> str:
    """Run the start-up checks; returns the serving mode, raises MinerConfigError to refuse."""
    check_authorisable(settings)
    allow = len(settings.MINER_VALIDATOR_HOTKEYS)
    if not chain_enabled(settings):
        log.warning("no chain configured (SUBTENSOR_NETWORK is empty): serving the allow-list "
                    "only (%d hotkeys); endpoint not published", allow)
        return "allow-list"
    chain_factory = chain_factory or SubtensorChain
    try:
        chain = chain_factory(settings, wallet)
        snapshot = chain.fetch()
    except ChainUnavailable as exc:
        return _chain_down(settings, exc)
    _publish_if_wanted(settings, bt.public_view(wallet, "hotkey").ss58_address, chain, snapshot)
    return "chain"


def _chain_down(settings: Settings, exc: ChainUnavailable) -> str:
    allow = len(settings.MINER_VALIDATOR_HOTKEYS)
    if not allow:
        raise MinerConfigError(
            f"chain {network_label(settings)!r} is unreachable ({exc}) and "
            "MINER_VALIDATOR_HOTKEYS is empty, so no validator could be authorised; "
            "fix SUBTENSOR_NETWORK or set an allow-list") from exc
    log.warning("chain %s is UNREACHABLE (%s): starting anyway with the allow-list only "
                "(%d hotkeys); endpoint NOT published; the metagraph is retried every %ds",
                network_label(settings), exc, allow, settings.MINER_METAGRAPH_REFRESH_SECONDS)
    return "allow-list (chain unreachable)"


def _publish_if_wanted(settings: Settings, hotkey: str, chain: ChainClient,
                       snapshot: Snapshot) -> None:
    neuron = snapshot.neuron(hotkey)
    if neuron is None:
        log.warning("miner hotkey %s is NOT registered on netuid %d: validators on chain cannot "
                    "find this miner and the endpoint cannot be published", hotkey, settings.NETUID)
        return
    if not settings.MINER_PUBLISH_ENDPOINT:
        log.info("not publishing the endpoint (MINER_PUBLISH_ENDPOINT=false); on chain: %s",
                 neuron.axon or "nothing")
        return
    ip, port = external_endpoint(settings)
    wanted = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    if neuron.axon == wanted:
        log.info("endpoint %s already published for uid %d on netuid %d", wanted, neuron.uid,
                 settings.NETUID)
        return
    try:
        chain.publish(ip, port)
    except ChainUnavailable as exc:
        log.error("publishing endpoint %s on netuid %d FAILED: %s; serving anyway (publish it "
                  "with `btcli misc axon set` if this persists)", wanted, settings.NETUID, exc)
        return
    log.info("published endpoint %s for uid %d on netuid %d (was %s)", wanted, neuron.uid,
             settings.NETUID, neuron.axon or "unset")
