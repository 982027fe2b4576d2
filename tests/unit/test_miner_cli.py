"""The serve-miner command line: flags, and the gunicorn command it execs."""

from pathlib import Path

from services.cli import build_parser
from services.miner.cli import GUNICORN_CONF, gunicorn_argv, overrides


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
