"""The download job: fetch one date's batch, then chain the process job by its dotted name."""

from __future__ import annotations

import datetime as dt
import logging
import time

from rq import get_current_job

from services.downloader import backfill
from services.downloader.download import download_batch
from services.downloader.errors import BatchNotFound, DownloadError, DownloadFailure
from shared import jobs, modelsets, networks, storage
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Bad arguments, configuration or a broken batch give the same answer on every try.
PERMANENT = (DownloadError, jobs.JobArgumentError, storage.InvalidDate, SettingsError)


def download_job(network: str, processing_date: str, window_days, force: bool = False,
                 process: bool = True) -> dict:
    """Download one (network, date, window) into the network's input root, record progress,
    chain processing (unless process is False: a backfilled past date)."""
    job = get_current_job()
    try:
        settings, days = Settings.from_env(), jobs.window(window_days)
        canonical = jobs.download_id(network, processing_date, days, jobs.namespace(settings))
        root = networks.input_root(settings, network)  # several: an unconfigured one fails
    except PERMANENT as exc:  # bad configuration or arguments: no retry can help
        _failed(job, exc, processing_date)
        raise
    if job is not None and job.id != canonical:
        return _hand_off(settings, job, network, processing_date, days, force, process)
    jobs.record(job, step="downloading")
    started = time.monotonic()
    try:
        summary = download_batch(network, processing_date, days, root, force=force,
                                 settings=settings)
    except PERMANENT as exc:
        _failed(job, exc, processing_date)
        raise
    except Exception as exc:  # the job boundary: keep the reason, let RQ's Retry decide
        jobs.note_error(job, exc)
        log.warning("download %s %s %sd: %s (retries left: %s)", network, processing_date, days,
                    exc, job.retries_left if job else "n/a")
        raise
    return _chain(settings, job, network, processing_date, days, summary,
                  time.monotonic() - started, process)


def _hand_off(settings: Settings, job, network: str, processing_date: str, days: int,
              force: bool, process: bool) -> dict:
    """A job queued under another id (e.g. by `rq enqueue`) becomes the canonical, unique one."""
    result = jobs.enqueue_download(settings, network, processing_date, days, force=force,
                                   connection=job.connection, process=process)
    log.info("job %s: handed off to %s: %s", job.id, result.job_id, result.message)
    return {"handed_off_to": result.job_id, "enqueued": result.enqueued, "message": result.message}


def _failed(job, exc: Exception, processing_date: str) -> None:
    """Record why; use up the retries unless the batch may still be published (retry later)."""
    if isinstance(exc, BatchNotFound) and _may_still_publish(processing_date):
        jobs.note_error(job, exc)
        log.warning("download %s: batch not published yet, will retry: %s", processing_date, exc)
        return
    jobs.fail_now(job, exc)
    log.error("download %s failed permanently (no retry): %s", processing_date, exc)


def _may_still_publish(processing_date: str) -> bool:
    """The SOT publishes date D at ~00:00 UTC of D; a late batch of D or D-1 may still appear."""
    today = dt.datetime.now(dt.timezone.utc).date()
    return storage.parse_date(processing_date) >= today - dt.timedelta(days=1)


def _chain(settings: Settings, job, network: str, processing_date: str, days: int,
           summary: dict, seconds: float, process: bool) -> dict:
    files, size = _counts(summary)
    if job is not None:
        job.meta.pop("error", None)
    jobs.record(job, step="downloaded", files=files, bytes=size, download_s=round(seconds, 3))
    log.info("download %s %s %sd: %d files, %d bytes in %.2f s", network, processing_date, days,
             files, size, seconds)
    result = {"files": files, "bytes": size, "seconds": round(seconds, 3)}
    connection = job.connection if job is not None else jobs.connect(settings)
    if not process and not jobs.processing_wanted(connection, jobs.download_id(
            network, processing_date, days, jobs.namespace(settings))):
        log.info("download %s %s %sd: not processed (backfill)", network, processing_date, days)
        return result
    chained = _next(settings, network, processing_date, days, connection)
    jobs.record(job, step="chained", process_job=chained.job_id)
    log.info("download %s %s %sd: %s %s", network, processing_date, days, chained.job_id,
             chained.message)
    return {**result, "process_job": chained.job_id}


def _next(settings: Settings, network: str, processing_date: str, days: int,
          connection) -> jobs.EnqueueResult:
    """What follows a download: the first learn (a backfill of history, the learn, then the
    date's processing), or the processing, with a learn beside it when one is due."""
    if modelsets.needs_first_learn(settings, network, days):
        log.info("download %s %s %sd: no learn has run for %s %sd yet: backfilling %d dates "
                 "and learning before processing", network, processing_date, days, network,
                 days, settings.LEARN_HISTORY_DAYS)
        return jobs.enqueue_backfill(settings, network, processing_date, days, connection)
    chained = jobs.enqueue_process(settings, network, processing_date, days,
                                   connection=connection)
    if modelsets.learn_due(settings, network, days, processing_date):
        learning = jobs.enqueue_learn(settings, network, processing_date, days, connection)
        log.info("download %s %s %sd: %s %s", network, processing_date, days, learning.job_id,
                 learning.message)
    return chained


def backfill_job(network: str, processing_date: str, window_days) -> dict:
    """The first learn's history: download LEARN_HISTORY_DAYS dates before the date, then queue
    the learn, which queues the date's processing. Failures are logged, never block it."""
    job = get_current_job()
    settings, days = Settings.from_env(), jobs.window(window_days)
    connection = job.connection if job is not None else jobs.connect(settings)
    dates = backfill.history_before(processing_date, settings.LEARN_HISTORY_DAYS)
    jobs.record(job, step="backfilling", dates=len(dates))
    try:
        summary = backfill.backfill(network, dates, days,
                                    networks.input_root(settings, network), settings,
                                    on_date=lambda d, s, n, total: jobs.record(
                                        job, step=f"backfilled {n}/{total}", last=f"{d} {s}"))
        result = {"summary": summary.line()}
    except Exception as exc:  # the job boundary: the date must still be learned for and processed
        log.error("backfill before %s %s %sd failed: %s; learning from what is here",
                  network, processing_date, days, exc)
        jobs.note_error(job, exc)
        result = {"error": f"{type(exc).__name__}: {exc}"}
    learn = jobs.enqueue_learn(settings, network, processing_date, days, connection,
                               then_process=True)
    log.info("backfill %s %s %sd: %s %s", network, processing_date, days, learn.job_id,
             learn.message)
    jobs.record(job, step="chained", learn_job=learn.job_id)
    return {**result, "learn_job": learn.job_id}


def _counts(summary: dict) -> tuple[int, int]:
    """Files and bytes from download_batch's summary."""
    files = summary.get("files", {})
    count = len(files) if isinstance(files, (dict, list, tuple)) else int(files or 0)
    return count, int(summary.get("bytes", 0) or 0)
