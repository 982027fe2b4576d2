"""A processing job killed mid-run is run once more by itself; bad input fails at once.

Real redis-server, real `aml-miner worker process` subprocesses killed with SIGKILL. The job
is held mid-run by the date's publish lock (taken by the test), so the kill lands while it
runs, without any timing guess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq.job import JobStatus

from shared import jobs, publish_lock, storage
from tests.chain_fixtures import (REPO, chain_settings, conn, process_env,  # noqa: F401
                                  use_env, wait_for, work)
from tests.processor_fixtures import DATE, generated_input

NET, DAYS = "bitcoin", 7


@pytest.fixture
def s(chain_settings):
    # the test holds the date's lock without refreshing it: never stale within a test
    settings = chain_settings.replace(PREDICT_ENGINE="lightgbm", PUBLISH_LOCK_STALE_SECONDS=3600)
    generated_input(settings.INPUT_DIR, n_alerts=600, seed=3)
    return settings


def start_worker(settings) -> subprocess.Popen:
    """A process worker in a session of its own, so a SIGKILL of its group spares the tests."""
    log = (Path(settings.OUTPUT_DIR).parent / "worker.log").open("a")
    return subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "process"],
                            cwd=REPO, env=process_env(settings), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def horse_of(proc: subprocess.Popen) -> int | None:
    """The work horse RQ forked for the job in hand: the worker's child that leads a process
    group of its own (RQ's horse calls setpgrp; its scheduler child does not)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    horses = [int(c) for c in children if _pgid(int(c)) == int(c)]
    return horses[0] if horses else None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def running(conn, jid: str):
    job = jobs.fetch(conn, jid)
    return job is not None and job.get_status() == JobStatus.STARTED and job


def end(proc: subprocess.Popen) -> None:
    """SIGKILL the worker, its horse (a process group of its own) and its scheduler."""
    if proc.poll() is None:
        horse = horse_of(proc)
        os.killpg(proc.pid, signal.SIGKILL)
        if horse:
            os.kill(horse, signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_killed_work_horse_is_retried_once_and_the_retry_publishes(s, conn):
    lock = publish_lock.acquire(s.OUTPUT_DIR, DATE, wait_s=0, stale_s=3600)
    queued = jobs.enqueue_process(s, NET, DATE, DAYS, conn)
    assert queued.enqueued and jobs.fetch(conn, queued.job_id).retries_left == 1
    proc = start_worker(s)
    try:
        wait_for(lambda: running(conn, queued.job_id) and horse_of(proc), timeout=120,
                 what="the process job to start")
        first = horse_of(proc)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: running(conn, queued.job_id) and horse_of(proc) not in (None, first),
                 timeout=120, what="the killed job to run again by itself")
        assert jobs.fetch(conn, queued.job_id).retries_left == 0
        assert storage.resolve(s.OUTPUT_DIR / DATE) is None  # nothing half-published
        publish_lock.release(s.OUTPUT_DIR, DATE, lock)
        wait_for(lambda: jobs.fetch(conn, queued.job_id).get_status() == JobStatus.FINISHED,
                 timeout=300, what="the retry to publish")
    finally:
        publish_lock.release(s.OUTPUT_DIR, DATE, lock)
        end(proc)
    metadata = storage.resolve(s.OUTPUT_DIR / DATE) / storage.METADATA
    assert '"alert_count": 600' in metadata.read_text()
    assert jobs.date_status(s, NET, DATE, DAYS, conn).state == "published"


def test_a_killed_worker_s_job_runs_once_more_then_a_second_kill_fails_it(s, conn):
    """A container restart: the whole worker dies; its job is retried once, not twice."""
    lock = publish_lock.acquire(s.OUTPUT_DIR, DATE, wait_s=0, stale_s=3600)
    jid = jobs.enqueue_process(s, NET, DATE, DAYS, conn).job_id
    try:
        for kill in (1, 2):
            proc = start_worker(s)
            try:
                wait_for(lambda: running(conn, jid) and horse_of(proc), timeout=120,
                         what=f"the process job to start (run {kill})")
            finally:
                end(proc)  # SIGKILL of the worker and its horse, as a container kill
            # its execution heartbeat lapses later; a timestamp past it settles it now
            jobs.reap_abandoned(s, conn, now=time.time() + 3600)
            status = jobs.fetch(conn, jid).get_status()
            if kill == 1:
                assert status == JobStatus.QUEUED and jobs.fetch(conn, jid).retries_left == 0
        assert status == JobStatus.FAILED
        state = jobs.date_status(s, NET, DATE, DAYS, conn)
        assert state.state == "failed" and "died mid-job" in state.reason
    finally:
        publish_lock.release(s.OUTPUT_DIR, DATE, lock)


def test_bad_input_fails_at_once_without_the_retry(s, conn, use_env):
    use_env(s)
    alerts = storage.resolve(s.INPUT_DIR / DATE) / "alerts.parquet"
    alerts.chmod(0o644)
    alerts.write_bytes(alerts.read_bytes()[:100])
    jid = jobs.enqueue_process(s, NET, DATE, DAYS, conn).job_id
    work(conn, s.QUEUE_PROCESS)
    job = jobs.fetch(conn, jid)
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0
    assert "alerts.parquet" in jobs.failure_reason(job)
    assert storage.resolve(s.OUTPUT_DIR / DATE) is None
