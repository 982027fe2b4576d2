"""`aml-miner worker download`: the download worker, which also keeps the daily schedule armed."""

from __future__ import annotations

import logging

from shared import jobs, schedule, worker
from shared.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings, burst: bool = False) -> int:
    """Import the job code once (forked jobs inherit it), arm the schedule, then work the download queue."""
    import services.downloader.jobs  # noqa: F401  boto3 and the downloader, paid once per worker

    armed = schedule.ensure_armed(settings, jobs.connect(settings))
    if armed:
        log.info("schedule: armed %s", ", ".join(armed))
    return worker.run(settings, settings.QUEUE_DOWNLOAD, burst=burst)
