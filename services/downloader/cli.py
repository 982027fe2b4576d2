"""Subcommands of the downloader service: `aml-miner download`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_PERMANENT = 1
EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: a wrapper script may try again later


PREFLIGHT_PART = "SOT"


def add_workers(queues) -> None:
    """Register `aml-miner worker download` on the worker command's parser."""
    p = queues.add_parser("download", help="work the download queue; also keeps the daily "
                                           "schedule armed")
    p.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    p.set_defaults(func=run_worker)


def run_worker(args, settings) -> int:
    """The download worker, once the chain's settings pass their checks."""
    from shared import layout, worker
    from services.downloader.worker import run

    worker.check_settings(settings)  # fail at start, not in the first job
    layout.migrate(settings)  # several networks: a one-network layout moves first
    return run(settings, burst=args.burst)


def preflight_checks(settings, processing_date: str):
    """`aml-miner preflight`'s SOT part: the bucket answers and lists the date."""
    from services.downloader.preflight import checks

    return checks(settings, processing_date)


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    p = sub.add_parser("download", help="download one date's SOT batch, verified, into INPUT_DIR",
                       description="Fetch snapshots/{network}/{date}/{days}/ and the network's "
                                   "address labels from the SOT bucket into the input root's "
                                   "{date}/ (with several NETWORKS: {network}/{date}/).")
    p.add_argument("--network", help="SOT network, one of NETWORKS (default: the first)")
    p.add_argument("--processing-date", required=True, help="batch date, YYYY-MM-DD")
    p.add_argument("--days", type=int, help="window in days (default: WINDOW_DAYS)")
    p.add_argument("--output-dir", type=Path, help="input root to write into (default: INPUT_DIR)")
    p.add_argument("--force", action="store_true",
                   help="download again even if a verified copy is already there")
    p.set_defaults(func=run_download, writes_dates=True)

    b = sub.add_parser("backfill", help="download a range of past SOT dates (verified like "
                                        "`download`); dates already present are skipped",
                       description="Download every date from --from to --to (both included) "
                                   "that is not already in the input root. Exit 0 when every "
                                   "date is present afterwards or missing on the SOT (1 when "
                                   "the SOT has none of them), 1 when a date failed for good, "
                                   "75 when only temporary failures remain.")
    b.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD")
    b.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD")
    b.add_argument("--network", help="SOT network, one of NETWORKS (default: the first)")
    b.add_argument("--days", type=int, help="window in days (default: WINDOW_DAYS)")
    b.add_argument("--output-dir", type=Path, help="input root to write into (default: INPUT_DIR)")
    b.add_argument("--enqueue", action="store_true",
                   help="queue the dates on the download queue instead of downloading here")
    b.add_argument("--process", action="store_true",
                   help="with --enqueue: process each date after its download (default: "
                        "download only; the learner learns from them)")
    b.set_defaults(func=run_backfill, writes_dates=True)


def run_download(args: argparse.Namespace, settings) -> int:
    """Handler of `aml-miner download`: one summary line on success, one error line on failure."""
    from shared import networks
    from shared.settings import SettingsError
    from services.downloader.download import download_batch
    from services.downloader.errors import DownloadFailure, TransientDownloadError
    from shared.publish_lock import DateLocked

    try:
        summary = download_batch(args.network, args.processing_date,
                                 args.days if args.days is not None else settings.WINDOW_DAYS,
                                 networks.input_root(settings, args.network, args.output_dir),
                                 force=args.force, settings=settings)
    except (TransientDownloadError, DateLocked) as exc:
        print(f"aml-miner download: temporary failure, try again later: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except (DownloadFailure, SettingsError, OSError) as exc:
        print(f"aml-miner download: error: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    state = "already there, skipped" if summary["skipped"] else "downloaded"
    print(f"{summary['folder']}: {state} ({summary['files']} files, {summary['bytes']} bytes, "
          f"{summary['seconds']:.2f} s)")
    return 0


def run_backfill(args: argparse.Namespace, settings) -> int:
    """Handler of `aml-miner backfill`: a line per date in the log, a summary line on stdout."""
    from services.downloader.backfill import backfill
    from shared import networks
    from shared.storage import InvalidDate, date_range

    network = args.network
    days = args.days if args.days is not None else settings.WINDOW_DAYS
    try:
        dates = date_range(args.first, args.last)
    except InvalidDate as exc:
        print(f"aml-miner backfill: error: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    if args.enqueue:
        return _enqueue_range(settings, network, dates, days, args.process)
    if args.process:
        print("aml-miner backfill: --process needs --enqueue (processing is the workers' job)",
              file=sys.stderr)
        return EXIT_PERMANENT
    summary = backfill(network, dates, days,
                       networks.input_root(settings, network, args.output_dir), settings)
    for date, detail in summary.details.items():
        print(f"{date}: {summary.outcomes[date]}: {detail}", file=sys.stderr)
    print(summary.line())
    return summary.exit_code()


def _enqueue_range(settings, network: str, dates: list[str], days: int, process: bool) -> int:
    from redis import RedisError

    from shared import jobs
    from shared.settings import SettingsError

    try:
        for date in dates:
            result = jobs.enqueue_download(settings, network, date, days, process=process)
            print(f"{result.job_id}: {'enqueued' if result.enqueued else 'not enqueued'}: "
                  f"{result.message}")
    except (jobs.JobArgumentError, SettingsError) as exc:
        print(f"aml-miner backfill: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    except RedisError as exc:
        print(f"aml-miner backfill: Redis at REDIS_URL is unreachable: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
    return 0
