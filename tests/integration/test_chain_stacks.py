"""Two stacks on one real Redis share nothing: queues, job records, schedule ticks.

Each stack's namespace comes from its OUTPUT_DIR (REDIS_NAMESPACE=auto). Real `aml-miner
worker process --burst` subprocesses; stack B's worker never takes stack A's job, and a date
A published is still B's to publish (done means published in B's own OUTPUT_DIR).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from rq import Queue
from rq.job import JobStatus

from shared import jobs, schedule, storage
from shared.settings import SettingsError
from tests.chain_fixtures import REPO, chain_settings, conn, process_env  # noqa: F401
from tests.processor_fixtures import DATE, generated_input

NET, DAYS = "bitcoin", 7


def stack(chain_settings, tmp_path, name):
    s = chain_settings.replace(REDIS_NAMESPACE="auto", PREDICT_ENGINE="lightgbm",
                               INPUT_DIR=tmp_path / name / "input",
                               OUTPUT_DIR=tmp_path / name / "output",
                               HEARTBEAT_DIR=tmp_path / name / "heartbeat")
    generated_input(s.INPUT_DIR, n_alerts=400, seed=4)
    return s


def burst(settings) -> subprocess.CompletedProcess:
    """One stack's real process worker, until its queue is empty."""
    return subprocess.run([sys.executable, "-m", "services.cli", "worker", "process", "--burst"],
                          cwd=REPO, env=process_env(settings), capture_output=True, text=True,
                          timeout=600)


def test_two_stacks_on_one_redis_each_publish_their_own_date(chain_settings, conn, tmp_path):
    a, b = stack(chain_settings, tmp_path, "a"), stack(chain_settings, tmp_path, "b")
    assert jobs.namespace(a) != jobs.namespace(b)
    queued = jobs.enqueue_process(a, NET, DATE, DAYS, conn)
    assert queued.enqueued and queued.job_id.startswith(jobs.namespace(a) + "-process-")

    assert burst(b).returncode == 0  # B's worker: A's job is not on its queue
    assert jobs.fetch(conn, queued.job_id).get_status() == JobStatus.QUEUED
    assert storage.resolve(b.OUTPUT_DIR / DATE) is None

    assert burst(a).returncode == 0
    assert jobs.fetch(conn, queued.job_id).get_status() == JobStatus.FINISHED
    assert jobs.date_status(a, NET, DATE, DAYS, conn).state == "published"
    # A's record of the date is not B's: B has not published it, so it is B's to do
    assert jobs.date_status(b, NET, DATE, DAYS, conn).state == "downloaded"
    theirs = jobs.enqueue_process(b, NET, DATE, DAYS, conn)
    assert theirs.enqueued and theirs.job_id != queued.job_id
    assert burst(b).returncode == 0
    assert jobs.date_status(b, NET, DATE, DAYS, conn).state == "published"
    assert storage.resolve(b.OUTPUT_DIR / DATE) != storage.resolve(a.OUTPUT_DIR / DATE)
    names = {q.name for q in Queue.all(connection=conn)}
    assert names <= {jobs.queue_name(a, "process"), jobs.queue_name(b, "process")}


def test_two_stacks_arm_their_own_schedule_ticks(chain_settings, conn, tmp_path):
    a = chain_settings.replace(REDIS_NAMESPACE="auto", SCHEDULE_ENABLED=True,
                               OUTPUT_DIR=tmp_path / "a" / "output")
    b = a.replace(OUTPUT_DIR=tmp_path / "b" / "output")
    now = dt.datetime(2025, 10, 26, 12, 0, tzinfo=dt.timezone.utc)
    armed_a = schedule.ensure_armed(a, conn, now)
    armed_b = schedule.ensure_armed(b, conn, now)
    assert len(armed_a) == len(armed_b) == 2 and not set(armed_a) & set(armed_b)
    assert schedule.ensure_armed(a, conn, now) == []  # armed once per stack


def test_a_named_namespace_is_checked_and_empty_means_none(chain_settings):
    assert jobs.namespace(chain_settings.replace(REDIS_NAMESPACE="stack_2")) == "stack_2"
    assert jobs.queue_name(chain_settings.replace(REDIS_NAMESPACE=""), "download") == "download"
    with pytest.raises(SettingsError, match="REDIS_NAMESPACE='a:b'"):
        jobs.namespace(chain_settings.replace(REDIS_NAMESPACE="a:b"))
