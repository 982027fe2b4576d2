"""Authorisation: which authenticated hotkeys may read our results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .metagraph import Snapshot


@dataclass(frozen=True)
class Decision:
    """The outcome for one caller: allowed, or the status and reason for refusing."""

    allowed: bool
    reason: str
    description: str
    status: int = 200


@dataclass(frozen=True)
class Policy:
    """The rules: an allow-list, and (when a chain is used) registration, permit and stake."""

    allow_list: frozenset[str]
    netuid: int
    chain_enabled: bool
    require_permit: bool
    min_stake: float
    max_age: Optional[float] = None  # seconds a snapshot may be old before chain callers get 503


def _refuse(reason: str, description: str, status: int = 403) -> Decision:
    return Decision(False, reason, description, status)


class Authoriser:
    """Decides per hotkey from the allow-list and the latest snapshot (never the chain itself)."""

    def __init__(self, policy: Policy, snapshot: Callable[[], Optional[Snapshot]],
                 age: Callable[[], Optional[float]] = lambda: None):
        self.policy = policy
        self._snapshot = snapshot
        self._age = age

    def decide(self, hotkey: str) -> Decision:
        """Allow-list first; then membership in the metagraph BEFORE any per-uid lookup."""
        policy = self.policy
        if hotkey in policy.allow_list:
            return Decision(True, "allow_list", "hotkey is in MINER_VALIDATOR_HOTKEYS")
        if not policy.chain_enabled:
            return _refuse("not_allowed", "hotkey is not in this miner's validator allow-list")
        snapshot = self._snapshot()
        if snapshot is None:
            return _refuse("metagraph_unavailable",
                           "the validator set has not been loaded from the chain yet", 503)
        if (stale := self._staleness()) is not None:
            return stale
        neuron = snapshot.neuron(hotkey)
        if neuron is None:
            return _refuse("not_registered", f"hotkey is not registered on netuid {policy.netuid}")
        return self._check_neuron(neuron.validator_permit, neuron.stake)

    def _staleness(self) -> Optional[Decision]:
        """A snapshot older than the limit may admit a deregistered validator: refuse with 503."""
        age, limit = self._age(), self.policy.max_age
        if age is None or limit is None or age <= limit:
            return None
        return _refuse("metagraph_stale",
                       f"the validator set was last read from the chain {age:.0f}s ago, more than "
                       f"MINER_METAGRAPH_MAX_AGE={limit:g}s; retry later", 503)

    def _check_neuron(self, permit: bool, stake: float) -> Decision:
        policy = self.policy
        if policy.require_permit and not permit:
            return _refuse("no_validator_permit",
                           f"hotkey has no validator permit on netuid {policy.netuid}")
        if stake < policy.min_stake:
            return _refuse("stake_too_low",
                           f"hotkey stake {stake:g} is below the minimum {policy.min_stake:g}")
        return Decision(True, "metagraph", "registered validator")
