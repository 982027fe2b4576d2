"""Benchmark: our download_batch against a bare boto3 parallel download_file of the same objects.

A ~100 MB sample batch (the generator's, money_flows padded with repeated rows to
reach the size) is uploaded to a moto S3 server started as its own process on
127.0.0.1, so the server does not share this process's GIL. Each round times:

  ours: download_batch(...) of a date not downloaded before (the daily case): list,
        META, labels, all files, sha256 of every file, fsync, DOWNLOAD.json, publish
  bare: one thread per object calling client.download_file with the same
        TransferConfig (no listing, no checks, no publish)

Both create their S3 client inside the timed part. Rounds alternate which goes
first, and start after an os.sync(). Goal (issue 3): ours <= 1.25x bare, i.e. >= 0.8x
bare throughput, judged on the ratio of the median times.

    python bench/bench_download.py [--mb 100] [--rounds 10] [--alerts 60000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import storage  # noqa: E402
from shared.s3 import make_client, transfer_config  # noqa: E402
from shared.settings import Settings  # noqa: E402

NETWORK, DATE, WINDOW = "bitcoin", "2025-10-26", 7
GOAL = 1.25
MB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    proc.kill()
    sys.exit("bench: moto server did not start within 30 s")


def padded_sot(root: Path, megabytes: int, alerts: int) -> None:
    """Write a sample batch in the SOT layout, money_flows repeated until the batch reaches size."""
    from shared import sample

    batch = sample.generate_batch(NETWORK, DATE, WINDOW, n_alerts=alerts, seed=0)
    prefix = sample.write_sot(batch, root)
    total = sum(p.stat().st_size for p in prefix.glob("*.parquet"))
    flows_size = (prefix / "money_flows.parquet").stat().st_size
    copies = max(1, round((megabytes * MB - total + flows_size) / flows_size))
    if copies > 1:
        batch.money_flows = pa.concat_tables([batch.money_flows] * copies)
        sample.write_sot(batch, root)


def our_download(settings: Settings, out: Path) -> float:
    from services.downloader.download import download_batch

    started = time.perf_counter()
    download_batch(NETWORK, DATE, WINDOW, out, settings=settings)
    return time.perf_counter() - started


def bare_download(settings: Settings, keys: list[str], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    client = make_client(settings)
    config = transfer_config(settings)
    with ThreadPoolExecutor(len(keys)) as pool:
        list(pool.map(lambda key: client.download_file(settings.SOT_S3_BUCKET, key,
                                                       str(out / key.replace("/", "_")),
                                                       Config=config), keys))
    return time.perf_counter() - started


def run_rounds(settings: Settings, keys: list[str], work: Path, rounds: int) -> tuple[list, list]:
    ours, bare = [], []
    for n in range(rounds):
        pair = [("ours", lambda: our_download(settings, work / f"ours{n}")),
                ("bare", lambda: bare_download(settings, keys, work / f"bare{n}"))]
        for name, run in (pair if n % 2 == 0 else pair[::-1]):
            os.sync()  # each run starts with no dirty pages left by the one before
            (ours if name == "ours" else bare).append(run())
        shutil.rmtree(work / f"ours{n}")  # outside the timing, like the bare folder
        shutil.rmtree(work / f"bare{n}")
        print(f"round {n + 1}: ours {ours[-1]:.3f} s, bare {bare[-1]:.3f} s, "
              f"ratio {ours[-1] / bare[-1]:.2f}", flush=True)
    return ours, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="batch size to reach (MB)")
    parser.add_argument("--rounds", type=int, default=10, help="even: each side goes first as often")
    parser.add_argument("--alerts", type=int, default=60000, help="alerts in the sample batch")
    args = parser.parse_args()
    from services.ops.upload import upload_tree

    proc, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        settings = Settings.from_env({}).replace(SOT_S3_ENDPOINT=endpoint, SOT_S3_BUCKET="bench",
                                                 SOT_S3_ACCESS_KEY="bench", SOT_S3_SECRET_KEY="bench")
        padded_sot(work / "sot", args.mb, args.alerts)
        upload_tree(work / "sot", settings)
        prefix = storage.sot_prefix(NETWORK, DATE, WINDOW)
        keys = [p.relative_to(work / "sot").as_posix() for p in sorted((work / "sot").rglob("*"))
                if p.is_file()]
        size = sum((work / "sot" / k).stat().st_size for k in keys)
        print(f"batch {prefix}: {len(keys)} objects, {size / MB:.1f} MB; concurrency "
              f"{settings.SOT_S3_MAX_CONCURRENCY}, parts {settings.SOT_S3_MULTIPART_CHUNK_MB} MB")
        ours, bare = run_rounds(settings, keys, work, args.rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    med_ours, med_bare = statistics.median(ours), statistics.median(bare)
    ratio = med_ours / med_bare
    per_round = statistics.median(o / b for o, b in zip(ours, bare))
    print(f"median: ours {med_ours:.3f} s ({size / MB / med_ours:.0f} MB/s), bare {med_bare:.3f} s "
          f"({size / MB / med_bare:.0f} MB/s); best: ours {min(ours):.3f} s, bare {min(bare):.3f} s")
    print(f"median of per-round ratios = {per_round:.2f}")
    print(f"ratio ours/bare = {ratio:.2f} (goal <= {GOAL}): {'OK' if ratio <= GOAL else 'OVER'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
