"""The download job on the queue, against the loopback S3 server (moto behind the fault proxy)."""

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest
from rq import Queue
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from shared import jobs
from tests.chain_fixtures import (CHAIN, REPO, RQ, cli, conn, process_env, use_env,  # noqa: F401
                                  wait_for, work)
from tests.disk_fixtures import small_disk  # noqa: F401
from tests.s3_fixtures import (DATE, NETWORK, WINDOW, fake_batch, moto_endpoint,  # noqa: F401
                               proxy, s3_proxy, sot)

DL_ID = f"download-{NETWORK}-{DATE}-{WINDOW}"
PR_ID = f"process-{NETWORK}-{DATE}-{WINDOW}"


@pytest.fixture
def s(sot, conn, use_env):
    """Chain settings whose S3 is the test bucket behind the proxy; botocore tries once."""
    return use_env(sot.settings.replace(**CHAIN, SOT_S3_MAX_ATTEMPTS=1, JOB_RETRIES=2))


def dl_queue(settings, conn):
    return Queue(settings.QUEUE_DOWNLOAD, connection=conn)


def test_download_job_publishes_input_and_chains_the_process_job(sot, s, conn):
    files = fake_batch(50_000)
    sot.put_batch(files)
    assert jobs.enqueue_download(s, NETWORK, DATE, WINDOW).enqueued
    work(conn, s.QUEUE_DOWNLOAD)
    job = jobs.fetch(conn, DL_ID)
    assert job.get_status() == JobStatus.FINISHED
    assert (s.INPUT_DIR / DATE / "alerts.parquet").read_bytes() == files["alerts.parquet"]
    meta = job.get_meta()
    assert meta["step"] == "chained" and meta["files"] >= 5 and meta["process_job"] == PR_ID
    assert meta["bytes"] >= sum(len(b) for b in files.values())
    process = jobs.fetch(conn, PR_ID)
    assert process.get_status() == JobStatus.QUEUED and process.func_name == jobs.PROCESS_JOB
    assert process.origin == s.QUEUE_PROCESS and process.timeout == s.JOB_TIMEOUT_PROCESS
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert (status.state, status.stage) == ("queued", "process")


def test_a_checksum_mismatch_fails_at_once_with_a_reason_and_no_process_job(sot, s, conn, caplog):
    files = fake_batch(20_000)
    sot.put_batch(files)
    sot.put(f"snapshots/{NETWORK}/{DATE}/{WINDOW}/alerts.parquet", b"tampered" * 100)
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    with caplog.at_level(logging.INFO):
        work(conn, s.QUEUE_DOWNLOAD)
    job = jobs.fetch(conn, DL_ID)
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0  # JOB_RETRIES=2 unused
    # One job run: the download looked again once after SOT_CHECKSUM_RETRY_SECONDS, then failed.
    assert len(sot.proxy.requests("GET", "alerts.parquet")) == 2
    assert "fetching it again in 0 s (once" in caplog.text
    assert DL_ID in FailedJobRegistry(s.QUEUE_DOWNLOAD, connection=conn).get_job_ids()
    assert jobs.fetch(conn, PR_ID) is None  # nothing deferred, nothing queued
    assert Queue(s.QUEUE_PROCESS, connection=conn).count == 0
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "failed" and "alerts.parquet" in status.reason
    assert "ChecksumMismatch" in status.reason
    assert "failed permanently" in caplog.text and "alerts.parquet" in caplog.text
    assert not (s.INPUT_DIR / DATE).exists()


def test_a_transient_s3_failure_is_retried_by_rq_and_then_succeeds(sot, s, conn, use_env):
    s = use_env(s.replace(JOB_RETRY_INTERVALS=("1",)))  # the retry goes through RQ's scheduler
    sot.put_batch(fake_batch(20_000))
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    sot.proxy.fail(times=100, status=503, key_suffix="alerts.parquet")  # outlasts botocore's tries
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=1)
    sot.proxy.reset()  # the S3 server recovers
    job = jobs.fetch(conn, DL_ID)
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 1
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "queued" and "retry at" in status.reason and "503" in status.reason
    registry = ScheduledJobRegistry(s.QUEUE_DOWNLOAD, connection=conn)
    due = registry.get_scheduled_time(job)
    wait_for(lambda: dt.datetime.now(dt.timezone.utc) >= due, timeout=5, what="the retry time")
    work(conn, s.QUEUE_DOWNLOAD, scheduler=True)
    assert job.get_status() == JobStatus.FINISHED
    assert "error" not in job.get_meta()
    assert jobs.fetch(conn, PR_ID).get_status() == JobStatus.QUEUED


def test_a_full_disk_is_retried_by_rq_with_backoff_and_the_cli_says_try_later(
        sot, s, conn, use_env, small_disk):
    s = use_env(s.replace(INPUT_DIR=small_disk.path, JOB_RETRY_INTERVALS=("1",)))
    sot.put_batch(fake_batch(200_000))  # ~1 MB for a 256 KB disk
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=1)
    job = jobs.fetch(conn, DL_ID)
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 1
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "queued" and "No space left on device" in status.reason
    done = cli("download", "--processing-date", DATE, env=process_env(s))
    assert done.returncode == 75 and "temporary failure" in done.stderr
    small_disk.grow(64 * 1024)  # the operator freed space
    due = ScheduledJobRegistry(s.QUEUE_DOWNLOAD, connection=conn).get_scheduled_time(job)
    wait_for(lambda: dt.datetime.now(dt.timezone.utc) >= due, timeout=5, what="the retry time")
    work(conn, s.QUEUE_DOWNLOAD, scheduler=True)
    assert job.get_status() == JobStatus.FINISHED


def test_a_date_without_alerts_fails_at_once_saying_so(sot, s, conn):
    files = fake_batch()
    del files["alerts.parquet"], files["clusters.parquet"]
    sot.put_batch(files)
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD)
    job = jobs.fetch(conn, DL_ID)
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert "NoAlertsInBatch" in status.reason and "has no alerts.parquet" in status.reason
    assert "files there: META.json, features.parquet, money_flows.parquet" in status.reason


def test_retries_run_out_into_a_failure_with_the_last_reason(sot, s, conn, caplog):
    sot.put_batch(fake_batch(20_000))
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    sot.proxy.fail(times=100, status=500, key_suffix="alerts.parquet")
    with caplog.at_level(logging.WARNING, logger="services.downloader.jobs"):
        work(conn, s.QUEUE_DOWNLOAD)
    job = jobs.fetch(conn, DL_ID)
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0
    tries = [r for r in caplog.records if r.name == "services.downloader.jobs"]
    assert len(tries) == 3  # the first try and JOB_RETRIES=2 retries
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "failed" and "TransientDownloadError" in status.reason
    assert jobs.fetch(conn, PR_ID) is None


def test_a_missing_old_batch_fails_at_once_but_a_fresh_one_is_retried(sot, s, conn):
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=1)
    assert jobs.fetch(conn, DL_ID).get_status() == JobStatus.FAILED
    assert "BatchNotFound" in jobs.date_status(s, NETWORK, DATE, WINDOW).reason
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    fresh = jobs.enqueue_download(s, NETWORK, today, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=1)
    job = jobs.fetch(conn, fresh.job_id)
    # the SOT may still publish today's batch: retried
    assert job.get_status() == JobStatus.QUEUED and job.retries_left == 1


def test_rq_enqueue_from_the_readme_reaches_the_same_job(sot, s, conn):
    sot.put_batch(fake_batch(20_000))
    command = [RQ, "enqueue", "-u", s.REDIS_URL, "-q", s.QUEUE_DOWNLOAD,
               jobs.DOWNLOAD_JOB, f"network={NETWORK}", f"processing_date={DATE}",
               f"window_days={WINDOW}"]
    for _ in range(2):  # twice: the second hands off to the already queued job
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=REPO)
        assert out.returncode == 0, out.stderr
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=2)  # the two hand-offs
    canonical = jobs.fetch(conn, DL_ID)
    assert canonical.get_status() == JobStatus.QUEUED
    assert canonical.retries_left == s.JOB_RETRIES and canonical.timeout == s.JOB_TIMEOUT_DOWNLOAD
    work(conn, s.QUEUE_DOWNLOAD)
    assert canonical.get_status() == JobStatus.FINISHED
    assert jobs.fetch(conn, PR_ID).get_status() == JobStatus.QUEUED
    assert (s.INPUT_DIR / DATE / "alerts.parquet").exists()


def test_rq_enqueue_with_a_bad_date_fails_at_once_naming_it(s, conn):
    command = [RQ, "enqueue", "-u", s.REDIS_URL, "-q", s.QUEUE_DOWNLOAD, "--retry-max", "3",
               jobs.DOWNLOAD_JOB, f"network={NETWORK}", "processing_date=2025-02-30",
               f"window_days={WINDOW}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=REPO)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.split("job-id '")[1].split("'")[0]
    work(conn, s.QUEUE_DOWNLOAD)
    job = jobs.fetch(conn, job_id)
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0  # --retry-max unused
    assert "2025-02-30" in jobs.failure_reason(job)


def test_the_download_worker_never_imports_lightgbm(sot, s, conn, tmp_path):
    """Run the real `aml-miner worker download` with a lightgbm that reports any import of it."""
    sot.put_batch(fake_batch(20_000))
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    trap, marker = tmp_path / "trap", tmp_path / "lightgbm-imported"
    for name in ("lightgbm", "sklearn"):
        (trap / name).mkdir(parents=True)
        (trap / name / "__init__.py").write_text(textwrap.dedent(f"""
            import os
            open({str(marker)!r}, "a").write("{name} in pid %d\\n" % os.getpid())
            raise ImportError("the download worker must not import {name}")
        """))
    # services.processor.cli (argparse only) is loaded by the dispatcher; the processor is not.
    script = ("import sys; from services.cli import main;"
              " rc = main(['worker', 'download', '--burst']);"
              " print('LOADED', sorted(m for m in sys.modules if m in ('lightgbm', 'sklearn')"
              " or m.startswith('services.processor.') and m != 'services.processor.cli'));"
              " sys.exit(rc)")
    env = process_env(s, PYTHONPATH=os.pathsep.join([str(trap), str(REPO)]))
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "LOADED []" in out.stdout
    assert not marker.exists(), marker.read_text()
    assert jobs.fetch(conn, DL_ID).get_status() == JobStatus.FINISHED  # ran in a forked horse
    assert jobs.fetch(conn, PR_ID).get_status() == JobStatus.QUEUED


def test_cli_status_shows_the_download_progress(sot, s, conn):
    sot.put_batch(fake_batch(20_000))
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD)
    out = cli("status", "--processing-date", DATE, "--json", env=process_env(s))
    status = json.loads(out.stdout)
    assert status["state"] == "queued" and status["stage"] == "process"


def test_status_says_downloading_while_a_real_worker_downloads(sot, s, conn):
    s = s.replace(SOT_S3_READ_TIMEOUT=10.0)
    sot.put_batch(fake_batch(20_000))
    sot.proxy.stall(times=1, seconds=3, key_suffix="alerts.parquet")  # a slow GET (then dropped)
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "download"],
                            cwd=REPO, env=process_env(s), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def downloading():  # RQ marks the job started a moment before the job records its step
        status = jobs.date_status(s, NETWORK, DATE, WINDOW)
        return status if status.progress.get("step") == "downloading" else None
    try:
        status = wait_for(downloading, timeout=30, what="the download to start")
        assert status.state == "downloading" and status.stage == "download"
        wait_for(lambda: jobs.date_status(s, NETWORK, DATE, WINDOW).stage == "process",
                 timeout=60, what="the download to finish")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_download_killed_with_its_worker_is_retried(sot, s, conn):
    import psutil

    s = s.replace(SOT_S3_READ_TIMEOUT=60.0)
    sot.put_batch(fake_batch(20_000))
    sot.proxy.stall(times=1, seconds=20, key_suffix="alerts.parquet")  # still running when killed
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "download"],
                            cwd=REPO, env=process_env(s), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    job = jobs.fetch(conn, DL_ID)
    wait_for(lambda: job.get_meta().get("step") == "downloading", timeout=30,
             what="the download to start")
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for member in tree:  # worker and work horse at once, as a container kill does
        member.kill()
    psutil.wait_procs(tree, timeout=30)
    jobs.reap_abandoned(s, conn, now=time.time() + 3600)  # once its heartbeat has lapsed
    job.refresh()
    assert job.get_status() == JobStatus.QUEUED and job.retries_left == 1
    work(conn, s.QUEUE_DOWNLOAD)
    assert job.get_status() == JobStatus.FINISHED
    assert jobs.fetch(conn, PR_ID).get_status() == JobStatus.QUEUED
