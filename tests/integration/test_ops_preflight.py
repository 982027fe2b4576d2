"""`aml-miner config` and `aml-miner preflight`: real S3 (moto), real wallets, an injected chain."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.miner.errors import ChainUnavailable
from services.miner.preflight import checks as miner_checks
from shared.settings import Settings
from tests.conftest import REPO
from tests.miner_fixtures import StubSource, make_wallet, settings_env, snapshot_of
from tests.s3_fixtures import (DATE, fake_batch, moto_endpoint, proxy, s3_proxy,  # noqa: F401
                               sot)


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOT_", "AWS_", "MINER_",
                                                                      "BT_", "SUBTENSOR", "NETUID"))}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO,
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def _miner_settings(tmp_path, **changes) -> Settings:
    values = {"BT_WALLET_NAME": "miner", "BT_WALLET_HOTKEY": "default",
              "BT_WALLET_PATH": str(tmp_path), "SUBTENSOR_NETWORK": "ws://127.0.0.1:1",
              "NETUID": 7, **changes}
    return Settings.from_env({}).replace(**values)


def _by_name(results):
    return {c.name: c for c in results}


# --- the miner's checks, with the chain injected ------------------------------------------------

def test_a_registered_hotkey_passes_every_miner_check(tmp_path):
    me = make_wallet(tmp_path).hotkey.ss58_address
    chain = StubSource(snapshot_of(("5Other", True, 1.0), (me, False, 0.0), block=4321))
    results = _by_name(miner_checks(_miner_settings(tmp_path), lambda s: chain))
    assert all(c.ok for c in results.values()), results
    assert results["registered on netuid 7"].detail.startswith("uid 1 at block 4321")


def test_an_unregistered_hotkey_fails_saying_how_to_register(tmp_path):
    make_wallet(tmp_path)
    chain = StubSource(snapshot_of(("5Other", True, 1.0), block=9))
    check = _by_name(miner_checks(_miner_settings(tmp_path), lambda s: chain))[
        "registered on netuid 7"]
    assert not check.ok and "btcli subnets register --netuid 7" in check.detail


def test_an_unreachable_chain_fails_the_registration_check(tmp_path):
    make_wallet(tmp_path)
    chain = StubSource()
    chain.error = ChainUnavailable("ws://127.0.0.1:1: connection refused")
    check = _by_name(miner_checks(_miner_settings(tmp_path), lambda s: chain))[
        "registered on netuid 7"]
    assert not check.ok and "cannot read the metagraph" in check.detail


def test_chain_mode_without_netuid_fails_naming_it_and_reads_no_chain(tmp_path):
    make_wallet(tmp_path)
    chain = StubSource()
    results = list(miner_checks(_miner_settings(tmp_path, NETUID=None), lambda s: chain))
    assert [(c.name, c.ok) for c in results] == [("miner hotkey", True), ("miner settings", False)]
    assert results[1].detail.startswith("NETUID is not set") and chain.calls == 0


def test_a_missing_hotkey_fails_naming_the_wallet_variables(tmp_path):
    results = _by_name(miner_checks(_miner_settings(tmp_path, SUBTENSOR_NETWORK="",
                                                    MINER_VALIDATOR_HOTKEYS=("5V",))))
    assert not results["miner hotkey"].ok
    assert "BT_WALLET_NAME, BT_WALLET_HOTKEY, BT_WALLET_PATH" in results["miner hotkey"].detail
    assert results["miner settings"].ok and "registered on netuid 7" not in results


# --- the whole command against a real S3 server ------------------------------------------------

def _env(sot, tmp_path, **changes) -> dict:
    values = {"BT_WALLET_NAME": "miner", "BT_WALLET_HOTKEY": "default",
              "BT_WALLET_PATH": str(tmp_path), "SUBTENSOR_NETWORK": "",
              "MINER_VALIDATOR_HOTKEYS": ("5V",), **changes}
    return settings_env(sot.settings.replace(**values))


def test_preflight_passes_with_the_date_listed_and_a_loadable_hotkey(sot, tmp_path):
    make_wallet(tmp_path)
    sot.put_batch(fake_batch())
    done = _cli("preflight", "--processing-date", DATE, env=_env(sot, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "PASS  SOT reachable", "PASS  date listed", "PASS  miner hotkey", "PASS  miner settings"]
    assert lines[-1] == "preflight: 4 passed, 0 failed"


@pytest.mark.parametrize("layout,expected", [
    ("none", "FAIL  date listed: snapshots/bitcoin/2025-10-26/7/: no objects"),
    ("new-export", "FAIL  date listed: snapshots/bitcoin/2025-10-26/7/: no alerts.parquet (the "
                   "SOT's export since 2025-12-01); files there: META.json, features.parquet"),
])
def test_preflight_fails_when_the_date_is_not_there_to_score(sot, tmp_path, layout, expected):
    make_wallet(tmp_path)
    if layout == "new-export":
        files = fake_batch()
        sot.put_batch({"features.parquet": files["features.parquet"]})
    done = _cli("preflight", "--processing-date", DATE, "--skip-miner", env=_env(sot, tmp_path))
    assert done.returncode == 1
    assert expected in done.stdout
    assert done.stdout.splitlines()[-1] == "preflight: 1 passed, 1 failed (date listed)"


def test_preflight_fails_when_the_sot_is_unreachable_and_when_chain_mode_lacks_netuid(sot, tmp_path):
    from tests.s3_fixtures import free_port

    make_wallet(tmp_path)
    env = _env(sot, tmp_path, SOT_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}",
               SOT_S3_MAX_ATTEMPTS=1, SUBTENSOR_NETWORK="finney", NETUID=None)
    done = _cli("preflight", "--processing-date", DATE, env=env)
    assert done.returncode == 1
    assert "FAIL  SOT reachable: s3://" in done.stdout
    assert "FAIL  miner settings: NETUID is not set" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("preflight: 1 passed, 2 failed")


def test_config_prints_every_setting_with_secrets_masked():
    env = {"SOT_S3_ACCESS_KEY": "AKIAEXAMPLEKEY", "SOT_S3_SECRET_KEY": "wJalrXUtnFEMIK7MDENG",
           "SUBTENSOR_NETWORK": "wss://ops:hunter2SECRET@rpc.example:443/ws?apikey=KEY0123456789",
           "MINER_REDIS_URL": "redis://:redispassword@miner-redis:6379/0", "NETWORK": "torus"}
    done = _cli("config", env=env)
    assert done.returncode == 0, done.stderr
    shown = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(shown) == set(Settings.__dataclass_fields__)
    assert shown["SOT_S3_ACCESS_KEY"] == shown["SOT_S3_SECRET_KEY"] == "***"
    assert shown["SUBTENSOR_NETWORK"] == "wss://***@rpc.example:443/ws?apikey=***"
    assert shown["MINER_REDIS_URL"] == "redis://***@miner-redis:6379/0"
    assert shown["NETWORK"] == "torus" and shown["NETUID"] == ""
    for secret in ("AKIAEXAMPLEKEY", "wJalrXUtnFEMIK7MDENG", "hunter2SECRET", "KEY0123456789",
                   "redispassword"):
        assert secret not in done.stdout


def test_a_part_can_be_skipped(tmp_path):
    make_wallet(tmp_path)
    env = settings_env(_miner_settings(tmp_path, SUBTENSOR_NETWORK="",
                                       MINER_VALIDATOR_HOTKEYS=("5V",)))
    done = _cli("preflight", "--skip-sot", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SOT" not in done.stdout and done.stdout.splitlines()[-1] == \
        "preflight: 2 passed, 0 failed"


def test_a_part_whose_libraries_are_missing_is_one_fail_line(monkeypatch, capsys):
    import sys

    import services.ops.cli as ops
    from services.cli import build_parser

    # The downloader registered its part; its checks' module cannot be imported here.
    monkeypatch.setitem(sys.modules, "services.downloader.preflight", None)
    args = build_parser().parse_args(["preflight", "--skip-miner", "--processing-date", DATE])
    assert ops.run_preflight(args, Settings.from_env({})) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  SOT checks: cannot run here (") and "--skip-sot" in out
