"""The download job: fetch one date's batch, then chain the process job by its dotted name."""

from __future__ import annotations

import datetime as dt
import logging
import time

from rq import get_current_job

from services.downloader.download import download_batch
from services.downloader.errors import BatchNotFound, DownloadError, DownloadFailure
from shared import jobs, storage
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Bad arguments, configuration or a broken batch give the same answer on every try.
PERMANENT = (DownloadError, jobs.JobArgumentError, storage.InvalidDate, SettingsError)


def download_job(network: str, processing_date: str, window_days, force: bool = False) -> dict:
    """Download one (network, date, window) into INPUT_DIR, record progress, chain processing."""
    job = get_current_job()
    try:
        settings, days = Settings.from_env(), jobs.window(window_days)
        canonical = jobs.download_id(network, processing_date, days)
    except PERMANENT as exc:  # bad configuration or arguments: no retry can help
        _failed(job, exc, processing_date)
        raise
    if job is not None and job.id != canonical:
        return _hand_off(settings, job, network, processing_date, days, force)
    jobs.record(job, step="downloading")
    started = time.monotonic()
    try:
        summary = download_batch(network, processing_date, days, settings.INPUT_DIR,
                                 force=force, settings=settings)
    except PERMANENT as exc:
        _failed(job, exc, processing_date)
        raise
    except Exception as exc:  # the job boundary: keep the reason, let RQ's Retry decide
        jobs.note_error(job, exc)
        log.warning("download %s %s %sd: %s (retries left: %s)", network, processing_date, days,
                    exc, job.retries_left if job else "n/a")
        raise
    return _chain(settings, job, network, processing_date, days, summary,
                  time.monotonic() - started)


def _hand_off(settings: Settings, job, network: str, processing_date: str, days: int,
              force: bool) -> dict:
    """A job queued under another id (e.g. by `rq enqueue`) becomes the canonical, unique one."""
    result = jobs.enqueue_download(settings, network, processing_date, days, force=force,
                                   connection=job.connection)
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
           summary: dict, seconds: float) -> dict:
    files, size = _counts(summary)
    if job is not None:
        job.meta.pop("error", None)
    jobs.record(job, step="downloaded", files=files, bytes=size, download_s=round(seconds, 3))
    log.info("download %s %s %sd: %d files, %d bytes in %.2f s", network, processing_date, days,
             files, size, seconds)
    connection = job.connection if job is not None else jobs.connect(settings)
    chained = jobs.enqueue_process(settings, network, processing_date, days, connection=connection)
    jobs.record(job, step="chained", process_job=chained.job_id)
    log.info("download %s %s %sd: %s %s", network, processing_date, days, chained.job_id,
             chained.message)
    return {"files": files, "bytes": size, "seconds": round(seconds, 3),
            "process_job": chained.job_id}


def _counts(summary: dict) -> tuple[int, int]:
    """Files and bytes from download_batch's summary."""
    files = summary.get("files", {})
    count = len(files) if isinstance(files, (dict, list, tuple)) else int(files or 0)
    return count, int(summary.get("bytes", 0) or 0)
