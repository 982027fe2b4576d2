"""The serve-miner command line: flags, settings checks, and the gunicorn command it execs."""

import re
from pathlib import Path

import pytest

from services.cli import build_parser
from services.miner.cli import GUNICORN_CONF, gunicorn_argv, overrides
from services.miner.config import check
from services.miner.errors import MinerConfigError


def test_flags_override_only_what_was_given():
    args = build_parser().parse_args(["serve-miner", "--port", "9100"])
    assert overrides(args) == {"MINER_PORT": 9100}
    args = build_parser().parse_args(["serve-miner", "--host", "127.0.0.1", "--workers", "3"])
    assert overrides(args) == {"MINER_HOST": "127.0.0.1", "MINER_WORKERS": 3}


def test_gunicorn_runs_the_app_factory_with_our_config():
    argv = gunicorn_argv("/usr/bin/python3")
    assert argv[:3] == ["/usr/bin/python3", "-m", "gunicorn"]
    assert argv[-1] == "services.miner.app:create_app()"
    assert Path(argv[argv.index("--config") + 1]) == GUNICORN_CONF and GUNICORN_CONF.is_file()


def test_the_default_port_is_8091():
    from shared.settings import Settings

    assert Settings.from_env({}).MINER_PORT == 8091


@pytest.mark.parametrize("name,value,message", [
    ("MINER_RATE_LIMIT", 0, "MINER_RATE_LIMIT=0 must be greater than 0"),
    ("MINER_METAGRAPH_REFRESH_SECONDS", -5, "MINER_METAGRAPH_REFRESH_SECONDS=-5"),
    ("MINER_UPSTREAM_TIMEOUT", 0.0, "MINER_UPSTREAM_TIMEOUT=0.0"),
    ("MINER_WORKER_CONNECTIONS", 0, "MINER_WORKER_CONNECTIONS=0 must be greater than 0"),
    ("MINER_METAGRAPH_MAX_AGE", 300, "MINER_METAGRAPH_MAX_AGE=300 must be greater than "
                                     "MINER_METAGRAPH_REFRESH_SECONDS=300"),
    ("MINER_REDIS_URL", "127.0.0.1:6379", "MINER_REDIS_URL must be a redis://"),
    ("MINER_REDIS_TIMEOUT", 0.0, "MINER_REDIS_TIMEOUT=0.0 must be greater than 0"),
    ("API_URL", "127.0.0.1:8000", "API_URL='127.0.0.1:8000' is not an http"),
])
def test_unusable_settings_are_named(name, value, message):
    from shared.settings import Settings

    settings = Settings.from_env({}).replace(MINER_VALIDATOR_HOTKEYS=("5V",), SUBTENSOR_NETWORK="",
                                             **{name: value})
    with pytest.raises(MinerConfigError, match=re.escape(message)):
        check(settings)


def test_chain_mode_without_netuid_is_refused_naming_netuid_and_no_secret():
    from shared.settings import Settings

    # What an operator gets who sets only a wallet: chain mode is on by default.
    assert Settings.from_env({}).NETUID is None and Settings.from_env({"NETUID": ""}).NETUID is None
    settings = Settings.from_env({"SUBTENSOR_NETWORK": "wss://ops:s3cretTOKEN@rpc.example:443/ws"})
    with pytest.raises(MinerConfigError, match=r"^NETUID is not set") as info:
        check(settings)
    assert "s3cretTOKEN" not in str(info.value) and "rpc.example:443" in str(info.value)


@pytest.mark.parametrize("env,ok", [({"NETUID": "0"}, True), ({"NETUID": "21"}, True),
                                    ({"NETUID": "-1"}, False),
                                    ({"NETUID": "", "SUBTENSOR_NETWORK": ""}, True)])
def test_an_explicit_netuid_is_accepted_even_the_root_subnet(env, ok):
    from shared.settings import Settings

    settings = Settings.from_env({"MINER_VALIDATOR_HOTKEYS": "5V", **env})
    if ok:
        check(settings)
    else:
        with pytest.raises(MinerConfigError, match="NETUID=-1 is not a subnet id"):
            check(settings)


def test_the_miners_image_gets_what_gunicorns_gevent_worker_imports():
    """gunicorn's gevent worker imports gevent and packaging: its `gevent` extra brings both."""
    import tomllib

    from gunicorn.util import load_class

    worker = re.search(r'^worker_class = "(\w+)"', GUNICORN_CONF.read_text(), re.M).group(1)
    assert worker == "gevent" and load_class(worker)
    extras = tomllib.loads((GUNICORN_CONF.parents[2] / "pyproject.toml").read_text())
    miner = extras["project"]["optional-dependencies"]["miner"]
    assert any(dep.startswith("gunicorn[gevent]") for dep in miner), miner
