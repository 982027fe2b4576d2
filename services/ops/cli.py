"""Subcommands of the ops service."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative integer")
    return value


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    p = sub.add_parser("sample", help="write a deterministic sample SOT date "
                                      "(demo, test and training data)")
    p.add_argument("--network", help="network name (default: settings NETWORK)")
    p.add_argument("--processing-date", required=True, help="YYYY-MM-DD")
    p.add_argument("--days", type=_positive, help="window in days (default: settings WINDOW_DAYS)")
    p.add_argument("--output-dir", required=True,
                   help="SOT root: writes snapshots/{network}/{date}/{days}/ and address-labels/")
    p.add_argument("--input-dir",
                   help="also lay the date out as a download would: INPUT_DIR/{date}/")
    p.add_argument("--seed", type=_non_negative, default=0, help="random seed (default 0)")
    p.add_argument("--alerts", type=_positive, default=2000,
                   help="number of alerts (default 2000)")
    p.add_argument("--legacy-columns", action="store_true",
                   help="add the legacy feature columns older SOT versions carry")
    p.add_argument("--bucket", metavar="NAME",
                   help="also upload the batch and labels to this bucket at SOT_S3_ENDPOINT "
                        "(created if missing; public-read when no keys are set)")
    p.set_defaults(func=run_sample)

    p = sub.add_parser("sample-sot", help="serve a sample SOT bucket over the S3 protocol "
                                          "(the stack's default source; no credentials)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_positive, default=9000, help="port (default 9000)")
    p.add_argument("--bucket", default="sample-sot", help="bucket name (default sample-sot)")
    p.add_argument("--alerts", type=_positive, default=2000, help="alerts per date (default 2000)")
    p.add_argument("--days-back", type=_non_negative, default=1,
                   help="also publish this many dates before today (default 1)")
    p.set_defaults(func=run_sample_sot)

    p = sub.add_parser("stack", help="run compose.yaml's services as local processes "
                                     "(no Docker needed); Ctrl-C stops them")
    p.add_argument("--profile", action="append", default=[],
                   help="compose profile to enable, e.g. miner (repeatable)")
    p.add_argument("--project-dir", default=".", help="folder holding compose.yaml (default .)")
    p.add_argument("--own-redis", action="store_true",
                   help="start a redis-server on a free port even if one answers at 6379")
    p.set_defaults(func=run_stack)


def run_sample(args, settings) -> int:
    """Generate one sample date and write it in the SOT layout (and the input layout)."""
    from shared import sample
    from shared.storage import InvalidDate

    network = args.network or settings.NETWORK
    days = args.days or settings.WINDOW_DAYS
    try:
        batch = sample.generate_batch(network, args.processing_date, days, n_alerts=args.alerts,
                                      seed=args.seed, legacy_columns=args.legacy_columns)
    except (InvalidDate, ValueError) as exc:
        print(f"aml-miner sample: {exc}", file=sys.stderr)
        return 2
    try:
        prefix = sample.write_sot(batch, args.output_dir)
        print(prefix)
        if args.input_dir:
            print(sample.write_input(batch, args.input_dir))
    except OSError as exc:
        print(f"aml-miner sample: cannot write: {exc}", file=sys.stderr)
        return 1
    if args.bucket:
        return _upload(args, settings, network, days)
    return 0


def _upload(args, settings, network: str, days: int) -> int:
    """Upload the batch just written (and the network's labels) to args.bucket."""
    from shared import storage
    from shared.settings import SettingsError
    from services.ops.upload import UploadError, upload_tree

    only = (storage.sot_prefix(network, args.processing_date, days), storage.labels_key(network))
    try:
        summary = upload_tree(args.output_dir, settings, bucket=args.bucket, only=only)
    except (UploadError, SettingsError) as exc:
        print(f"aml-miner sample: upload failed: {exc}", file=sys.stderr)
        return 1
    print(f"s3://{summary['bucket']}/{only[0]}")
    return 0


def run_sample_sot(args, settings) -> int:
    """Serve generated sample dates from an in-process S3 server until stopped."""
    import signal

    from services.ops.sot_server import serve

    signal.signal(signal.SIGTERM, _interrupt)  # compose stops with SIGTERM; shut down like Ctrl-C
    try:
        serve(settings, args.host, args.port, args.bucket, args.alerts, args.days_back)
    except KeyboardInterrupt:
        log.info("sample SOT: stopped")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_stack(args, settings) -> int:
    """Run the stack as local processes in the foreground."""
    from pathlib import Path

    from services.ops.stack import StackError, run

    try:
        return run(Path(args.project_dir).resolve(), args.profile, args.own_redis)
    except StackError as exc:
        print(f"aml-miner stack: {exc}", file=sys.stderr)
        return 1
