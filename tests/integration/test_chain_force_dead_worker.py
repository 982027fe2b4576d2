"""--force re-runs a date whose worker was killed, even when rq's execution record has expired."""

from __future__ import annotations

import time

import redis
from rq import Queue
from rq.executions import ExecutionRegistry
from rq.job import JobStatus

from shared import jobs
from tests import redis_db

REDIS_URL = redis_db.url(12)  # the chain tests' database


def test_force_clears_a_failed_job_whose_execution_record_is_gone(settings):
    s = settings.replace(REDIS_URL=REDIS_URL, REDIS_NAMESPACE="")
    conn = redis.Redis.from_url(REDIS_URL)
    conn.flushdb()
    dl_id, _ = jobs.chain_ids(s.NETWORK, "2025-09-30", s.WINDOW_DAYS)
    job = Queue(s.QUEUE_DOWNLOAD, connection=conn).enqueue(
        "services.downloader.jobs.download_job", job_id=dl_id,
        kwargs={"network": s.NETWORK, "processing_date": "2025-09-30", "window_days": s.WINDOW_DAYS})
    job.set_status(JobStatus.FAILED)
    # What a killed worker leaves: the job's execution registry names an execution that expired.
    conn.zadd(ExecutionRegistry(job.id, connection=conn).key, {"deadbeef": time.time() + 3600})

    result = jobs.enqueue_download(s, s.NETWORK, "2025-09-30", s.WINDOW_DAYS, force=True)

    assert result.enqueued, result.message
    assert jobs.fetch(conn, dl_id).get_status() == JobStatus.QUEUED
    conn.flushdb()
