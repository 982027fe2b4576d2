"""`aml-miner`: the one command line of the stack; each service registers its own subcommands.

Service command modules import only argparse at module level; heavy libraries
(lightgbm, boto3, bittensor) are imported inside the handler that needs them, so
the downloader image never loads LightGBM just to parse arguments.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from shared.logs import configure
from shared.settings import Settings, SettingsError

COMMAND_MODULES = (
    "services.processor.cli",
    "services.downloader.cli",
    "services.api.cli",
    "services.miner.cli",
    "services.ops.cli",
    "services.validator.cli",
)

log = logging.getLogger("aml_miner")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aml-miner", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"aml-miner: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(settings.LOG_LEVEL)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
