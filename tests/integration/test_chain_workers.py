"""The real `aml-miner worker` processes: heartbeat file, healthcheck, warm SIGTERM, `rq info`."""

import signal
import subprocess
import sys

from rq import Queue
from rq.job import JobStatus

from shared import worker
from tests.chain_fixtures import (REPO, RQ, chain_settings, cli, conn, process_env,  # noqa: F401
                                  wait_for)


def mtime(path):
    return path.stat().st_mtime_ns if path.exists() else 0


def start_worker(settings, queue: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.cli", "worker", queue, *extra],
                            cwd=REPO, env=process_env(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=30)
    return out


def test_heartbeat_is_touched_idle_and_busy_and_goes_stale_after_sigterm(chain_settings, conn):
    s = chain_settings
    path = worker.heartbeat_path(s, s.QUEUE_DOWNLOAD)
    proc = start_worker(s, "download")
    try:
        wait_for(path.exists, what="the heartbeat file")
        first = mtime(path)
        wait_for(lambda: mtime(path) > first, timeout=10, what="an idle heartbeat")
        job = Queue(s.QUEUE_DOWNLOAD, connection=conn).enqueue("time.sleep", 4, job_timeout=30)
        wait_for(lambda: job.get_status() == JobStatus.STARTED, what="the job to start")
        busy = mtime(path)
        wait_for(lambda: mtime(path) > busy and job.get_status() == JobStatus.STARTED,
                 timeout=10, what="a heartbeat while the job runs")
        wait_for(lambda: job.get_status() == JobStatus.FINISHED, what="the job to finish")
        health = cli("healthcheck", "worker", "download", env=process_env(s))
        assert health.returncode == 0, health.stderr
        assert find_check(s) == 0  # docs/jobs.md's shell form of the same check
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        out = stop(proc)
    assert "warm shut down requested" in out
    def unhealthy():
        return cli("healthcheck", "worker", "download", env=process_env(s)).returncode == 1
    stale = wait_for(unhealthy, timeout=15, interval=0.5, what="the heartbeat to go stale")
    assert stale and find_check(s) == 1


def find_check(settings) -> int:
    """docs/jobs.md's `find -newermt` healthcheck, with the limit of three heartbeat intervals."""
    limit = 3 * settings.HEARTBEAT_INTERVAL
    script = (f'find "$HEARTBEAT_DIR" -name "download-$(hostname)" -newermt "-{limit} seconds" '
              f'| grep -q .')
    return subprocess.run(["bash", "-c", script], env=process_env(settings)).returncode


def test_healthcheck_fails_when_no_worker_ever_ran(chain_settings):
    out = cli("healthcheck", "worker", "process", env=process_env(chain_settings))
    assert out.returncode == 1 and "missing" in out.stderr


def test_sigterm_lets_the_running_job_finish(chain_settings, conn):
    s = chain_settings
    proc = start_worker(s, "download")
    try:
        job = Queue(s.QUEUE_DOWNLOAD, connection=conn).enqueue("time.sleep", 2, job_timeout=30)
        wait_for(lambda: job.get_status() == JobStatus.STARTED, what="the job to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop(proc)
    assert job.get_status() == JobStatus.FINISHED


def test_rq_info_shows_our_queues_and_workers(chain_settings, conn):
    s = chain_settings
    proc = start_worker(s, "download")
    try:
        wait_for(lambda: worker.heartbeat_path(s, s.QUEUE_DOWNLOAD).exists(), what="the worker")
        info = subprocess.run([RQ, "info", "-u", s.REDIS_URL], capture_output=True, text=True,
                              timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        stop(proc)
    assert info.returncode == 0, info.stderr
    assert s.QUEUE_DOWNLOAD in info.stdout
    assert f"{s.QUEUE_DOWNLOAD}-" in info.stdout  # our worker's name starts with its queue


def test_the_download_worker_arms_the_daily_schedule(chain_settings, conn):
    import datetime as dt

    from rq.registry import ScheduledJobRegistry

    from shared import schedule

    s = chain_settings.replace(SCHEDULE_ENABLED=True, SCHEDULE_TIME_UTC="00:15")
    out = subprocess.run([sys.executable, "-m", "services.cli", "worker", "download", "--burst"],
                         cwd=REPO, env=process_env(s), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    now = dt.datetime.now(dt.timezone.utc)
    at = schedule.parse_time("00:15")
    expected = {schedule.tick_id("bitcoin", 7, schedule.last_tick(now, at)),
                schedule.tick_id("bitcoin", 7, schedule.next_tick(now, at))}
    assert expected <= set(ScheduledJobRegistry(s.QUEUE_DOWNLOAD, connection=conn).get_job_ids())
    assert "schedule: armed" in out.stdout


def test_a_worker_refuses_bad_chain_settings_at_start_naming_them(chain_settings):
    for name, value in (("SCHEDULE_TIME_UTC", "25:00"), ("JOB_RETRY_INTERVALS", ("soon",)),
                        ("HEARTBEAT_INTERVAL", 0)):
        out = cli("worker", "download", "--burst",
                  env=process_env(chain_settings.replace(**{name: value})))
        assert out.returncode == 2 and name in out.stderr, (name, out.stderr)
