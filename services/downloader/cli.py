"""Subcommands of the downloader service: `aml-miner download`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_PERMANENT = 1
EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: a wrapper script may try again later


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    p = sub.add_parser("download", help="download one date's SOT batch, verified, into INPUT_DIR",
                       description="Fetch snapshots/{network}/{date}/{days}/ and the network's "
                                   "address labels from the SOT bucket into OUTPUT_DIR/{date}/.")
    p.add_argument("--network", help="SOT network (default: NETWORK)")
    p.add_argument("--processing-date", required=True, help="batch date, YYYY-MM-DD")
    p.add_argument("--days", type=int, help="window in days (default: WINDOW_DAYS)")
    p.add_argument("--output-dir", type=Path, help="input root to write into (default: INPUT_DIR)")
    p.add_argument("--force", action="store_true",
                   help="download again even if a verified copy is already there")
    p.set_defaults(func=run_download)


def run_download(args: argparse.Namespace, settings) -> int:
    """Handler of `aml-miner download`: one summary line on success, one error line on failure."""
    from shared.settings import SettingsError
    from services.downloader.download import download_batch
    from services.downloader.errors import DownloadFailure, TransientDownloadError

    try:
        summary = download_batch(args.network or settings.NETWORK, args.processing_date,
                                 args.days if args.days is not None else settings.WINDOW_DAYS,
                                 args.output_dir or settings.INPUT_DIR, force=args.force,
                                 settings=settings)
    except TransientDownloadError as exc:
        print(f"aml-miner download: temporary failure, try again later: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except (DownloadFailure, SettingsError, OSError) as exc:
        print(f"aml-miner download: error: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    state = "already there, skipped" if summary["skipped"] else "downloaded"
    print(f"{summary['folder']}: {state} ({summary['files']} files, {summary['bytes']} bytes, "
          f"{summary['seconds']:.2f} s)")
    return 0
