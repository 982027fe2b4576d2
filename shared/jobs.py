"""The job chain's rules: deterministic job ids, enqueue a date once, a date's status.

Jobs are named by dotted strings, never imported, so the downloader (which
enqueues the process job) never loads the processor's code or LightGBM.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.executions import ExecutionRegistry
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from shared import storage
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DOWNLOAD_JOB = "services.downloader.jobs.download_job"
PROCESS_JOB = "services.processor.jobs.process_job"

# Finished records are kept a week so `status` can show a date's steps and timings;
# a finished record never blocks a re-run (enqueue replaces it), the published folder does.
RESULT_TTL = 7 * 24 * 3600

ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED})
ENDED_BADLY = frozenset({JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
NETWORK_RE = re.compile(r"^[A-Za-z0-9_]+$")  # RQ ids allow [A-Za-z0-9_-]; '-' separates the parts


class JobArgumentError(ValueError):
    """A network, date or window cannot form a job id; the message names the parameter."""


def window(window_days) -> int:
    """The window as a positive int (the rq CLI passes it as text)."""
    try:
        value = int(window_days)
    except (TypeError, ValueError) as exc:
        raise JobArgumentError(f"window_days={window_days!r} is not an integer") from exc
    if value <= 0:
        raise JobArgumentError(f"window_days={window_days!r} must be positive")
    return value


def job_id(kind: str, network: str, processing_date: str, window_days) -> str:
    """The id of one (kind, network, date, window), e.g. download-bitcoin-2025-10-26-7."""
    if not isinstance(network, str) or not NETWORK_RE.match(network):
        raise JobArgumentError(f"network={network!r} may hold only letters, digits and '_'")
    try:
        storage.parse_date(processing_date)
    except storage.InvalidDate as exc:
        raise JobArgumentError(str(exc)) from exc
    return f"{kind}-{network}-{processing_date}-{window(window_days)}"


def download_id(network: str, processing_date: str, window_days) -> str:
    """Job id of a date's download."""
    return job_id("download", network, processing_date, window_days)


def process_id(network: str, processing_date: str, window_days) -> str:
    """Job id of a date's processing."""
    return job_id("process", network, processing_date, window_days)


def chain_ids(network: str, processing_date: str, window_days) -> tuple[str, str]:
    """The download and process job ids of one date."""
    return (download_id(network, processing_date, window_days),
            process_id(network, processing_date, window_days))


def connect(settings: Settings) -> Redis:
    """A Redis connection to REDIS_URL."""
    return Redis.from_url(settings.REDIS_URL)


def retry_policy(settings: Settings) -> Retry | None:
    """RQ's Retry for transient failures (JOB_RETRIES, JOB_RETRY_INTERVALS); None: no retries."""
    if settings.JOB_RETRIES <= 0:
        return None
    try:
        intervals = [int(v) for v in settings.JOB_RETRY_INTERVALS]
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"JOB_RETRY_INTERVALS={settings.JOB_RETRY_INTERVALS!r} "
                            "is not a list of whole seconds") from exc
    return Retry(max=settings.JOB_RETRIES, interval=intervals or 0)


def check(settings: Settings) -> None:
    """Refuse job settings that cannot work, naming the variable (workers call it at start)."""
    retry_policy(settings)
    for name in ("HEARTBEAT_INTERVAL", "JOB_TIMEOUT_DOWNLOAD", "JOB_TIMEOUT_PROCESS"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name}={getattr(settings, name)!r} must be greater than 0")


def reap_abandoned(settings: Settings, connection: Redis, now: float | None = None) -> None:
    """Let RQ settle jobs whose worker died mid-job (their execution heartbeat expired).

    RQ's own cleanup (a retry if one is left, else failed with AbandonedJobError) otherwise
    runs only in a live worker's maintenance round; status and enqueue run it first, so a
    killed job shows as failed, and can be forced again, once its heartbeat has lapsed.
    """
    for queue in (settings.QUEUE_DOWNLOAD, settings.QUEUE_PROCESS):
        StartedJobRegistry(queue, connection=connection).cleanup(timestamp=now)


def fetch(connection: Redis, jid: str) -> Job | None:
    """The job with this id, or None when Redis holds no record of it."""
    try:
        return Job.fetch(jid, connection=connection)
    except NoSuchJobError:
        return None


@dataclass(frozen=True)
class EnqueueResult:
    """What an enqueue did: the job id, whether a new job was queued, and why (one line)."""

    job_id: str
    enqueued: bool
    message: str


def enqueue_download(settings: Settings, network: str, processing_date: str, window_days,
                     force: bool = False, connection: Redis | None = None) -> EnqueueResult:
    """Queue a date's download once.

    A no-op that says why when the date is queued or running, or (unless force)
    published or failed.
    """
    conn = connection or connect(settings)
    days = window(window_days)
    dl_id, pr_id = chain_ids(network, processing_date, days)
    reap_abandoned(settings, conn)
    reason = _blocker(conn, settings, network, processing_date, days, force)
    if reason:
        log.info("enqueue %s: not queued: %s", dl_id, reason)
        return EnqueueResult(dl_id, False, reason)
    _clear_ended(conn, (dl_id, pr_id))
    try:
        Queue(settings.QUEUE_DOWNLOAD, connection=conn).enqueue_call(
            DOWNLOAD_JOB, kwargs={"network": network, "processing_date": processing_date,
                                  "window_days": days, "force": force},
            timeout=settings.JOB_TIMEOUT_DOWNLOAD, result_ttl=RESULT_TTL, job_id=dl_id,
            retry=retry_policy(settings), unique=True,
            description=f"download {network} {processing_date} {days}d")
    except DuplicateJobError:
        return EnqueueResult(dl_id, False, "already queued (by a concurrent enqueue)")
    log.info("enqueue %s: queued on %s%s", dl_id, settings.QUEUE_DOWNLOAD,
             " (force)" if force else "")
    return EnqueueResult(dl_id, True, f"queued on {settings.QUEUE_DOWNLOAD}")


def enqueue_process(settings: Settings, network: str, processing_date: str, window_days,
                    connection: Redis) -> EnqueueResult:
    """Queue a date's processing once (called by the download job when its input is published)."""
    pr_id = process_id(network, processing_date, window_days)
    current = fetch(connection, pr_id)
    if current is not None and current.get_status() in ACTIVE:
        return EnqueueResult(pr_id, False, f"already {current.get_status().value}")
    _clear_ended(connection, (pr_id,))  # an earlier run's record: fresh input, fresh run
    try:
        Queue(settings.QUEUE_PROCESS, connection=connection).enqueue_call(
            PROCESS_JOB, kwargs={"network": network, "processing_date": processing_date,
                                 "window_days": window(window_days)},
            timeout=settings.JOB_TIMEOUT_PROCESS, result_ttl=RESULT_TTL, job_id=pr_id, unique=True,
            description=f"process {network} {processing_date} {window(window_days)}d")
    except DuplicateJobError:
        return EnqueueResult(pr_id, False, "already queued (by a concurrent enqueue)")
    return EnqueueResult(pr_id, True, f"queued on {settings.QUEUE_PROCESS}")


def _blocker(conn: Redis, settings: Settings, network: str, processing_date: str, days: int,
             force: bool) -> str:
    """Why a date must not be queued now ('' when it may be)."""
    for jid in chain_ids(network, processing_date, days):
        job = fetch(conn, jid)
        if job is not None and job.get_status() in ACTIVE:
            return f"{jid} is already {job.get_status().value}; nothing to do"
    if force:
        return ""
    status = date_status(settings, network, processing_date, days, connection=conn)
    if status.state == "published":
        return f"already published ({status.version}); use --force to re-run"
    if status.state == "failed":
        return f"failed earlier: {status.reason}; use --force to re-run"
    return ""


def _clear_ended(conn: Redis, ids) -> None:
    """Delete ended records (and their results) so a unique enqueue of the same id can succeed."""
    for jid in ids:
        job = fetch(conn, jid)
        if job is not None and job.get_status() not in ACTIVE:
            _delete(conn, job)
            log.info("job %s: removed the record of an earlier run", jid)


def _delete(conn: Redis, job: Job) -> None:
    """job.delete(), also for a job whose worker was killed: rq 3.0 raises ValueError when the
    job's execution registry still names an execution record that has already expired."""
    try:
        job.delete()
    except ValueError:
        conn.delete(ExecutionRegistry(job.id, connection=conn).key)
        job.delete()


@dataclass(frozen=True)
class DateStatus:
    """Where one (network, date, window) stands in the chain."""

    job_id: str
    state: str  # not-enqueued | queued | downloading | processing | published | failed
    stage: str = ""  # download | process (the job the state is about)
    reason: str = ""
    version: str | None = None  # the published output folder's version, if any
    progress: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the operator."""
        text = f"{self.job_id}: {self.state}"
        if self.state == "queued" and self.stage:
            text += f" for {self.stage}"
        if self.progress:
            text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(self.progress.items())) + ")"
        if self.reason:
            text += f": {self.reason}"
        if self.version and self.state != "published":
            text += f" [previous output {self.version} still published]"
        elif self.version:
            text += f" [{self.version}]"
        return text


def date_status(settings: Settings, network: str, processing_date: str, window_days,
                connection: Redis | None = None) -> DateStatus:
    """One state from the RQ job states, their job.meta progress and the published output."""
    conn = connection or connect(settings)
    days = window(window_days)
    dl_id, pr_id = chain_ids(network, processing_date, days)
    reap_abandoned(settings, conn)
    jobs = (("download", fetch(conn, dl_id)), ("process", fetch(conn, pr_id)))
    version = published_version(settings, network, processing_date, days)
    for stage, job in jobs:
        active = _active_status(stage, job, version)
        if active is not None:
            return active
    for stage, job in jobs:
        if job is not None and job.get_status() in ENDED_BADLY:
            return DateStatus(job.id, "failed", stage, failure_reason(job), version,
                              _progress(job))
    if version:
        return DateStatus(pr_id, "published", "process", "", version, _progress(jobs[1][1]))
    return DateStatus(dl_id, "not-enqueued")


def _active_status(stage: str, job: Job | None, version: str | None) -> DateStatus | None:
    if job is None:
        return None
    status = job.get_status()
    if status == JobStatus.STARTED:
        state = "downloading" if stage == "download" else "processing"
        return DateStatus(job.id, state, stage, "", version, _progress(job))
    if status in ACTIVE:
        return DateStatus(job.id, "queued", stage, _retry_reason(job, status), version,
                          _progress(job))
    return None


def _progress(job: Job | None) -> dict:
    if job is None:
        return {}
    return {k: v for k, v in job.get_meta().items() if k != "error"}


def _retry_reason(job: Job, status: JobStatus) -> str:
    """For a job waiting to run again after an error: when, how many tries are left, and why."""
    error = job.get_meta().get("error")
    if not error:
        return ""
    when = ""
    if status == JobStatus.SCHEDULED:
        registry = ScheduledJobRegistry(job.origin, connection=job.connection)
        with contextlib.suppress(NoSuchJobError):
            when = f" at {registry.get_scheduled_time(job):%Y-%m-%dT%H:%M:%SZ}"
    return f"retry{when} ({job.retries_left} left) after: {error}"


def failure_reason(job: Job) -> str:
    """Why a job failed, in one line: our job.meta['error'], else RQ's traceback's last line."""
    error = job.get_meta().get("error")
    if error:
        return str(error)
    result = job.latest_result()
    text = (getattr(result, "exc_string", None) or "").strip()
    if "AbandonedJobError" in text:
        return f"the worker running it died mid-job ({text.splitlines()[-1]})"
    if text:
        return text.splitlines()[-1]
    return f"job {job.get_status().value} without a recorded reason"


def published_version(settings: Settings, network: str, processing_date: str,
                      window_days) -> str | None:
    """The version folder name of the published output, if it is for this network and window."""
    version = storage.resolve(storage.date_dir(settings.OUTPUT_DIR, processing_date))
    if version is None:
        return None
    meta = _read_metadata(version / storage.METADATA)
    if meta.get("network", network) != network:
        return None
    if int(meta.get("window_days", window_days)) != int(window_days):
        return None
    return version.name


def _read_metadata(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def record(job: Job | None, **progress) -> None:
    """Merge progress fields into job.meta and save them (a no-op outside a job)."""
    if job is None:
        return
    job.meta.update(progress)
    job.save_meta()


def fail_now(job: Job | None, exc: BaseException) -> None:
    """Record exc as the job's reason and use up its retries.

    RQ retries any exception of a job enqueued with Retry; a permanent one must fail at once.
    """
    if job is None:
        return
    job.retries_left = 0
    record(job, error=f"{type(exc).__name__}: {exc}")


def note_error(job: Job | None, exc: BaseException) -> None:
    """Record exc as the job's reason, leaving RQ's retries as configured."""
    record(job, error=f"{type(exc).__name__}: {exc}")
