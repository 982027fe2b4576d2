"""Benchmark of the job chain's overhead: the queue path against download + process run directly.

    python bench/bench_chain.py [--alerts 20000] [--runs 3] [--work-dir bench/out/chain]
    python bench/bench_chain.py --networks 2 [--alerts 20000] [--runs 3]

1. starts its own redis-server and a moto S3 server on loopback, uploads one
   sample batch per run (the project's generator, distinct dates),
2. starts the real `aml-miner worker download` and `aml-miner worker process`
   (and `aml-miner serve-api` when the API is in the tree),
3. for each date, in turn: direct = download_batch + process_batch in this process
   (models loaded beforehand, as the process worker has them, into folders of its
   own); queue = from running `aml-miner enqueue --processing-date D` to the API
   answering /metadata/D with 200 (without the API: output/D being published),
4. prints each run with the queue path's phases (from the RQ job records), the
   median overhead = queue - direct, and its ratio to the 2 s goal.

With --networks N (N >= 2) the stack serves N networks (NETWORKS=bitcoin,torus,...): each
run enqueues one date of every network at once and waits until all are published; it prints
the idle gaps between consecutive process jobs (the worker's next job start minus the
previous one's end) and the ratio of the jobs' own time to the span they occupy (1.00: the
process worker never waited between networks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL_S = 2.0
NETWORK, WINDOW = "bitcoin", 7
NETWORK_NAMES = ("bitcoin", "torus", "ethereum", "bittensor")
FIRST_DATE = dt.date(2025, 10, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"bench: timed out after {timeout} s waiting for {what}")


def start_redis(work: Path) -> tuple[subprocess.Popen, str]:
    from shared.redis_ping import redis_answers

    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(work)],
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: redis_answers(url), 10, "redis-server")
    return proc, url


def start_s3():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def upload_batches(settings, dates: list[str], alerts: int, work: Path,
                   networks: tuple[str, ...] = (NETWORK,)) -> None:
    """Generate one sample batch per date and network in the SOT layout and upload it."""
    from shared.s3 import make_client
    from shared.sample import generate_batch, write_sot

    sot = work / "sot"
    for network in networks:
        for date in dates:
            write_sot(generate_batch(network, date, WINDOW, n_alerts=alerts, seed=1), sot)
    client = make_client(settings)
    client.create_bucket(Bucket=settings.SOT_S3_BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": settings.SOT_S3_REGION})
    for path in sorted(p for p in sot.rglob("*") if p.is_file()):
        client.upload_file(str(path), settings.SOT_S3_BUCKET, str(path.relative_to(sot)))


def direct(settings, date: str, models, root: Path) -> float:
    """Seconds of download_batch + process_batch on one date, into folders of their own."""
    from services.downloader.download import download_batch
    from services.processor.process import process_batch

    input_dir, output_dir = root / "input", root / "output"
    started = time.perf_counter()
    download_batch(NETWORK, date, WINDOW, input_dir, settings=settings)
    process_batch(input_dir, output_dir, date, models=models, settings=settings)
    return time.perf_counter() - started


def env_of(settings) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), **settings.to_env())


def start_stack(settings, env: dict, logs: Path, procs: list[subprocess.Popen]) -> None:
    """The two workers (and the API when present) into procs, waiting until each is ready."""
    from shared import worker

    for queue in ("download", "process"):
        out = open(logs / f"worker-{queue}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "services.cli", "worker", queue],
                                      cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
    for queue in (settings.QUEUE_DOWNLOAD, settings.QUEUE_PROCESS):
        # the process worker touches its heartbeat only after its models are loaded
        wait_for(worker.heartbeat_path(settings, queue).exists, 120, f"the {queue} worker")
    if has_api():
        settings.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)  # the API is unhealthy without it
        out = open(logs / "api.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "services.cli", "serve-api"],
                                      cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
        wait_for(lambda: http_status(f"{api_url(settings)}/health") == 200, 60, "the API")


def has_api() -> bool:
    return importlib.util.find_spec("services.api.app") is not None


def api_url(settings) -> str:
    return f"http://{settings.API_HOST}:{settings.API_PORT}"


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def visible(settings, date: str) -> bool:
    """The date's result as a client sees it: the API's metadata, else the published folder.

    The folder is checked first (a stat), so polling does not load the API while it waits.
    """
    from shared import storage

    version = storage.resolve(settings.OUTPUT_DIR / date)
    if version is None or not (version / storage.METADATA).is_file():
        return False
    return not has_api() or http_status(f"{api_url(settings)}/metadata/{date}") == 200


def wait_idle(procs: list[subprocess.Popen], timeout: float = 300) -> None:
    """Wait until the stack's processes (and their children) use almost no CPU.

    The API renders each newly published date in the background; a run must not pay for
    the previous run's rendering, so both paths start from an idle stack.
    """
    import psutil

    def busy_seconds() -> float:
        total = 0.0
        for proc in procs:
            try:
                tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
            except psutil.NoSuchProcess:
                continue
            for member in tree:
                try:
                    times = member.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
        return total

    def idle() -> bool:
        before = busy_seconds()
        time.sleep(0.5)
        return busy_seconds() - before < 0.05
    wait_for(idle, timeout, "the stack to go idle", interval=0)


def queued(settings, date: str, env: dict) -> tuple[float, dict]:
    """Seconds from `aml-miner enqueue` to the date's result being visible, and where they went."""
    started, wall = time.perf_counter(), time.time()
    enqueue(date, env)
    enqueue_s = time.perf_counter() - started
    wait_for(lambda: visible(settings, date) or failed(settings, date), 600,
             f"{date} to become visible")
    total = time.perf_counter() - started
    return total, breakdown(settings, date, wall, wall + total, enqueue_s)


def failed(settings, date: str, network: str = NETWORK) -> bool:
    """Stop waiting (and say why) when the chain failed instead of publishing."""
    from shared import jobs

    status = jobs.date_status(settings, network, date, WINDOW)
    if status.state == "failed":
        raise SystemExit(f"bench: {status.describe()}")
    return False


def breakdown(settings, date: str, t0: float, t_end: float, enqueue_s: float) -> dict:
    """Phases from the job records: CLI, waits for a worker, the two jobs, and until visible."""
    from shared import jobs

    conn = jobs.connect(settings)
    dl = jobs.fetch(conn, jobs.download_id(NETWORK, date, WINDOW, jobs.namespace(settings)))
    pr = jobs.fetch(conn, jobs.process_id(NETWORK, date, WINDOW, jobs.namespace(settings)))
    # the result is visible a moment before RQ records the job's end
    def ended():
        pr.refresh()
        return pr.ended_at is not None
    wait_for(ended, 30, "the process job's end in its record")
    ts = {k: v.timestamp() for k, v in (("dl_enq", dl.enqueued_at), ("dl_start", dl.started_at),
                                         ("dl_end", dl.ended_at), ("pr_start", pr.started_at),
                                         ("pr_end", pr.ended_at))}
    return {"enqueue cli": enqueue_s, "to download start": ts["dl_start"] - ts["dl_enq"],
            "download job": ts["dl_end"] - ts["dl_start"],
            "to process start": ts["pr_start"] - ts["dl_end"],
            "process job": ts["pr_end"] - ts["pr_start"], "to visible": t_end - ts["pr_end"],
            "before enqueue": ts["dl_enq"] - t0}


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def settings_for(work: Path, redis_url: str, s3_url: str):
    from shared.settings import Settings

    return Settings.from_env({}).replace(
        INPUT_DIR=work / "input", OUTPUT_DIR=work / "output", MODELS_DIR=REPO / "trained_models",
        HEARTBEAT_DIR=work / "heartbeat", REDIS_URL=redis_url, SCHEDULE_ENABLED=False,
        SOT_S3_ENDPOINT=s3_url, SOT_S3_BUCKET="bench-sot", SOT_S3_ACCESS_KEY="bench",
        SOT_S3_SECRET_KEY="bench", API_HOST="127.0.0.1", API_PORT=free_port(), LOG_LEVEL="WARNING",
        # Learning off: the chain measured is download -> process (a first start would
        # otherwise backfill and wait for a learner this benchmark does not run).
        LEARN_ENABLED=False)


def measure(settings, dates: list[str], work: Path) -> list[tuple[str, float, float]]:
    from services.processor import predictor
    from services.processor.models import load_models

    # On the engine the process worker uses (compiled trees by default), so both paths
    # predict alike.
    models = load_models(settings.MODELS_DIR, engine=predictor.engine_setting(settings),
                         cache_dir=settings.COMPILED_MODELS_DIR)
    env = env_of(settings)
    procs: list[subprocess.Popen] = []
    rows = []
    try:
        start_stack(settings, env, work, procs)
        for date in dates:  # interleaved, so a busy moment of the machine hits both paths alike
            wait_idle(procs)
            direct_s = direct(settings, date, models, work / "direct" / date)
            wait_idle(procs)
            rows.append((date, direct_s, *queued(settings, date, env)))
    finally:
        stop(procs)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000, help="alerts per sample date")
    parser.add_argument("--runs", type=int, default=5, help="dates measured (one per run)")
    parser.add_argument("--networks", type=int, default=1,
                        help=f"networks served (2-{len(NETWORK_NAMES)}: the networks mode)")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    if not 1 <= args.networks <= len(NETWORK_NAMES):
        parser.error(f"--networks must be 1-{len(NETWORK_NAMES)}, not {args.networks}")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-chain-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    redis_proc, redis_url = start_redis(work)
    s3, s3_url = start_s3()
    try:
        settings = settings_for(work, redis_url, s3_url)
        dates = [(FIRST_DATE + dt.timedelta(days=i)).isoformat() for i in range(args.runs)]
        if args.networks > 1:
            names = NETWORK_NAMES[:args.networks]
            settings = settings.replace(NETWORKS=names)
            upload_batches(settings, dates, args.alerts, work, names)
            runs = measure_networks(settings, dates, work)
        else:
            upload_batches(settings, dates, args.alerts, work)
            rows = measure(settings, dates, work)
    finally:
        s3.stop()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
    if args.networks > 1:
        report_networks(runs, args.alerts)
    else:
        report(rows, args.alerts)
    return 0


def measure_networks(settings, dates: list[str], work: Path) -> list[list[tuple]]:
    """Per run (one date of every network enqueued at once): each network's process job as
    (network, enqueued, start, end) in the worker's order."""
    env = env_of(settings)
    procs: list[subprocess.Popen] = []
    runs = []
    try:
        start_stack(settings, env, work, procs)
        for date in dates:
            wait_idle(procs)
            for network in settings.networks:
                enqueue(date, env, network)
            for network in settings.networks:
                wait_for(lambda: published(settings, date, network)
                         or failed(settings, date, network), 600,
                         f"{network} {date} to be published")
            runs.append(sorted(process_times(settings, date), key=lambda job: job[2]))
    finally:
        stop(procs)
    return runs


def enqueue(date: str, env: dict, network: str | None = None) -> None:
    argv = [sys.executable, "-m", "services.cli", "enqueue", "--processing-date", date]
    if network:
        argv += ["--network", network]
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0 or "enqueued:" not in out.stdout:
        raise SystemExit(f"bench: enqueue failed: {out.stdout}{out.stderr}")


def published(settings, date: str, network: str) -> bool:
    from shared import storage

    version = storage.resolve(settings.network_output_dir(network) / date)
    return version is not None and (version / storage.METADATA).is_file()


def process_times(settings, date: str) -> list[tuple[str, float, float, float]]:
    from shared import jobs

    conn = jobs.connect(settings)
    out = []
    for network in settings.networks:
        job = jobs.fetch(conn, jobs.process_id(network, date, WINDOW, jobs.namespace(settings)))
        wait_for(lambda: job.refresh() or job.ended_at is not None, 30,
                 f"{network} {date}'s process job end in its record")
        out.append((network, job.enqueued_at.timestamp(), job.started_at.timestamp(),
                    job.ended_at.timestamp()))
    return out


def report_networks(runs: list[list[tuple]], alerts: int) -> None:
    print(f"chain benchmark, {len(runs[0])} networks: {alerts} alerts per network and date, "
          "every network's date enqueued at once")
    gaps, ratios, waiting = [], [], []
    for jobs_run in runs:
        span = jobs_run[-1][3] - jobs_run[0][2]
        own = sum(end - start for _, _, start, end in jobs_run)
        run_gaps = [b[2] - a[3] for a, b in zip(jobs_run, jobs_run[1:])]
        # queued before the previous job ended: a gap is the worker's, not a download's
        waiting += [b[1] <= a[3] for a, b in zip(jobs_run, jobs_run[1:])]
        gaps += run_gaps
        ratios.append(own / span)
        order = ", ".join(f"{n} {e - s:.2f} s" for n, _, s, e in jobs_run)
        print(f"  process jobs: {order}; gaps between them "
              + ", ".join(f"{g * 1000:.0f} ms" for g in run_gaps)
              + f"; jobs' own time / span {own / span:.3f}")
    print(f"next job already queued when the previous ended: {sum(waiting)} of {len(waiting)}")
    print(f"median gap between process jobs {statistics.median(gaps) * 1000:.0f} ms, "
          f"largest {max(gaps) * 1000:.0f} ms; median jobs' time / span "
          f"{statistics.median(ratios):.3f} (1.000: no idle time between networks)")


def report(rows, alerts: int) -> None:
    target = "API /metadata/{date} = 200" if has_api() else "output/{date} published"
    print(f"chain benchmark: {alerts} alerts per date, enqueue -> {target}")
    for date, d, q, parts in rows:
        print(f"  {date}: direct {d:6.2f} s   queue {q:6.2f} s   overhead {q - d:+.2f} s")
        print("      " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    overhead = statistics.median(q - d for _, d, q, _ in rows)
    # Less noisy on a shared machine: the queue path minus its own two jobs' run times.
    own = statistics.median(q - p["download job"] - p["process job"] for _, _, q, p in rows)
    print(f"median overhead (queue - direct) {overhead:.2f} s; goal <= {GOAL_S:.1f} s; "
          f"ratio {overhead / GOAL_S:.2f} ({'met' if overhead <= GOAL_S else 'NOT met'})")
    print(f"median queue-path time outside the two jobs {own:.2f} s; ratio {own / GOAL_S:.2f}")


if __name__ == "__main__":
    sys.exit(main())
