"""The subnet's validator set: a snapshot of the metagraph, refreshed in the background."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

from shared.redact import ScrubSecrets, mask_text, mask_url, url_secrets

from .errors import ChainUnavailable, MinerConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Neuron:
    """What authorisation needs to know about one registered hotkey."""

    uid: int
    hotkey: str
    validator_permit: bool
    stake: float
    axon: Optional[str] = None


@dataclass(frozen=True)
class Snapshot:
    """The metagraph of one subnet at one block: parallel tuples indexed by uid."""

    hotkeys: tuple[str, ...]
    permits: tuple[bool, ...]
    stakes: tuple[float, ...]
    block: int
    axons: tuple[Optional[str], ...] = ()
    _uid_of: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not len(self.hotkeys) == len(self.permits) == len(self.stakes):
            raise ValueError(f"snapshot columns differ in length: {len(self.hotkeys)} hotkeys, "
                             f"{len(self.permits)} permits, {len(self.stakes)} stakes")
        object.__setattr__(self, "_uid_of", {hk: uid for uid, hk in enumerate(self.hotkeys)})

    def __len__(self) -> int:
        return len(self.hotkeys)

    def __contains__(self, hotkey: str) -> bool:
        return hotkey in self._uid_of

    def neuron(self, hotkey: str) -> Optional[Neuron]:
        """The registered neuron for a hotkey, or None; membership is checked before any index."""
        uid = self._uid_of.get(hotkey)
        if uid is None:
            return None
        axon = self.axons[uid] if uid < len(self.axons) else None
        return Neuron(uid, hotkey, bool(self.permits[uid]), float(self.stakes[uid]), axon)


class MetagraphSource(Protocol):
    """Where snapshots come from (the chain in production, a stub in tests)."""

    def fetch(self) -> Snapshot: ...


def snapshot_from_metagraph(metagraph) -> Snapshot:
    """Convert a `bittensor.Metagraph` to a Snapshot (stake = total_stake in the subnet's units)."""
    neurons = list(metagraph.neurons)
    return Snapshot(
        hotkeys=tuple(n.hotkey for n in neurons),
        permits=tuple(bool(n.validator_permit) for n in neurons),
        stakes=tuple(float(n.total_stake.amount) for n in neurons),
        block=int(metagraph.block),
        axons=tuple(n.axon for n in neurons),
    )


class ChainMetagraphSource:
    """Reads the metagraph of NETUID from SUBTENSOR_NETWORK with the bittensor SDK."""

    def __init__(self, network: str, netuid: int):
        import bittensor as bt

        self.network = network
        self.label = mask_url(network)  # what messages show: an endpoint's tokens are secrets
        self.netuid = netuid
        self._scrub = ScrubSecrets(url_secrets(network))
        try:
            self._subtensor = bt.Subtensor(network)
        except ValueError as exc:  # an unknown network name is a typo, not an outage
            raise MinerConfigError(f"SUBTENSOR_NETWORK={self.label!r}: {self.clean(exc)}") from exc

    def clean(self, exc: BaseException) -> str:
        """An SDK error's text with the endpoint's secrets masked (it may quote the URL)."""
        return self._scrub.scrub(mask_text(str(exc)))

    def fetch(self) -> Snapshot:
        """One metagraph read (no commitments: authorisation does not need them)."""
        from bittensor import BittensorError

        try:
            metagraph = self._subtensor.subnets.metagraph(self.netuid, commitments=False)
        except (BittensorError, OSError, TimeoutError) as exc:
            raise ChainUnavailable(f"{self.label}: {self.clean(exc)}") from None
        if metagraph is None:
            raise ChainUnavailable(f"{self.label}: netuid {self.netuid} does not exist")
        return snapshot_from_metagraph(metagraph)


@dataclass
class RefreshStatus:
    """What /health shows about the refresh loop."""

    last_success: Optional[float] = None
    last_attempt: Optional[float] = None
    last_error: Optional[str] = None
    failures: int = 0


class MetagraphRefresher:
    """Keeps the latest good snapshot; a background thread refreshes it every `interval` seconds."""

    def __init__(self, source: MetagraphSource, interval: float, name: str = "metagraph-refresh",
                 clock: Callable[[], float] = time.time):
        self.source = source
        self.interval = interval
        self.clock = clock
        self.status = RefreshStatus()
        self._snapshot: Optional[Snapshot] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def snapshot(self) -> Optional[Snapshot]:
        """The last good snapshot (None until the first successful refresh)."""
        with self._lock:
            return self._snapshot

    def start(self) -> "MetagraphRefresher":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def refresh_once(self) -> bool:
        """Fetch one snapshot; on failure keep the previous one and record why."""
        started = self.clock()
        self.status.last_attempt = started
        try:
            snapshot = self.source.fetch()
        except Exception as exc:  # the loop's boundary: any failure keeps the last snapshot
            self._record_failure(exc)
            return False
        with self._lock:
            self._snapshot = snapshot
        self.status.last_success = self.clock()
        self.status.last_error = None
        log.info("metagraph: %d neurons at block %d (%.2fs)", len(snapshot), snapshot.block,
                 self.status.last_success - started)
        return True

    def _record_failure(self, exc: Exception) -> None:
        self.status.failures += 1
        self.status.last_error = f"{type(exc).__name__}: {exc}"
        kept = self.snapshot
        log.error("metagraph refresh failed (%d so far): %s; keeping %s", self.status.failures,
                  self.status.last_error,
                  f"snapshot of block {kept.block}" if kept else "no snapshot (none loaded yet)")

    def _run(self) -> None:
        try:
            self.refresh_once()
            while not self._stop.wait(self.interval):
                self.refresh_once()
        except BaseException as exc:
            # Only something that escaped the per-refresh boundary gets here; say so loudly
            # and leave the thread dead so /health reports it.
            self.status.last_error = f"refresh thread died: {type(exc).__name__}: {exc}"
            log.critical("metagraph %s", self.status.last_error)
            raise

    def age(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds since the last successful refresh (None if never)."""
        if self.status.last_success is None:
            return None
        return (self.clock() if now is None else now) - self.status.last_success

    def wait_loaded(self, timeout: float) -> bool:
        """Poll until a snapshot is loaded or the deadline passes (tests and start-up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.snapshot is not None:
                return True
            time.sleep(0.01)
        return self.snapshot is not None
