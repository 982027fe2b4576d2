"""`aml-miner download` as a subprocess against moto on loopback: exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.s3_fixtures import (DATE, fake_batch, free_port, moto_endpoint, proxy,  # noqa: F401
                               s3_proxy, sot)

ENV_KEYS = ("SOT_S3_ENDPOINT", "SOT_S3_BUCKET", "SOT_S3_REGION", "SOT_S3_ACCESS_KEY",
            "SOT_S3_SECRET_KEY", "SOT_S3_MAX_ATTEMPTS", "SOT_S3_RETRY_MODE",
            "SOT_S3_CONNECT_TIMEOUT", "SOT_S3_READ_TIMEOUT")


def _run(sot, *args, **env_changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOT_", "AWS_"))}
    env.update({k: str(getattr(sot.settings, k)) for k in ENV_KEYS})
    env.update({k: str(v) for k, v in env_changes.items()})
    cmd = [sys.executable, "-m", "services.cli", "download", "--network", "bitcoin",
           "--processing-date", DATE, "--days", "7",
           "--output-dir", str(sot.settings.INPUT_DIR), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_download_then_rerun_skips_then_force_fetches(sot):
    sot.put_batch(fake_batch())
    first = _run(sot)
    assert first.returncode == 0, first.stderr
    assert "downloaded (6 files" in first.stdout
    assert "batch snapshots/bitcoin/2025-10-26/7/: 6 files" in first.stdout  # the summary log
    assert "fetched snapshots/bitcoin/2025-10-26/7/alerts.parquet" in first.stdout
    again = _run(sot)
    assert again.returncode == 0 and "already there, skipped" in again.stdout
    forced = _run(sot, "--force")
    assert forced.returncode == 0 and "downloaded (6 files" in forced.stdout
    assert (sot.settings.INPUT_DIR / DATE / "alerts.parquet").is_file()


def test_a_broken_batch_exits_1_with_one_line_naming_the_key(sot):
    files = fake_batch()
    del files["clusters.parquet"]
    sot.put_batch(files)
    result = _run(sot)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "aml-miner download: error: snapshots/bitcoin/2025-10-26/7/clusters.parquet: "
        "required file is missing from the bucket"]
    assert not (sot.settings.INPUT_DIR / DATE).exists()


def test_an_unreachable_server_exits_75_to_say_try_later(sot):
    result = _run(sot, SOT_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}", SOT_S3_MAX_ATTEMPTS=1)
    assert result.returncode == 75
    assert "temporary failure, try again later" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_configuration_and_arguments_exit_non_zero_with_a_message(sot):
    half_keys = _run(sot, SOT_S3_SECRET_KEY="")
    assert half_keys.returncode == 1 and "SOT_S3_SECRET_KEY is empty" in half_keys.stderr
    bad_date = subprocess.run([sys.executable, "-m", "services.cli", "download",
                               "--processing-date", "2025-02-30", "--output-dir",
                               str(sot.settings.INPUT_DIR)], cwd=REPO, capture_output=True,
                              text=True, timeout=60)
    assert bad_date.returncode == 1
    assert "processing_date: processing date '2025-02-30' is not a calendar date" in bad_date.stderr


def test_a_killed_download_leaves_no_date_folder_and_the_next_run_completes(sot):
    import signal
    import time

    sot.put_batch(fake_batch())
    sot.proxy.stall(1, 20.0, key_suffix="clusters.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOT_", "AWS_"))}
    env.update({k: str(getattr(sot.settings, k)) for k in ENV_KEYS}, SOT_S3_READ_TIMEOUT="30")
    cmd = [sys.executable, "-m", "services.cli", "download", "--processing-date", DATE,
           "--output-dir", str(sot.settings.INPUT_DIR)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not sot.proxy.requests("GET", "clusters.parquet") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sot.proxy.requests("GET", "clusters.parquet"), "the download never reached clusters"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not (sot.settings.INPUT_DIR / DATE).exists()
    staged = list((sot.settings.INPUT_DIR / ".versions").iterdir())
    assert len(staged) == 1  # the killed run's staging folder: never published
    result = _run(sot)
    assert result.returncode == 0, result.stderr
    assert (sot.settings.INPUT_DIR / DATE / "clusters.parquet").read_bytes() == \
        fake_batch()["clusters.parquet"]


def test_a_date_being_published_by_another_run_exits_75_naming_it(sot):
    """A manual download beside a worker's: the date stays as it was; the message names it."""
    from shared import publish_lock

    sot.put_batch(fake_batch())
    assert _run(sot).returncode == 0
    before = (sot.settings.INPUT_DIR / DATE).resolve()
    record = publish_lock.acquire(sot.settings.INPUT_DIR, DATE, wait_s=0, stale_s=120)
    try:
        result = _run(sot, "--force", PUBLISH_LOCK_WAIT_SECONDS=0)
    finally:
        publish_lock.release(sot.settings.INPUT_DIR, DATE, record)
    assert result.returncode == 75, result.stderr
    assert (f"date {DATE} is being published by {record['host']} pid {record['pid']} since "
            f"{record['since']}") in result.stderr
    assert (sot.settings.INPUT_DIR / DATE).resolve() == before
