"""Enqueue rules and date status on a real Redis (no job here runs the download or process)."""

import datetime as dt
import json

from rq import Queue
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry

from shared import jobs, schedule, storage
from tests.chain_fixtures import (chain_settings, cli, conn, process_env,  # noqa: F401
                                  use_env, work)

DATE = "2025-10-26"


def publish_output(settings, network="bitcoin", window_days=7) -> str:
    """A published output folder for DATE, as the processor leaves it."""
    target = storage.date_dir(settings.OUTPUT_DIR, DATE)
    with storage.staging_dir(target) as tmp:
        (tmp / storage.METADATA).write_text(json.dumps(
            {"processing_date": DATE, "network": network, "window_days": window_days}))
        storage.publish(tmp, target)
    return storage.resolve(target).name


def fail_under_canonical_id(settings, conn):
    """A job under the date's download id that really fails in a worker (a bad argument)."""
    Queue(settings.QUEUE_DOWNLOAD, connection=conn).enqueue_call(
        "shared.jobs.window", args=("seven",), job_id=jobs.download_id("bitcoin", DATE, 7))
    work(conn, settings.QUEUE_DOWNLOAD)


def test_enqueue_queues_the_canonical_job_with_retry_and_timeout(chain_settings, conn):
    s = chain_settings.replace(JOB_RETRIES=2, JOB_RETRY_INTERVALS=("10", "60"),
                               JOB_TIMEOUT_DOWNLOAD=77)
    result = jobs.enqueue_download(s, "bitcoin", DATE, 7)
    assert result.enqueued and result.job_id == "download-bitcoin-2025-10-26-7"
    job = jobs.fetch(conn, result.job_id)
    assert job.func_name == jobs.DOWNLOAD_JOB and job.origin == s.QUEUE_DOWNLOAD
    assert job.kwargs == {"network": "bitcoin", "processing_date": DATE, "window_days": 7,
                          "force": False, "process": True}
    assert (job.timeout, job.retries_left, job.retry_intervals) == (77, 2, [10, 60])
    assert jobs.date_status(s, "bitcoin", DATE, 7).state == "queued"


def test_duplicate_enqueue_is_a_no_op_that_says_so(chain_settings, conn):
    first = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7)
    again = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7)
    forced = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7, force=True)
    assert first.enqueued and not again.enqueued and not forced.enqueued
    assert "already queued" in again.message and "already queued" in forced.message
    assert Queue(chain_settings.QUEUE_DOWNLOAD, connection=conn).count == 1


def test_other_network_or_window_is_another_job(chain_settings, conn):
    assert jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7).enqueued
    assert jobs.enqueue_download(chain_settings, "bitcoin", DATE, 30).enqueued
    assert jobs.enqueue_download(chain_settings, "ethereum", DATE, 7).enqueued
    assert Queue(chain_settings.QUEUE_DOWNLOAD, connection=conn).count == 3


def test_a_published_date_needs_force_to_run_again(chain_settings, conn):
    version = publish_output(chain_settings)
    status = jobs.date_status(chain_settings, "bitcoin", DATE, 7)
    assert (status.state, status.version) == ("published", version)
    plain = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7)
    assert not plain.enqueued
    assert "already published" in plain.message and "--force" in plain.message
    forced = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7, force=True)
    assert forced.enqueued
    assert jobs.fetch(conn, forced.job_id).kwargs["force"] is True


def test_output_of_another_network_does_not_count_as_published(chain_settings, conn):
    publish_output(chain_settings, network="ethereum")
    assert jobs.date_status(chain_settings, "bitcoin", DATE, 7).state == "not-enqueued"
    assert jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7).enqueued


def test_a_failed_date_shows_its_reason_and_force_replaces_the_record(chain_settings, conn):
    fail_under_canonical_id(chain_settings, conn)
    status = jobs.date_status(chain_settings, "bitcoin", DATE, 7)
    assert status.state == "failed" and "window_days='seven' is not an integer" in status.reason
    plain = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7)
    assert not plain.enqueued and "failed earlier" in plain.message
    forced = jobs.enqueue_download(chain_settings, "bitcoin", DATE, 7, force=True)
    assert forced.enqueued
    job = jobs.fetch(conn, forced.job_id)
    assert job.func_name == jobs.DOWNLOAD_JOB and job.get_status() == JobStatus.QUEUED
    assert job.latest_result() is None  # the old failure's result went with the old record
    assert jobs.date_status(chain_settings, "bitcoin", DATE, 7).state == "queued"


def test_enqueue_process_replaces_an_ended_record_but_not_an_active_one(chain_settings, conn):
    first = jobs.enqueue_process(chain_settings, "bitcoin", DATE, 7, connection=conn)
    again = jobs.enqueue_process(chain_settings, "bitcoin", DATE, 7, connection=conn)
    assert first.enqueued and not again.enqueued and "queued" in again.message
    jobs.fetch(conn, first.job_id).delete()
    Queue(chain_settings.QUEUE_PROCESS, connection=conn).enqueue_call(
        "shared.jobs.window", args=(0,), job_id=first.job_id)
    work(conn, chain_settings.QUEUE_PROCESS)
    assert jobs.fetch(conn, first.job_id).get_status() == JobStatus.FAILED
    assert jobs.enqueue_process(chain_settings, "bitcoin", DATE, 7, connection=conn).enqueued
    assert jobs.fetch(conn, first.job_id).func_name == jobs.PROCESS_JOB


def test_cli_enqueue_and_status(chain_settings, conn):
    env = process_env(chain_settings)
    out = cli("enqueue", "--processing-date", DATE, env=env)
    assert out.returncode == 0, out.stderr
    assert "download-bitcoin-2025-10-26-7: enqueued" in out.stdout
    again = cli("enqueue", "--processing-date", DATE, env=env)
    assert "not enqueued" in again.stdout and "already queued" in again.stdout
    status = cli("status", "--processing-date", DATE, "--json", env=env)
    assert status.returncode == 0 and json.loads(status.stdout)["state"] == "queued"
    bad = cli("enqueue", "--processing-date", "2025-02-30", env=env)
    assert bad.returncode == 2 and "2025-02-30" in bad.stderr
    bad_env = process_env(chain_settings.replace(JOB_RETRY_INTERVALS=("soon",)))
    bad = cli("enqueue", "--processing-date", "2025-10-27", env=bad_env)
    assert bad.returncode == 2 and "JOB_RETRY_INTERVALS" in bad.stderr


def test_cli_status_of_a_failed_date_exits_1_with_the_reason(chain_settings, conn):
    fail_under_canonical_id(chain_settings, conn)
    out = cli("status", "--processing-date", DATE, env=process_env(chain_settings))
    assert out.returncode == 1
    assert "failed" in out.stdout and "is not an integer" in out.stdout


def test_schedule_arms_once_however_many_workers_start(chain_settings, conn):
    s = chain_settings.replace(SCHEDULE_ENABLED=True)
    now = dt.datetime(2025, 10, 26, 13, 0, tzinfo=dt.timezone.utc)
    armed = schedule.ensure_armed(s, conn, now=now)
    assert armed == ["schedule-bitcoin-7-20251026T0015", "schedule-bitcoin-7-20251027T0015"]
    assert schedule.ensure_armed(s, conn, now=now) == []
    registry = ScheduledJobRegistry(s.QUEUE_DOWNLOAD, connection=conn)
    assert sorted(registry.get_job_ids()) == sorted(armed)
    assert schedule.ensure_armed(s.replace(SCHEDULE_ENABLED=False), conn, now=now) == []


def test_a_due_tick_enqueues_its_date_and_arms_the_next(chain_settings, conn, use_env):
    s = use_env(chain_settings.replace(SCHEDULE_ENABLED=True))
    tick = dt.datetime(2025, 10, 26, 0, 15, tzinfo=dt.timezone.utc)  # in the past: due now
    assert schedule.arm(s, conn, tick)
    # RQ's scheduler moves it to the queue, the worker runs it
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=1, scheduler=True)
    assert jobs.fetch(conn, "schedule-bitcoin-7-20251026T0015").get_status() == JobStatus.FINISHED
    assert jobs.fetch(conn, "download-bitcoin-2025-10-26-7").get_status() == JobStatus.QUEUED
    following = jobs.fetch(conn, "schedule-bitcoin-7-20251027T0015")
    assert following.get_status() == JobStatus.SCHEDULED
    # a manual enqueue of the same date is then a no-op: one id for both paths
    assert not jobs.enqueue_download(s, "bitcoin", DATE, 7).enqueued


def test_a_tick_with_the_schedule_disabled_does_nothing(chain_settings, conn, use_env):
    use_env(chain_settings)  # SCHEDULE_ENABLED=false in the worker's environment
    tick = dt.datetime(2025, 10, 26, 0, 15, tzinfo=dt.timezone.utc)
    assert schedule.arm(chain_settings, conn, tick)
    work(conn, chain_settings.QUEUE_DOWNLOAD, max_jobs=1, scheduler=True)
    assert jobs.fetch(conn, "download-bitcoin-2025-10-26-7") is None
    assert jobs.fetch(conn, "schedule-bitcoin-7-20251027T0015") is None


def test_cli_schedule_shows_the_next_run_and_arms_it(chain_settings, conn):
    env = process_env(chain_settings.replace(SCHEDULE_ENABLED=True, SCHEDULE_TIME_UTC="00:15"))
    before = cli("schedule", env=env)
    assert before.returncode == 0 and "not armed" in before.stdout
    armed = cli("schedule", "--arm", env=env)
    assert armed.returncode == 0 and "T00:15:00+00:00 enqueues bitcoin" in armed.stdout
    assert "(armed)" in armed.stdout
    assert "disabled" in cli("schedule", env=process_env(chain_settings)).stdout


def test_cli_enqueue_without_redis_says_so(chain_settings):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = cli("enqueue", "--processing-date", DATE,
              env=process_env(chain_settings.replace(REDIS_URL=f"redis://127.0.0.1:{port}/12")))
    assert out.returncode == 1 and "REDIS_URL" in out.stderr
