"""A thin wrapper over RQ's Worker: its built-in scheduler on, a heartbeat file for healthchecks.

The file is touched from RQ's own heartbeat, which runs between blocking dequeues
while idle and every monitoring interval while a job runs, so a fresh file proves
the work loop (not just some thread) is alive and reaching Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Callable

from redis import RedisError
from rq import Worker
from rq.job import Job

from shared import jobs
from shared.settings import Settings

log = logging.getLogger(__name__)

MAINTENANCE_S = 60  # RQ's registry cleanup (abandoned jobs) and our upkeep, every minute
STALE_AFTER_BEATS = 3  # one late beat (a slow Redis, a long GC) must not fail the healthcheck


def heartbeat_path(settings: Settings, queue: str) -> Path:
    """The heartbeat file of this host's worker on a queue (a container's hostname is its own)."""
    return Path(settings.HEARTBEAT_DIR) / f"{queue}-{socket.gethostname()}"


def heartbeat_age(path: Path, now: float | None = None) -> float | None:
    """Seconds since the file was touched, or None when it does not exist."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - mtime


def is_fresh(settings: Settings, queue: str, now: float | None = None) -> bool:
    """True when this host's worker on the queue beat within the last STALE_AFTER_BEATS beats."""
    age = heartbeat_age(heartbeat_path(settings, queue), now)
    return age is not None and age <= STALE_AFTER_BEATS * settings.HEARTBEAT_INTERVAL


class HeartbeatWorker(Worker):
    """RQ's forking Worker that touches a file on each RQ heartbeat and runs our own upkeep."""

    heartbeat_file: Path | None = None
    upkeep: Callable[["HeartbeatWorker"], None] | None = None
    prepare: Callable[[Job], None] | None = None

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's heartbeat, then touch the file."""
        super().heartbeat(timeout, pipeline)
        if self.heartbeat_file is not None:
            self.heartbeat_file.touch()

    def execute_job(self, job: Job, queue):
        """Run prepare(job) in this process first (what it loads, the forked job inherits)."""
        if self.prepare is not None:
            try:
                self.prepare(job)
            except Exception as exc:  # the job itself loads what it needs and reports failures
                log.warning("worker %s: preparing %s failed, the job will load for itself: %s",
                            self.name, job.id, exc)
        super().execute_job(job, queue)

    def unsubscribe(self):
        """RQ's unsubscribe with a bounded wait: redis-py 8.2's PubSubWorkerThread.stop() joins
        the thread, which polls every 60 s, so a SIGTERM took up to a minute to end a worker."""
        thread = self.pubsub_thread
        if thread is None:
            return
        self.pubsub.unsubscribe()
        try:
            thread.stop(timeout=1)
        except TypeError:  # redis-py before 8.2: stop() takes no timeout and does not wait
            thread.stop()
        self.pubsub.close()

    def run_maintenance_tasks(self):
        """RQ's maintenance (at start, then every 10 minutes), then our upkeep."""
        super().run_maintenance_tasks()
        if self.upkeep is None:
            return
        try:
            self.upkeep(self)
        except RedisError as exc:  # a Redis blip must not stop the worker; the next round retries
            log.warning("worker %s: upkeep failed, retrying at the next maintenance: %s",
                        self.name, exc)


def worker_name(queue: str) -> str:
    """Unique per start: a restarted container is PID 1 on the same host name again, and RQ
    refuses a name whose previous owner has not expired yet."""
    return f"{queue}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def build(settings: Settings, queue: str,
          upkeep: Callable[[HeartbeatWorker], None] | None = None,
          prepare: Callable[[Job], None] | None = None) -> HeartbeatWorker:
    """A worker on one queue, heartbeating every HEARTBEAT_INTERVAL seconds, idle or busy."""
    interval = max(1, settings.HEARTBEAT_INTERVAL)
    # RQ blocks on dequeue for worker_ttl - 15 s between idle heartbeats.
    # RQ's queue carries the stack's namespace; the heartbeat file (per host) keeps the plain name
    worker = HeartbeatWorker([jobs.queue_name(settings, queue)], connection=jobs.connect(settings),
                             name=worker_name(queue),
                             worker_ttl=interval + 15, job_monitoring_interval=interval,
                             # RQ's default 10 min: a job whose worker died is noticed sooner
                             maintenance_interval=MAINTENANCE_S)
    path = heartbeat_path(settings, queue)
    path.parent.mkdir(parents=True, exist_ok=True)
    worker.heartbeat_file = path
    worker.upkeep = upkeep
    worker.prepare = prepare
    return worker


def check_settings(settings: Settings) -> None:
    """The chain's settings a worker needs (jobs, schedule); SettingsError names a bad one."""
    from shared import schedule

    jobs.check(settings)
    schedule.check(settings)


def run(settings: Settings, queue: str, burst: bool = False,
        upkeep: Callable[[HeartbeatWorker], None] | None = None,
        prepare: Callable[[Job], None] | None = None) -> int:
    """Work the queue until SIGTERM (warm: the job in hand finishes) or, with burst, till empty.

    prepare(job), if given, runs in the worker before each job is forked (e.g. loading models).
    """
    worker = build(settings, queue, upkeep, prepare)
    log.info("worker %s: listening on %s, heartbeat %s every %d s", worker.name,
             jobs.queue_name(settings, queue), worker.heartbeat_file, settings.HEARTBEAT_INTERVAL)
    # The scheduler moves due retries (and the daily tick) from the scheduled registry to the queue
    worker.work(burst=burst, with_scheduler=True, logging_level=None)
    return 0
