"""The miner's own hotkey comes from its wallet; a missing one fails with the variable names."""

import pytest

from services.miner.errors import MinerConfigError
from services.miner.identity import load_wallet, miner_hotkey
from shared.settings import Settings
from tests.miner_fixtures import make_wallet


def test_the_hotkey_is_read_from_a_btcli_style_wallet(tmp_path):
    wallet = make_wallet(tmp_path, name="op", hotkey="hk1")
    settings = Settings.from_env({"BT_WALLET_NAME": "op", "BT_WALLET_HOTKEY": "hk1",
                                  "BT_WALLET_PATH": str(tmp_path)})
    assert miner_hotkey(settings) == wallet.hotkey.ss58_address
    assert load_wallet(settings).hotkey.ss58_address == wallet.hotkey.ss58_address


@pytest.mark.parametrize("name,hotkey", [("missing", "default"), ("op", "missing")])
def test_a_missing_hotkey_names_the_three_variables(tmp_path, name, hotkey):
    make_wallet(tmp_path, name="op", hotkey="default")
    settings = Settings.from_env({}).replace(BT_WALLET_NAME=name, BT_WALLET_HOTKEY=hotkey,
                                             BT_WALLET_PATH=str(tmp_path))
    with pytest.raises(MinerConfigError) as info:
        miner_hotkey(settings)
    message = str(info.value)
    assert "BT_WALLET_NAME, BT_WALLET_HOTKEY, BT_WALLET_PATH" in message
    assert repr(name) in message and repr(hotkey) in message


def test_a_corrupt_hotkey_file_is_a_configuration_error(tmp_path):
    path = tmp_path / "op" / "hotkeys"
    path.mkdir(parents=True)
    (path / "default").write_text("not a keyfile")
    settings = Settings.from_env({}).replace(BT_WALLET_NAME="op", BT_WALLET_PATH=str(tmp_path))
    with pytest.raises(MinerConfigError, match="BT_WALLET_NAME"):
        miner_hotkey(settings)


def test_only_the_public_hotkey_file_is_needed_to_verify(tmp_path):
    wallet = make_wallet(tmp_path, name="op")
    (tmp_path / "op" / "hotkeys" / "default").unlink()  # keep only defaultpub.txt
    settings = Settings.from_env({}).replace(BT_WALLET_NAME="op", BT_WALLET_PATH=str(tmp_path))
    assert miner_hotkey(settings) == wallet.hotkey.ss58_address


def test_the_hotkey_file_alone_is_enough(tmp_path):
    """What compose mounts into the miner: hotkeys/<name> only (no pub file, no coldkey)."""
    wallet = make_wallet(tmp_path / "full", name="op", hotkey="hk1")
    only = tmp_path / "only" / "op" / "hotkeys"
    only.mkdir(parents=True)
    (only / "hk1").write_bytes((tmp_path / "full" / "op" / "hotkeys" / "hk1").read_bytes())
    settings = Settings.from_env({"BT_WALLET_NAME": "op", "BT_WALLET_HOTKEY": "hk1",
                                  "BT_WALLET_PATH": str(tmp_path / "only")})
    assert miner_hotkey(settings) == wallet.hotkey.ss58_address
    assert load_wallet(settings).hotkey.sign(b"nonce")
    assert sorted(p.name for p in (tmp_path / "only").rglob("*")) == ["hk1", "hotkeys", "op"]
