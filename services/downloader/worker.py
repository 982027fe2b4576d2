"""`aml-miner worker download`: the download worker, which also keeps the daily schedule armed."""

from __future__ import annotations

import logging

from shared import schedule, worker
from shared.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings, burst: bool = False) -> int:
    """Import the job code once (forked jobs inherit it), then work the download queue."""
    import services.downloader.jobs  # noqa: F401  boto3 and the downloader, paid once per worker

    return worker.run(settings, settings.QUEUE_DOWNLOAD, burst=burst,
                      upkeep=lambda w: _arm_schedule(settings, w))


def _arm_schedule(settings: Settings, w: worker.HeartbeatWorker) -> None:
    """At start and each maintenance round, so a schedule lost with Redis's data comes back."""
    armed = schedule.ensure_armed(settings, w.connection)
    if armed:
        log.info("schedule: armed %s", ", ".join(armed))
