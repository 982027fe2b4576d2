"""Subcommands of the api service: `serve-api` runs gunicorn with the repository's config file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn.conf.py"
APP = "services.api.app:create_app()"


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    parser = sub.add_parser("serve-api", help="serve published results over HTTP (gunicorn + Flask)")
    parser.add_argument("--host", help="address to bind (default: API_HOST)")
    parser.add_argument("--port", type=_port, help="port to bind (default: API_PORT, 8000)")
    parser.set_defaults(func=serve_api)


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port {raw!r} is not an integer") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"--port {value} is not between 1 and 65535")
    return value


def gunicorn_argv() -> list[str]:
    """The command that replaces this process: gunicorn with our config and the app factory."""
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), APP]


def serve_api(args, settings) -> int:
    """Exec gunicorn (so signals reach it directly); flags override API_HOST / API_PORT."""
    env = dict(os.environ)  # the config file reads Settings from this environment
    if args.host:
        env["API_HOST"] = args.host
    if args.port:
        env["API_PORT"] = str(args.port)
    argv = gunicorn_argv()
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)
    return 1  # not reached: exec replaces the process
