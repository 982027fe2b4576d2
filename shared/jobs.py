"""The job chain's rules: deterministic job ids, enqueue a date once, a date's status.

Jobs are named by dotted strings, never imported, so the downloader (which
enqueues the process job) never loads the processor's code or LightGBM.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.executions import ExecutionRegistry
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from shared import networks, storage
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DOWNLOAD_JOB = "services.downloader.jobs.download_job"
BACKFILL_JOB = "services.downloader.jobs.backfill_job"
PROCESS_JOB = "services.processor.jobs.process_job"
LEARN_JOB = "services.processor.jobs.learn_job"

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


NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_]*$")


def namespace(settings: Settings) -> str:
    """This stack's prefix for every queue, job id and key in Redis ('' for none).

    REDIS_NAMESPACE=auto (the default) derives it from OUTPUT_DIR's real path: stacks that
    publish into different folders share nothing in one Redis (not queues, not job records,
    not schedule ticks), while every worker of one stack (also on other hosts mounting the
    same volume at the same path) agrees on it.
    """
    value = settings.REDIS_NAMESPACE
    if value == "auto":
        folder = os.path.realpath(os.fspath(settings.OUTPUT_DIR))
        return "s" + hashlib.sha256(folder.encode()).hexdigest()[:10]
    if not NAMESPACE_RE.match(value):
        raise SettingsError(f"REDIS_NAMESPACE={value!r} may hold only letters, digits and '_' "
                            "(or be 'auto', or empty for none)")
    return value


def queue_name(settings: Settings, queue: str) -> str:
    """A queue's name in Redis: QUEUE_* under this stack's namespace."""
    ns = namespace(settings)
    return f"{ns}-{queue}" if ns else queue


def job_id(kind: str, network: str, processing_date: str, window_days, ns: str = "") -> str:
    """The id of one (kind, network, date, window) in namespace ns, e.g.
    download-bitcoin-2025-10-26-7 (ns empty) or s1a2b3c4d5e-download-bitcoin-2025-10-26-7."""
    if not isinstance(network, str) or not NETWORK_RE.match(network):
        raise JobArgumentError(f"network={network!r} may hold only letters, digits and '_'")
    try:
        storage.parse_date(processing_date)
    except storage.InvalidDate as exc:
        raise JobArgumentError(str(exc)) from exc
    return f"{ns + '-' if ns else ''}{kind}-{network}-{processing_date}-{window(window_days)}"


def download_id(network: str, processing_date: str, window_days, ns: str = "") -> str:
    """Job id of a date's download."""
    return job_id("download", network, processing_date, window_days, ns)


def process_id(network: str, processing_date: str, window_days, ns: str = "") -> str:
    """Job id of a date's processing."""
    return job_id("process", network, processing_date, window_days, ns)


def learn_id(network: str, processing_date: str, window_days, ns: str = "") -> str:
    """Job id of the learn for a date (it learns from the dates before it)."""
    return job_id("learn", network, processing_date, window_days, ns)


def backfill_id(network: str, processing_date: str, window_days, ns: str = "") -> str:
    """Job id of the history backfill that comes before a network's first learn."""
    return job_id("backfill", network, processing_date, window_days, ns)


def chain_ids(network: str, processing_date: str, window_days, ns: str = "") -> tuple[str, str]:
    """The download and process job ids of one date."""
    return (download_id(network, processing_date, window_days, ns),
            process_id(network, processing_date, window_days, ns))


def first_learn_ids(network: str, processing_date: str, window_days,
                    ns: str = "") -> tuple[str, str]:
    """The backfill and learn job ids of a date whose processing waits for the first learn."""
    return (backfill_id(network, processing_date, window_days, ns),
            learn_id(network, processing_date, window_days, ns))


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


def process_retry(settings: Settings) -> Retry | None:
    """One more run for a processing job that died (SIGKILL, OOM, a restart) or failed for a
    passing reason, after the first of JOB_RETRY_INTERVALS; bad input uses it up at once
    (fail_now). JOB_RETRIES=0: none."""
    policy = retry_policy(settings)
    if policy is None:
        return None
    return Retry(max=1, interval=policy.intervals[0] if policy.intervals else 0)


def check(settings: Settings) -> None:
    """Refuse job settings that cannot work, naming the variable (workers call it at start)."""
    retry_policy(settings)
    namespace(settings)
    for name in ("HEARTBEAT_INTERVAL", "JOB_TIMEOUT_DOWNLOAD", "JOB_TIMEOUT_PROCESS",
                 "JOB_TIMEOUT_LEARN", "LEARN_EVERY_DAYS", "LEARN_MAX_DATES", "LEARN_MAX_ROWS"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name}={getattr(settings, name)!r} must be greater than 0")
    if settings.LEARN_MIN_DATES < 3:
        raise SettingsError(f"LEARN_MIN_DATES={settings.LEARN_MIN_DATES!r} must be at least 3 "
                            "(two to train on, one to compare on)")
    for name in ("LEARN_HISTORY_DAYS", "LEARN_MIN_GAIN", "LEARN_TOLERANCE"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name}={getattr(settings, name)!r} must not be negative")
    for name in ("RETENTION_DAYS", "PUBLISH_LOCK_WAIT_SECONDS"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name}={getattr(settings, name)!r} must not be negative "
                                "(RETENTION_DAYS=0 keeps every date)")
    if settings.PUBLISH_LOCK_STALE_SECONDS < 30:
        raise SettingsError(f"PUBLISH_LOCK_STALE_SECONDS={settings.PUBLISH_LOCK_STALE_SECONDS!r} "
                            "must be at least 30 (a live owner refreshes its lock every 15 s)")
    if 0 < settings.RETENTION_DAYS <= settings.LEARN_HISTORY_DAYS:
        raise SettingsError(f"RETENTION_DAYS={settings.RETENTION_DAYS} must be more than "
                            f"LEARN_HISTORY_DAYS={settings.LEARN_HISTORY_DAYS} (or 0 to keep "
                            "every date): the backfill would fetch dates retention removes")


def reap_abandoned(settings: Settings, connection: Redis, now: float | None = None) -> None:
    """Let RQ settle jobs whose worker died mid-job (their execution heartbeat expired).

    RQ's own cleanup (a retry if one is left, else failed with AbandonedJobError) otherwise
    runs only in a live worker's maintenance round; status and enqueue run it first, so a
    killed job shows as failed, and can be forced again, once its heartbeat has lapsed.
    """
    for queue in (settings.QUEUE_DOWNLOAD, settings.QUEUE_PROCESS, settings.QUEUE_LEARN):
        StartedJobRegistry(queue_name(settings, queue), connection=connection).cleanup(
            timestamp=now)


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
                     force: bool = False, connection: Redis | None = None,
                     process: bool = True) -> EnqueueResult:
    """Queue a date's download once; with process (the default) its processing follows.

    A no-op that says why when the date is queued or running, or (unless force)
    published or failed. A date downloaded without processing (a backfill) is queued
    again when its processing is wanted: downloaded is not done, published is.
    """
    conn = connection or connect(settings)
    days = window(window_days)
    ns = namespace(settings)
    dl_id, pr_id = chain_ids(network, processing_date, days, ns)
    reap_abandoned(settings, conn)
    reason = _blocker(conn, settings, network, processing_date, days, force, process)
    if reason:
        log.info("enqueue %s: not queued: %s", dl_id, reason)
        return EnqueueResult(dl_id, False, reason)
    _clear_ended(conn, (dl_id, pr_id, *first_learn_ids(network, processing_date, days, ns)))
    try:
        Queue(queue_name(settings, settings.QUEUE_DOWNLOAD), connection=conn).enqueue_call(
            DOWNLOAD_JOB, kwargs={"network": network, "processing_date": processing_date,
                                  "window_days": days, "force": force, "process": process},
            timeout=settings.JOB_TIMEOUT_DOWNLOAD, result_ttl=RESULT_TTL, job_id=dl_id,
            retry=retry_policy(settings), unique=True,
            description=f"download {network} {processing_date} {days}d"
                        + ("" if process else " (no processing)"))
    except DuplicateJobError:
        return EnqueueResult(dl_id, False, "already queued (by a concurrent enqueue)")
    queue = queue_name(settings, settings.QUEUE_DOWNLOAD)
    log.info("enqueue %s: queued on %s%s%s", dl_id, queue,
             " (force)" if force else "", "" if process else " (no processing)")
    return EnqueueResult(dl_id, True, f"queued on {queue}")


def _processing_key(dl_id: str) -> str:
    return f"aml-miner:processing-wanted:{dl_id}"


def want_processing(conn: Redis, dl_id: str, ttl_s: int) -> None:
    """Ask a download already queued or running without processing to chain it after all."""
    conn.set(_processing_key(dl_id), b"1", ex=max(ttl_s, 60))


def processing_wanted(conn: Redis, dl_id: str) -> bool:
    """True (once) when a later enqueue asked this download to chain its processing."""
    return bool(conn.getdel(_processing_key(dl_id)))


def enqueue_process(settings: Settings, network: str, processing_date: str, window_days,
                    connection: Redis) -> EnqueueResult:
    """Queue a date's processing once (called by the download job when its input is published);
    a run killed mid-way (OOM, a restart) or failing for a passing reason runs once more."""
    return _enqueue_once(connection, queue_name(settings, settings.QUEUE_PROCESS), PROCESS_JOB,
                         process_id(network, processing_date, window_days, namespace(settings)),
                         {"network": network, "processing_date": processing_date,
                          "window_days": window(window_days)},
                         settings.JOB_TIMEOUT_PROCESS, f"process {network} {processing_date} "
                                                       f"{window(window_days)}d",
                         retry=process_retry(settings))


def enqueue_learn(settings: Settings, network: str, processing_date: str, window_days,
                  connection: Redis, then_process: bool = False) -> EnqueueResult:
    """Queue the learn for a date on the learn queue; then_process: the date's processing
    waits for it (a network's first learn), and the learn job queues it when done."""
    return _enqueue_once(connection, queue_name(settings, settings.QUEUE_LEARN), LEARN_JOB,
                         learn_id(network, processing_date, window_days, namespace(settings)),
                         {"network": network, "processing_date": processing_date,
                          "window_days": window(window_days), "then_process": then_process},
                         settings.JOB_TIMEOUT_LEARN, f"learn {network} for {processing_date} "
                                                     f"{window(window_days)}d")


def enqueue_backfill(settings: Settings, network: str, processing_date: str, window_days,
                     connection: Redis) -> EnqueueResult:
    """Queue the backfill of LEARN_HISTORY_DAYS dates before a date (then its first learn)."""
    days = window(window_days)
    return _enqueue_once(connection, queue_name(settings, settings.QUEUE_DOWNLOAD), BACKFILL_JOB,
                         backfill_id(network, processing_date, days, namespace(settings)),
                         {"network": network, "processing_date": processing_date,
                          "window_days": days},
                         settings.JOB_TIMEOUT_DOWNLOAD * max(1, settings.LEARN_HISTORY_DAYS),
                         f"backfill {settings.LEARN_HISTORY_DAYS} {network} dates before "
                         f"{processing_date} {days}d")


def _enqueue_once(connection: Redis, queue: str, func: str, jid: str, kwargs: dict,
                  timeout: int, description: str, retry: Retry | None = None) -> EnqueueResult:
    """Queue a job under its deterministic id unless one is active; an ended record is replaced."""
    current = fetch(connection, jid)
    if current is not None and current.get_status() in ACTIVE:
        return EnqueueResult(jid, False, f"already {current.get_status().value}")
    _clear_ended(connection, (jid,))  # an earlier run's record: fresh input, fresh run
    try:
        Queue(queue, connection=connection).enqueue_call(
            func, kwargs=kwargs, timeout=timeout, result_ttl=RESULT_TTL, job_id=jid,
            unique=True, description=description, retry=retry)
    except DuplicateJobError:
        return EnqueueResult(jid, False, "already queued (by a concurrent enqueue)")
    return EnqueueResult(jid, True, f"queued on {queue}")


def _blocker(conn: Redis, settings: Settings, network: str, processing_date: str, days: int,
             force: bool, process: bool = True) -> str:
    """Why a date must not be queued now ('' when it may be)."""
    for _stage, job in chain_jobs(conn, network, processing_date, days, namespace(settings)):
        if job is None or job.get_status() not in ACTIVE:
            continue
        if process and job.kwargs.get("process") is False:
            want_processing(conn, job.id, settings.JOB_TIMEOUT_DOWNLOAD * 2)
            return f"{job.id} is already {job.get_status().value}; its processing will follow"
        return f"{job.id} is already {job.get_status().value}; nothing to do"
    if force:
        return ""
    status = date_status(settings, network, processing_date, days, connection=conn)
    if status.state == "published":
        return f"already published ({status.version}); use --force to re-run"
    if status.state == "failed":
        return f"failed earlier: {status.reason}; use --force to re-run"
    if status.state == "downloaded" and not process:
        return "already downloaded (not processed); nothing to do"
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
    # not-enqueued | queued | downloading | downloaded | backfilling | learning | processing |
    # published | failed
    state: str
    stage: str = ""  # download | backfill | learn | process (the job the state is about)
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
    reap_abandoned(settings, conn)
    ns = namespace(settings)
    jobs = chain_jobs(conn, network, processing_date, days, ns)
    version = published_version(settings, network, processing_date, days)
    for stage, job in jobs:
        active = _active_status(stage, job, version)
        if active is not None:
            return active
    for stage, job in jobs:  # a failed backfill or first learn still ends in processing
        if stage in ("download", "process") and job is not None \
                and job.get_status() in ENDED_BADLY:
            return DateStatus(job.id, "failed", stage, failure_reason(job), version,
                              _progress(job))
    if version:
        return DateStatus(process_id(network, processing_date, days, ns), "published", "process",
                          "", version, _progress(jobs[-1][1]))
    if storage.resolve(storage.date_dir(networks.input_root(settings, network),
                                        processing_date)) is not None:
        return DateStatus(download_id(network, processing_date, days, ns), "downloaded", "download",
                          "input present, not processed (a backfilled date; `aml-miner "
                          "enqueue` processes it)")
    return DateStatus(download_id(network, processing_date, days, ns), "not-enqueued")


STARTED_STATE = {"download": "downloading", "backfill": "backfilling", "learn": "learning",
                 "process": "processing"}


def chain_jobs(conn: Redis, network: str, processing_date: str, days: int,
               ns: str = "") -> list[tuple[str, Job | None]]:
    """The jobs a date's publication goes through, in order: download, the first learn's
    backfill and learn (only when the date's processing waits for them), process."""
    dl_id, pr_id = chain_ids(network, processing_date, days, ns)
    bf_id, ln_id = first_learn_ids(network, processing_date, days, ns)
    learn = fetch(conn, ln_id)
    if learn is not None and not learn.kwargs.get("then_process"):
        learn = None  # a routine learn runs beside the chain; the date does not wait for it
    return [("download", fetch(conn, dl_id)), ("backfill", fetch(conn, bf_id)),
            ("learn", learn), ("process", fetch(conn, pr_id))]


def _active_status(stage: str, job: Job | None, version: str | None) -> DateStatus | None:
    if job is None:
        return None
    status = job.get_status()
    if status == JobStatus.STARTED:
        return DateStatus(job.id, STARTED_STATE[stage], stage, "", version, _progress(job))
    if status in ACTIVE:
        return DateStatus(job.id, "queued", stage, _retry_reason(job, status), version,
                          _progress(job))
    return None


def learn_status(settings: Settings, network: str, processing_date: str, window_days,
                 connection: Redis | None = None) -> str | None:
    """One line on the learn job of a date (queued, running, its decision), None if none ran."""
    conn = connection or connect(settings)
    job = fetch(conn, learn_id(network, processing_date, window(window_days), namespace(settings)))
    if job is None:
        return None
    status = job.get_status()
    text = f"{job.id}: {status.value}"
    if status == JobStatus.FINISHED and isinstance(job.return_value(), dict):
        result = job.return_value()
        text += f": {result.get('decision')} {result.get('version') or ''}".rstrip()
        text += f" ({result.get('reason')})" if result.get("reason") else ""
    elif status in ENDED_BADLY:
        text += f": {failure_reason(job)}"
    elif job.get_meta().get("step"):
        text += f" ({job.get_meta()['step']})"
    return text


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
    version = storage.resolve(storage.date_dir(networks.output_root(settings, network),
                                               processing_date))
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
