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


def _refuse(reason: str, description: str, status: int = 403) -> Decision:
    return Decision(False, reason, description, status)


class Authoriser:
    """Decides per hotkey from the allow-list and the latest snapshot (never the chain itself)."""

    def __init__(self, policy: Policy, snapshot: Callable[[], Optional[Snapshot]]):
        self.policy = policy
        self._snapshot = snapshot

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
        neuron = snapshot.neuron(hotkey)
        if neuron is None:
            return _refuse("not_registered", f"hotkey is not registered on netuid {policy.netuid}")
        return self._check_neuron(neuron.validator_permit, neuron.stake)

    def _check_neuron(self, permit: bool, stake: float) -> Decision:
        policy = self.policy
        if policy.require_permit and not permit:
            return _refuse("no_validator_permit",
                           f"hotkey has no validator permit on netuid {policy.netuid}")
        if stake < policy.min_stake:
            return _refuse("stake_too_low",
                           f"hotkey stake {stake:g} is below the minimum {policy.min_stake:g}")
        return Decision(True, "metagraph", "registered validator")
