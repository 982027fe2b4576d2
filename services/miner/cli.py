"""Subcommands of the miner service."""

from __future__ import annotations

import argparse
from pathlib import Path

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")
WSGI_APP = "services.miner.app:create_app()"


PREFLIGHT_PART = "miner"


def preflight_checks(settings, processing_date: str):
    """`aml-miner preflight`'s miner part: hotkey, settings, registration on NETUID."""
    from services.miner.preflight import checks

    return checks(settings)


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    serve = sub.add_parser("serve-miner", help="serve our results to the subnet's validators "
                                               "(Flask under gunicorn)")
    serve.add_argument("--host", help="bind address (default: MINER_HOST)")
    serve.add_argument("--port", type=int, help="bind port (default: MINER_PORT, 8091)")
    serve.add_argument("--workers", type=int, help="gunicorn workers (default: MINER_WORKERS)")
    serve.set_defaults(func=serve_miner)


def overrides(args: argparse.Namespace) -> dict:
    """The settings the command-line flags replace."""
    flags = {"MINER_HOST": args.host, "MINER_PORT": args.port, "MINER_WORKERS": args.workers}
    return {name: value for name, value in flags.items() if value is not None}


def gunicorn_argv(python: str) -> list[str]:
    """The gunicorn command line; every other setting comes from gunicorn.conf.py."""
    return [python, "-m", "gunicorn", "--config", str(GUNICORN_CONF), WSGI_APP]


def serve_miner(args: argparse.Namespace, settings) -> int:
    """Check the wallet and the chain once, publish our endpoint, then exec gunicorn."""
    import os
    import sys

    from . import config
    from .chain import prepare_start
    from .errors import MinerConfigError
    from .identity import hotkey_address, load_wallet

    changes = overrides(args)
    settings = settings.replace(**changes)
    try:
        config.check(settings)
        wallet = load_wallet(settings)
        mode = prepare_start(settings, wallet)
    except MinerConfigError as exc:
        print(f"aml-miner serve-miner: refusing to start: {exc}", file=sys.stderr)
        return 2
    print(f"aml-miner serve-miner: hotkey {hotkey_address(wallet, settings)}, authorising by "
          f"{mode}, listening on {settings.MINER_HOST}:{settings.MINER_PORT}", flush=True)
    env = dict(os.environ, **{name: str(value) for name, value in changes.items()})
    os.execve(sys.executable, gunicorn_argv(sys.executable), env)
    return 0  # not reached: exec replaces this process
