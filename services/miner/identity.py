"""The miner's own identity: its wallet and the hotkey validators address requests to."""

from __future__ import annotations

import bittensor as bt
from bittensor.keyfiles import KeyfileError

from shared.settings import Settings

from .errors import MinerConfigError

WALLET_VARIABLES = "BT_WALLET_NAME, BT_WALLET_HOTKEY, BT_WALLET_PATH"


def load_wallet(settings: Settings) -> bt.Wallet:
    """The wallet named by the settings, its hotkey checked (failing with the variable names)."""
    wallet = bt.Wallet(name=settings.BT_WALLET_NAME, hotkey=settings.BT_WALLET_HOTKEY,
                       path=settings.BT_WALLET_PATH)
    hotkey_address(wallet, settings)
    return wallet


def hotkey_address(wallet: bt.Wallet, settings: Settings) -> str:
    """The hotkey's ss58 address from its public file, so nothing is unlocked just to verify."""
    try:
        return bt.public_view(wallet, "hotkey").ss58_address
    except (OSError, KeyfileError, ValueError) as exc:
        raise MinerConfigError(
            f"cannot load the miner's hotkey from wallet {settings.BT_WALLET_NAME!r} "
            f"hotkey {settings.BT_WALLET_HOTKEY!r} under {settings.BT_WALLET_PATH!r}: {exc}. "
            f"Check {WALLET_VARIABLES} (create one with `btcli wallet new-hotkey`)."
        ) from exc


def miner_hotkey(settings: Settings) -> str:
    """The ss58 address of the miner's hotkey (the receiver every request must be signed for)."""
    return hotkey_address(load_wallet(settings), settings)
