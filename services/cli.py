"""`aml-miner`: the one command line of the stack; each service registers its own subcommands.

Service command modules import only argparse at module level; heavy libraries
(lightgbm, boto3, bittensor) are imported inside the handler that needs them, so
the downloader image never loads LightGBM just to parse arguments. A module may
also register RQ workers (`add_workers`, under `aml-miner worker`) and a part of
`aml-miner preflight` (`PREFLIGHT_PART` and `preflight_checks`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from shared.logs import configure
from shared.settings import Settings, SettingsError
from shared.version import package_version

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
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    worker = sub.add_parser("worker", help="run an RQ worker: download, process or learn")
    queues = worker.add_subparsers(dest="queue", required=True, metavar="QUEUE")
    parts = {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_commands(sub)
        if hasattr(module, "add_workers"):
            module.add_workers(queues)
        if hasattr(module, "preflight_checks"):
            parts[module.PREFLIGHT_PART] = module.preflight_checks
    parser.set_defaults(preflight_parts=parts)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        configure(settings.LOG_LEVEL)
        _prepare(args, settings)
        return int(args.func(args, settings) or 0)
    except SettingsError as exc:  # at start, or a check a command makes before its work
        print(f"aml-miner {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2


def _prepare(args: argparse.Namespace, settings: Settings) -> None:
    """What every command shares: its --network checked (default: the first configured; a
    command with `set_defaults(every_network=True)` keeps None, meaning all of them), and, for a
    command that writes dates (`set_defaults(writes_dates=True)`), a one-network layout moved
    into its network's folder first when several networks are configured."""
    from shared import layout, networks

    if hasattr(args, "network") and (args.network or not getattr(args, "every_network", False)):
        args.network = networks.choose(settings, args.network)
    if getattr(args, "writes_dates", False):
        layout.migrate(settings)


if __name__ == "__main__":
    sys.exit(main())
