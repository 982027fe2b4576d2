"""Subcommands of the ops service."""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger(__name__)

# The workers whose heartbeat `healthcheck worker` reads (each service registers its own worker).
WORKER_KINDS = ("download", "learn", "process")


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
    p.add_argument("--network", help="one of NETWORKS (default: every configured network, "
                                     "each with its own data and labels)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--processing-date", help="YYYY-MM-DD")
    when.add_argument("--from", dest="first", metavar="YYYY-MM-DD",
                      help="first of a range of dates (with --to): a history with one "
                           "cumulative labels file, as the SOT keeps it")
    p.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last date of the range")
    p.add_argument("--days", type=_positive, help="window in days (default: settings WINDOW_DAYS)")
    p.add_argument("--output-dir", required=True,
                   help="SOT root: writes snapshots/{network}/{date}/{days}/ and address-labels/")
    p.add_argument("--input-dir",
                   help="also lay the date out as a download would: INPUT_DIR/{date}/ "
                        "(with several NETWORKS: INPUT_DIR/{network}/{date}/)")
    p.add_argument("--seed", type=_non_negative, default=0, help="random seed (default 0)")
    p.add_argument("--alerts", type=_positive, default=2000,
                   help="number of alerts (default 2000)")
    p.add_argument("--legacy-columns", action="store_true",
                   help="add the legacy feature columns older SOT versions carry")
    p.add_argument("--bucket", metavar="NAME",
                   help="also upload the batch and labels to this bucket at SOT_S3_ENDPOINT "
                        "(created if missing; public-read when no keys are set)")
    p.set_defaults(func=run_sample, every_network=True)
    _add_chain_commands(sub)

    p = sub.add_parser("sample-sot", help="serve a sample SOT bucket over the S3 protocol "
                                          "(the stack's default source; no credentials)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_positive, default=9000, help="port (default 9000)")
    p.add_argument("--bucket", default="sample-sot", help="bucket name (default sample-sot)")
    p.add_argument("--alerts", type=_positive, default=2000, help="alerts per date (default 2000)")
    p.add_argument("--days-back", type=_non_negative, default=30,
                   help="also publish this many dates before today, the history the learner "
                        "learns from (default 30); every date for each of NETWORKS")
    p.set_defaults(func=run_sample_sot)

    p = sub.add_parser("config", help="print the effective settings, secrets masked")
    p.set_defaults(func=run_config)

    p = sub.add_parser("preflight", help="check what a first start needs (SOT and date, miner "
                                         "hotkey, NETUID and registration); exit 1 if any fails")
    p.add_argument("--processing-date", metavar="YYYY-MM-DD",
                   help="date that must be listed in the SOT (default: the date the daily "
                        "schedule enqueues today)")
    p.add_argument("--skip-miner", action="store_true",
                   help="leave out the miner's checks (a stack run without the miner profile)")
    p.add_argument("--skip-sot", action="store_true",
                   help="leave out the SOT checks (e.g. in the miner's image: no S3 client)")
    p.set_defaults(func=run_preflight)

    p = sub.add_parser("stack", help="run compose.yaml's services as local processes "
                                     "(no Docker needed); Ctrl-C stops them")
    p.add_argument("--profile", action="append", default=[],
                   help="compose profile to enable, e.g. miner (repeatable)")
    p.add_argument("--project-dir", default=".", help="folder holding compose.yaml (default .)")
    p.add_argument("--own-redis", action="store_true",
                   help="start a redis-server on a free port even if one answers at 6379")
    p.set_defaults(func=run_stack)


def run_sample(args, settings) -> int:
    """Generate sample dates of each network asked for (default: every configured one) and
    write them in the SOT layout (and the input layout)."""
    days = args.days or settings.WINDOW_DAYS
    for network in [args.network] if args.network else settings.networks:
        write = _sample_range if args.first or args.last else _sample_one
        code = write(args, settings, network, days)
        if code:
            return code
    return 0


def _input_root(args, settings, network: str):
    """--input-dir as the network's input root (None when not given)."""
    from shared import networks

    return networks.input_root(settings, network, args.input_dir) if args.input_dir else None


def _sample_one(args, settings, network: str, days: int) -> int:
    """`sample --processing-date D` of one network."""
    from shared import sample
    from shared.storage import InvalidDate

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
            print(sample.write_input(batch, _input_root(args, settings, network)))
    except OSError as exc:
        print(f"aml-miner sample: cannot write: {exc}", file=sys.stderr)
        return 1
    if args.bucket:
        return _upload(args, settings, network, days)
    return 0


def _sample_range(args, settings, network: str, days: int) -> int:
    """`sample --from D1 --to D2`: every date of the range, one cumulative labels file."""
    from shared import sample
    from shared.storage import InvalidDate, date_range

    if not (args.first and args.last):
        print("aml-miner sample: --from and --to go together", file=sys.stderr)
        return 2
    try:
        dates = date_range(args.first, args.last)
        folders = sample.write_history(network, dates, days, args.output_dir,
                                       _input_root(args, settings, network), args.alerts,
                                       args.seed, args.legacy_columns)
    except (InvalidDate, ValueError) as exc:
        print(f"aml-miner sample: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"aml-miner sample: cannot write: {exc}", file=sys.stderr)
        return 1
    print("\n".join(str(f) for f in folders))
    return _upload(args, settings, network, days, dates) if args.bucket else 0


def _upload(args, settings, network: str, days: int, dates: list[str] | None = None) -> int:
    """Upload the batches just written (and the network's labels) to args.bucket."""
    from shared import storage
    from shared.settings import SettingsError
    from services.ops.upload import UploadError, upload_tree

    only = (*(storage.sot_prefix(network, d, days) for d in dates or [args.processing_date]),
            storage.labels_key(network))
    try:
        summary = upload_tree(args.output_dir, settings, bucket=args.bucket, only=only)
    except (UploadError, SettingsError) as exc:
        print(f"aml-miner sample: upload failed: {exc}", file=sys.stderr)
        return 1
    for prefix in only[:-1]:
        print(f"s3://{summary['bucket']}/{prefix}")
    return 0


def run_config(args, settings) -> int:
    """Every setting as NAME=value, as this process sees it; secrets and URL tokens masked."""
    from dataclasses import fields

    from shared.redact import mask_setting

    for f in fields(settings):
        value = getattr(settings, f.name)
        print(f"{f.name}={'' if value is None else mask_setting(f.name, value)}")
    return 0


def run_preflight(args, settings) -> int:
    """One PASS/FAIL line per check; exit 1 when any failed."""
    import datetime as dt

    from shared import schedule

    date = args.processing_date or schedule.date_for(dt.datetime.now(dt.timezone.utc),
                                                     settings.SCHEDULE_DATE_OFFSET_DAYS)
    skipped = {"SOT": args.skip_sot, "miner": args.skip_miner}
    results = []
    for part, checks in args.preflight_parts.items():
        if not skipped.get(part):
            results += _service_checks(part, checks, settings, date)
    for check in results:
        print(check.line(), flush=True)
    failed = [c.name for c in results if not c.ok]
    print(f"preflight: {len(results) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


def _service_checks(part: str, checks, settings, date: str) -> list:
    """A service's checks; an image without that service's libraries gets one FAIL line."""
    from shared.checks import Check

    try:
        found = checks(settings, date)
    except ImportError as exc:
        return [Check(f"{part} checks", False, f"cannot run here ({exc}); run them in the "
                                               f"{part} service's image, or skip them with "
                                               f"--skip-{part.lower()}")]
    return list(found)


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


def _add_chain_commands(sub) -> None:
    enqueue = sub.add_parser("enqueue", help="queue a date's download (then processing)")
    _date_arguments(enqueue)
    enqueue.add_argument("--force", action="store_true", help="re-run a published or failed date")
    enqueue.set_defaults(func=_enqueue)

    status = sub.add_parser("status", help="where a date stands: queued / downloading / "
                                           "backfilling / learning / processing / published / "
                                           "failed + reason, and its learn job; with no date, "
                                           "an overview of every network (exit 1 when today's "
                                           "date is late)")
    _date_arguments(status, required=False,
                    network_help="one of NETWORKS (default: the first with a date, every "
                                 "configured network without one)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=_status, every_network=True)

    sched = sub.add_parser("schedule",
                           help="show the daily enqueue of each network (next run, its date, "
                                "armed or not)")
    sched.add_argument("--network", help="one of NETWORKS (default: every configured network)")
    sched.add_argument("--arm", action="store_true", help="arm today's and the next run now")
    sched.set_defaults(func=_schedule, every_network=True)

    health = sub.add_parser("healthcheck",
                            help="exit 0 when this host's worker heartbeat is fresh "
                                 "(`worker QUEUE`) or a URL answers 2xx (`http URL`)")
    health.add_argument("kind", choices=["worker", "http"])
    health.add_argument("target", help="worker: download, process or learn; http: the URL to GET")
    health.set_defaults(func=_healthcheck)


def _date_arguments(parser: argparse.ArgumentParser, required: bool = True,
                    network_help: str = "one of NETWORKS (default: the first)") -> None:
    parser.add_argument("--processing-date", required=required, metavar="YYYY-MM-DD")
    parser.add_argument("--network", help=network_help)
    parser.add_argument("--days", type=_positive, help="window in days, default: WINDOW_DAYS")


def _identity(args, settings) -> tuple[str, str, int]:
    return (args.network or settings.default_network, args.processing_date,
            args.days or settings.WINDOW_DAYS)


def _enqueue(args, settings) -> int:
    from redis import RedisError

    from shared import jobs

    from shared.settings import SettingsError

    try:
        result = jobs.enqueue_download(settings, *_identity(args, settings), force=args.force)
    except (jobs.JobArgumentError, SettingsError) as exc:
        print(f"aml-miner enqueue: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        print(f"aml-miner enqueue: Redis at REDIS_URL is unreachable: {exc}", file=sys.stderr)
        return 1
    verb = "enqueued" if result.enqueued else "not enqueued"
    print(f"{result.job_id}: {verb}: {result.message}")
    return 0


def _status(args, settings) -> int:
    from dataclasses import asdict

    from redis import RedisError

    from shared import jobs

    if not args.processing_date:
        return _overview(args, settings)
    try:
        status = jobs.date_status(settings, *_identity(args, settings))
        learn = jobs.learn_status(settings, *_identity(args, settings))
    except jobs.JobArgumentError as exc:
        print(f"aml-miner status: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        print(f"aml-miner status: Redis at REDIS_URL is unreachable: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**asdict(status), "learn": learn}, sort_keys=True))
    else:
        print(status.describe() + (f"\n{learn}" if learn else ""))
    return 1 if status.state == "failed" else 0


def _overview(args, settings) -> int:
    """`status` with no date: every network (or --network's), exit 1 when one is late."""
    from redis import RedisError

    from services.ops.overview import overview
    from shared import jobs

    chosen = [args.network] if args.network else list(settings.networks)
    try:
        rows = overview(settings.replace(WINDOW_DAYS=args.days or settings.WINDOW_DAYS), chosen,
                        jobs.connect(settings))
    except RedisError as exc:
        print(f"aml-miner status: Redis at REDIS_URL is unreachable: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([row.record() for row in rows], sort_keys=True))
    else:
        print("\n".join(line for row in rows for line in row.lines()))
    return 1 if any(row.warning for row in rows) else 0


def _schedule(args, settings) -> int:
    import datetime as dt

    from shared import jobs, schedule

    if not settings.SCHEDULE_ENABLED:
        print("schedule: disabled (SCHEDULE_ENABLED=false)")
        return 0
    connection = jobs.connect(settings)
    if args.arm:
        schedule.ensure_armed(settings, connection)
    now = dt.datetime.now(dt.timezone.utc)
    tick = schedule.next_tick(now, schedule.parse_time(settings.SCHEDULE_TIME_UTC))
    date = schedule.date_for(tick, settings.SCHEDULE_DATE_OFFSET_DAYS)
    for network in [args.network] if args.network else settings.networks:
        tid = schedule.tick_id(network, settings.WINDOW_DAYS, tick, jobs.namespace(settings))
        armed = jobs.fetch(connection, tid) is not None
        print(f"schedule: next run {tick.isoformat()} enqueues {network} {date} "
              f"{settings.WINDOW_DAYS}d "
              f"({'armed' if armed else 'not armed: start a download worker or pass --arm'})")
    return 0


def _healthcheck(args, settings) -> int:
    # Compose healthchecks call this with no spaces in any argument: Podman 4.3 re-splits
    # exec-form arguments on spaces, so `python -c "..."` checks break there.
    if args.kind == "http":
        return _http_healthcheck(args.target)
    if args.target not in WORKER_KINDS:
        print(f"healthcheck worker: unknown queue {args.target!r} (use {', '.join(WORKER_KINDS)})",
              file=sys.stderr)
        return 2
    return _worker_healthcheck(args.target, settings)


def _http_healthcheck(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            print(f"{url}: {response.status}")
            return 0
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def _queue_of(kind: str, settings) -> str:
    """The queue a worker kind (download, process, learn) works on."""
    return {"download": settings.QUEUE_DOWNLOAD, "process": settings.QUEUE_PROCESS,
            "learn": settings.QUEUE_LEARN}[kind]


def _worker_healthcheck(kind: str, settings) -> int:
    from shared import worker

    queue = _queue_of(kind, settings)
    path = worker.heartbeat_path(settings, queue)
    age = worker.heartbeat_age(path)
    if worker.is_fresh(settings, queue):
        print(f"{path}: fresh ({age:.0f} s old)")
        return 0
    state = "missing" if age is None else f"stale ({age:.0f} s old)"
    print(f"{path}: {state}; limit {worker.STALE_AFTER_BEATS * settings.HEARTBEAT_INTERVAL} s",
          file=sys.stderr)
    return 1
